# Device call W (sixteenth session; branch f16): f16 (the fused forward with the scan in a partition of its own, a
# tile ahead of the consumers; head dim 64 only) against rat/gluon: D 64, L 16, train and prefill at 4k / 32k / 128k,
# f16 with the ring at 4 entries (rat/gluon-f16) and at 2 (rat/gluon-f16s2); then Nsight Compute of one prefill at
# 4k (ncu_f13.py, IMPLS=f13s4) and the check-triton preset on rat/gluon-f16 with what time is left.
# Rule, written before the numbers: f16 becomes rat/gluon's forward at head dim 64 (L dividing 16) for a mode at the
# sequence lengths where it is faster than rat/gluon by more than 1%, once the check preset passes it.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=400 bash experiments/rat-gluon-next/call_w.sh`.
NAME=rw
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f16=f13_cands:FusedS4 --register rat/gluon-f16s2=f13_cands:Fused"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=24 step d64 150 python run_bench.py --impl rat/gluon,rat/gluon-f16,rat/gluon-f16s2 --mode prefill,train --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/d64"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
IMPLS=f13s4 TAILN=4 step ncu 90 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_fused_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats -f -o "$R/prof" python experiments/rat-gluon-next/ncu_f13.py
TAILN=2 step details 40 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=1 step source 60 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
left=$(( ${TOTAL:-400} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=8 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-f16 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $W
ls -la "$OUT"
