# Device call Q (f13's per-tile cost, fifteenth session; about 4 minutes; branch f13): the D 64 prefill and train at 4k
# for rat/gluon, f13 and f13h with the ring at rat/gluon's 2 entries and at 4 (fwd_stages; head dim 64 leaves the
# shared memory for the next tile's loads), then Nsight Compute (speed of light, warp states, memory, scheduler) on one
# prefill call of rat/gluon and f13 at 4k, head dim 128 and 64 (ncu_f13.py).
# Rule, written before the numbers: a variant faster than rat/gluon by more than 1% at D 64 4k goes on to the other
# shapes in a later call; ncu only explains (where f13's tile time goes).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_q.sh`.
NAME=rq
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f13=f13_cands:Fused --register rat/gluon-f13h=f13_cands:FusedHeads --register rat/gluon-f13s4=f13_cands:FusedS4 --register rat/gluon-f13hs4=f13_cands:FusedHeadsS4"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=10 step d64 120 python run_bench.py --impl rat/gluon,rat/gluon-f13,rat/gluon-f13s4,rat/gluon-f13hs4 --mode prefill --head-dim 64 --chunk-size 16 --seq-len 4k $C --out "$R/d64"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
TAILN=8 step ncu 110 "$NCU" --profile-from-start off --kernel-name "regex:fwd_fused_kernel|fwd_ws_kernel|scan_kernel" --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats --section LaunchStats --csv --page details python experiments/rat-gluon-next/ncu_f13.py
cp "$R/ncu.log" "$R/ncu.csv"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
