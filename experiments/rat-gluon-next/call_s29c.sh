# Device call s29c (about 2.5 minutes with TOTAL=150): the D 64 forward with every exponential on the MUFU
# (poly_cands.Ep0) against rat/gluon's one in 8 by polynomial, at the T that call s29b left out, in the harness's gate
# rounds: train 4k / 128k, then while time is left prefill 8k / 16k / 64k.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=150 bash experiments/rat-gluon-next/call_s29c.sh`.
NAME=s29c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-ep0=poly_cands:Ep0"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
I="--impl rat/gluon,rat/gluon-ep0 --head-dim 64 --chunk-size 16"
S="--seq-len 4k,128k"; ab tt 4 6 70 $I --mode train
left=$(( ${TOTAL:-150} - ($(date +%s) - t0) ))
S="--seq-len 8k,16k,64k"; [ "$left" -ge 50 ] && ab pp 4 6 $(( left / 2 )) $I --mode prefill
ls -la "$OUT"
