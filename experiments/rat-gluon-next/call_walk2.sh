# Device call walk2 (written in the twentieth session, after call walk): f21b, the prefill's tiles stepped by adds and
# the training forward as main's (RATTritonConfig.fwd_walk="prefill"; walk_cands.WalkPrefill), against rat/gluon:
# the prefill at D 128 / D 64 / L 64 twice (two interleaved harness runs at a 4 s budget, so that a 0.5% move can be
# told from the run's noise), training once, the per-stage profile, and the check-triton preset (FlashAttention rule).
# Prediction (before the numbers): call walk's prefill: the forward 20-25 us faster at 4k (0.669 -> 0.647 ms on an
# H100), the 4k prefill -0.2 to -1.5% (D 64 -2 to -3%), 32k and 128k within 0.5%; training the same kernels as
# rat/gluon (within the harness's noise).
# Rule: adopted where the check passes, the 4k prefill is faster in both runs and no prefill case is slower than 0.5%
# in both runs; else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=450 bash experiments/rat-gluon-next/call_walk2.sh`.
NAME=rwalk2
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-walkp=walk_cands:WalkPrefill"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --impl rat/gluon,rat/gluon-walkp"
S="--seq-len 4k,32k,128k"
for run in 1 2; do
  TAILN=8 step prefill$run 120 python run_bench.py --mode prefill --head-dim 128 --chunk-size 16 $S --budget 4 $C --out "$R/prefill$run"
  TAILN=8 step d64-$run 60 python run_bench.py --mode prefill --head-dim 64 --chunk-size 16 $S --budget 2 $C --out "$R/d64-$run"
done
left=$(( ${TOTAL:-450} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=8 step train 80 python run_bench.py --mode train --head-dim 128 --chunk-size 16 $S --budget 2 $C --out "$R/train"
left=$(( ${TOTAL:-450} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 120 ? left : 120 )) python run_bench.py --preset check-triton --impl rat/gluon-walkp --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-450} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step l64 "$left" python run_bench.py --mode prefill --head-dim 128 --chunk-size 64 $S --budget 2 $C --out "$R/l64"
ls -la "$OUT"
