# Device call s27 (twenty-seventh session): f23 (rat/gluon-xt, prefill) and f24 (rat/gluon-mf, prefill and train)
# against rat/gluon. The check preset on both first (FlashAttention rule), then the A/B in the gate's rounds.
# Predicted (xt_cands.py, NOTES.md "Twenty-seventh session"): f23 -2 to -4% at the 4k prefill, -1 to -2% at 32k, 0 to
# -1% at 128k; f24 about -1% at 4k (fewer instructions to fetch), within +-0.5% at 32k and 128k.
# Rule: adopt a candidate for a mode where it is faster in every round at every T; one that wins at some T and loses
# at none by more than 0.3% is adopted for the T where it wins if the win is above 1%.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash experiments/rat-gluon-next/call_s27.sh`.
NAME=rs27
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xt=xt_cands:CrossTile --register rat/gluon-mf=xt_cands:MaskedFirst"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len ${TS:-4k,32k,128k}"
TAILN=6 step check-xt 100 python run_bench.py --preset check-triton --impl rat/gluon-xt --mode prefill --device cuda --out "$R/check-xt" --no-progress --no-figures $REG
TAILN=6 step check-mf 120 python run_bench.py --preset check-triton --impl rat/gluon-mf --mode train,prefill --device cuda --out "$R/check-mf" --no-progress --no-figures $REG
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && ab prefill 4 6 "$(( left * 5 / 9 ))" --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-xt,rat/gluon-mf
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 50 ] && ab train 3 4 "$(( left - 15 ))" --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-mf
ls -la "$OUT"
