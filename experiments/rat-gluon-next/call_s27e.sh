# Device call s27e (twenty-seventh session): rat/gluon with f23 adopted (its prefill takes xt.py's consumers where
# `cross_tile_used`: up to 512 chunk ends per sequence at head dim 128, 2048 at 64 with three ring entries) against
# the same without f23 (rat/gluon-noxt), in the gate's rounds, at shapes on both sides of the rule's bounds; first the
# check preset on rat/gluon (FlashAttention rule).
# Expected (calls s27b-d, the candidates): D 128 L 16 4k -1%, 8k -2%, 16k and 32k equal (f23 off there); D 64 4k -4.5%,
# 32k -3.5%, 128k equal; L 64 4k -2%, 32k -5.5%, 128k equal.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_s27e.sh`.
NAME=rs27e
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-noxt=xt_cands:NoCrossTile"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
TAILN=6 step check 150 python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
S="--seq-len 4k,8k,32k"
ab p128 5 6 100 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-noxt
S="--seq-len 4k,32k,128k"
ab p64 5 6 90 --mode prefill --head-dim 64 --chunk-size 16 --impl rat/gluon,rat/gluon-noxt
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && ab l64 5 6 "$(( left - 10 ))" --mode prefill --head-dim 128 --chunk-size 64 --impl rat/gluon,rat/gluon-noxt
ls -la "$OUT"
