# Device call s27h (twenty-seventh session, if an H200 comes): the issue's prefill cells with f23 adopted (cab52c5's
# product code): the 4k prefill against rat/gluon-noxt (f23 off) in the gate's rounds, then rat/gluon's prefill row
# at 4k / 32k / 128k (D 128, L 16).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=200 bash experiments/rat-gluon-next/call_s27h.sh`.
NAME=rs27h
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-noxt=xt_cands:NoCrossTile"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k"
ab p4k 6 8 80 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-noxt
left=$(( ${TOTAL:-200} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=12 step row "$left" python run_bench.py --impl rat/gluon --mode prefill --seq-len 4k,32k,128k --head-dim 128 --chunk-size 16 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --out "$R/row"
ls -la "$OUT"
