# Device call s27b (twenty-seventh session): after call s27 (f23 +3.9% at the 32k prefill, f24 no faster), f23 with the
# self entry's empty K buffer handed back at the tile's start, and f23b (only the epilogue carried into the next tile,
# so that the last P V's V buffer is not held: in f23 the next tile's first V load waits for it). D 64: a ring of
# three entries with and without f23 (the ring's look-ahead apart from the overlap).
# Predicted: f23b -1 to -2% at the 4k prefill (the epilogue under the first S), within +-0.5% at 32k and 128k; f23
# with three entries at D 64 faster than with two if the ring's look-ahead was what f23 lost at 32k.
# Rule: as call_s27.sh.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_s27b.sh`.
NAME=rs27b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xt=xt_cands:CrossTile --register rat/gluon-xe=xt_cands:CrossEpilogue --register rat/gluon-s3=xt_cands:Stages3 --register rat/gluon-xt3=xt_cands:CrossTile3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
TAILN=6 step check 100 python run_bench.py --preset check-triton --impl rat/gluon-xt,rat/gluon-xe --mode prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
S="--seq-len 4k,32k,128k"
[ "$left" -ge 60 ] && ab p128 4 6 "$(( left * 5 / 9 ))" --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-xt,rat/gluon-xe
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
S="--seq-len 4k,32k"
[ "$left" -ge 50 ] && ab p64 4 6 "$(( left - 15 ))" --mode prefill --head-dim 64 --chunk-size 16 --impl rat/gluon,rat/gluon-s3,rat/gluon-xt3,rat/gluon-xt
ls -la "$OUT"
