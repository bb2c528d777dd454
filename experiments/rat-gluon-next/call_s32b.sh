# Device call s32b (about 5 minutes with TOTAL=300): f26 (xtt_cands.XtTrain: f23's overlapped tile boundary in the
# training forward) through the check-triton preset (train, D 64 and D 128) and against rat/gluon in 4 gate rounds:
# train D 64 L 16 at 4k / 16k / 32k, D 128 L 16 at 4k / 16k, D 128 L 64 at 4k / 32k.
# Prediction and rule: impls/rat/gluon/NOTES.md "Thirty-second session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=300 bash experiments/rat-gluon-next/call_s32b.sh`.
NAME=s32b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xtt=xtt_cands:XtTrain"
TAILN=6 step check 90 python run_bench.py --preset check-triton --impl rat/gluon-xtt $REG --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
left() { echo $(( ${TOTAL:-300} - ($(date +%s) - t0) )); }
S="--seq-len 4k,16k,32k"; ab d64 4 6 70 --impl rat/gluon,rat/gluon-xtt --head-dim 64 --chunk-size 16 --mode train
S="--seq-len 4k,16k"; [ "$(left)" -ge 60 ] && ab d128 4 6 50 --impl rat/gluon,rat/gluon-xtt --head-dim 128 --chunk-size 16 --mode train
S="--seq-len 4k,32k"; [ "$(left)" -ge 40 ] && ab l64 4 6 $(( $(left) / 2 )) --impl rat/gluon,rat/gluon-xtt --head-dim 128 --chunk-size 64 --mode train
ls -la "$OUT"
