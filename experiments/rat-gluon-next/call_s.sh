# Device call S (sixteenth session; branch f15): f15 (f13's fused forward with the scan in-thread on 16-row groups,
# 8-byte shared loads) against rat/gluon: the issue's table (train and prefill, D 128, L 16), D 64 at 4k and 32k;
# then Nsight Compute of one prefill at 4k (ncu_f13.py) for the stall mix against call R's f13.
# Rule, written before the numbers: f15 goes on (a later call: checks, L 64, routes) where it is faster than
# rat/gluon by more than 1%; otherwise the fused forward stays rejected and NOTES gets the numbers.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s.sh`.
NAME=rs
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f15=f13_cands:Fused"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-f15
TAILN=10 step op 150 python run_bench.py --impl $F --mode prefill,train --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
TAILN=8 step d64 90 python run_bench.py --impl $F --mode prefill,train --head-dim 64 --chunk-size 16 --seq-len 4k,32k $C --out "$R/d64"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
IMPLS=f13 TAILN=6 step ncu 150 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_fused_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats -f -o "$R/prof" python experiments/rat-gluon-next/ncu_f13.py
TAILN=3 step details 60 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=2 step source 90 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
