# Device call b19 (twenty-first session): f21b (call_walk2.sh's prefill runs, unchanged) and b19 (the backward's grid
# ending on short items; tail_cands.py) against rat/gluon, one call.
# Predictions (before the numbers):
# - f21b (rat/gluon-walkp): the 4k prefill -0.2 to -1.5% (the forward 20-25 us faster on an H100, about 15 us on the
#   H200), 32k and 128k within 0.5%; D 64 4k -2 to -3%.
# - b19 (rat/gluon-tail1/2/4): training at 32k -1 to -2.5% (the backward kernel -1.5 to -3%: 70-150 us on an H100),
#   128k -0.2 to -0.6%, 4k within 0.5% (seg 32 there already; the tail heads change nothing); tail2 the best.
# Rules: f21b adopted where the check passes, the 4k prefill is faster in both prefill runs and no prefill case is
# slower than 0.5% in both; b19 (the best tail) adopted where the check passes, the 32k step and the profile's 32k
# backward kernel are faster and no training case is slower than 0.5%.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_b19.sh`.
NAME=rb19
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-walkp=walk_cands:WalkPrefill --register rat/gluon-tail1=tail_cands:Tail1"
REG="$REG --register rat/gluon-tail2=tail_cands:Tail2 --register rat/gluon-tail4=tail_cands:Tail4"
REG="$REG --register rat/gluon-b19=tail_cands:WalkTail"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
S="--seq-len 4k,32k,128k"
W="--impl rat/gluon,rat/gluon-walkp"
TAILN=8 step prefill1 120 python run_bench.py --mode prefill --head-dim 128 --chunk-size 16 $S --budget 4 $C $W --out "$R/prefill1"
TAILN=14 step train 150 python run_bench.py --mode train --head-dim 128 --chunk-size 16 $S --budget 3 $C --impl rat/gluon,rat/gluon-tail1,rat/gluon-tail2,rat/gluon-tail4 --out "$R/train"
TAILN=8 step prefill2 120 python run_bench.py --mode prefill --head-dim 128 --chunk-size 16 $S --budget 4 $C $W --out "$R/prefill2"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=12 step profile 80 python run_bench.py profile --impl rat/gluon,rat/gluon-tail2 --mode train --head-dim 128 --chunk-size 16 --seq-len 32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 120 ? left : 120 )) python run_bench.py --preset check-triton --impl rat/gluon-b19 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=8 step d64 "$left" python run_bench.py --mode prefill --head-dim 64 --chunk-size 16 $S --budget 2 $C $W --out "$R/d64"
ls -la "$OUT"
