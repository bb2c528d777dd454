# Device call s25b: call_s25.sh cut to about 300 s of device time (its predictions and rules). The check preset on
# rat/gluon-hwd first (b20's flags could hang: the step's timeout), then training (rat/gluon, f22 + b15, f22 + b15 +
# b20) and the prefill (f22 alone) in the gate's rounds.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=300 bash experiments/rat-gluon-next/call_s25b.sh`.
NAME=rs25b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-half=half_cands:Half --register rat/gluon-hw=half_cands:HalfWgm"
REG="$REG --register rat/gluon-hwd=half_cands:HalfWgmDkv"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 90 python run_bench.py --preset check-triton --impl rat/gluon-hwd --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
ab train 3 5 90 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-hw,rat/gluon-hwd
left=$(( ${TOTAL:-300} - ($(date +%s) - t0) ))
S="--seq-len 4k,32k"
[ "$left" -ge 40 ] && ab prefill 4 10 "$(( left / 2 ))" --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
ls -la "$OUT"
