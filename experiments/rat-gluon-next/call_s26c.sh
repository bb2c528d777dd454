# Device call s26c (twenty-sixth session): f22 after its fix (tiles of one key block kept whole: call s26b's
# compute-sanitizer put the fault at the first block's second wgmma, whose descriptor registers ptxas 12.8 left
# unwritten on that branch; NOTES.md "Twenty-sixth session"). One call at B 1 (prefill, train) without the sanitizer,
# the check preset on rat/gluon-half (FlashAttention rule), then the prefill and training A/B in the gate's rounds
# (rat/gluon, rat/gluon-half). f22's prediction (call_s22.sh) less its one-block tiles: at 4k, where half of the tiles
# have one block, about half of the predicted gain; 32k and 128k as before (-2.3% / -0.7% of the forward).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=360 bash experiments/rat-gluon-next/call_s26c.sh`.
NAME=rs26c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
TAILN=3 step f22-prefill 60 python experiments/rat-gluon-next/f22_san.py prefill 4096 1
TAILN=3 step f22-train 60 python experiments/rat-gluon-next/f22_san.py train 4096 1
REG="--register rat/gluon-half=half_cands:Half"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 110 python run_bench.py --preset check-triton --impl rat/gluon-half --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
[ "$left" -ge 50 ] && ab prefill 4 8 "$(( left / 2 ))" --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
[ "$left" -ge 50 ] && ab train 3 5 "$(( left / 2 ))" --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
ls -la "$OUT"
