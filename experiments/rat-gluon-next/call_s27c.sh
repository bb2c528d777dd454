# Device call s27c (twenty-seventh session): after call s27b (f23 at head dim 64 -4.3% / -2.5% at the 4k / 32k
# prefill, with three ring entries -4.9% / -3.5%; at head dim 128 no gain at 4k and -1.5% at 32k): f23 at head dim 64
# at 128k too, f23 at L 64, and f23 at head dim 128 with RoPE's tables at each tile's start (rat/gluon-xtn: 64 fewer
# live registers under the carried P V).
# Predicted: at head dim 64 f23 faster at 128k too (-1 to -2%: fewer tiles' boundaries per block); L 64 (one block per
# tile at 4k) -3 to -5% if the head dim 64 result is the boundary; xtn within 1% of xt.
# Rule: as call_s27.sh.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_s27c.sh`.
NAME=rs27c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xt=xt_cands:CrossTile --register rat/gluon-xtn=xt_cands:CrossTileNoAhead --register rat/gluon-xt3=xt_cands:CrossTile3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
ab p64 4 6 150 --mode prefill --head-dim 64 --chunk-size 16 --impl rat/gluon,rat/gluon-xt,rat/gluon-xt3
ab l64 4 6 120 --mode prefill --head-dim 128 --chunk-size 64 --impl rat/gluon,rat/gluon-xt,rat/gluon-xtn
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
S="--seq-len 4k,32k"
[ "$left" -ge 50 ] && ab p128 4 6 "$(( left - 15 ))" --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-xt,rat/gluon-xtn
ls -la "$OUT"
