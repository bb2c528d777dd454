# Device call Y (sixteenth session; branch f16): f16b (f16 with three q buffers, so that the loader brings the next
# tile's q, f, k, v while the consumers still hold the last tile's q buffer; call X's profile had the consumers waiting
# for the scan partition 18% of the time and the scan partition waiting for its inputs 11%) against rat/gluon, D 64,
# L 16, train and prefill at 4k / 32k / 128k, then Nsight Compute of both at 4k (ncu_f13.py, HEAD_DIMS=64).
# Rule (call W's): f16b becomes rat/gluon's forward at head dim 64 for a mode at the sequence lengths where it is
# faster than rat/gluon by more than 1%, once the check preset passes it (a later call).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_y.sh`.
NAME=ry
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f16b=f13_cands:FusedS4"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=16 step d64 120 python run_bench.py --impl rat/gluon,rat/gluon-f16b --mode prefill,train --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/d64"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
HEAD_DIMS=64 IMPLS=f13s4 TAILN=4 step ncu 90 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_fused_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats -f -o "$R/prof" python experiments/rat-gluon-next/ncu_f13.py
TAILN=2 step details 40 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=1 step source 60 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
