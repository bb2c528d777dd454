# Device call s25c: call_s25.sh cut to about 200 s (its predictions and rules): the check preset on rat/gluon-hwd
# (training and prefill), then training only (rat/gluon, f22 + b15, f22 + b15 + b20) in three of the gate's rounds.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=200 bash experiments/rat-gluon-next/call_s25c.sh`.
NAME=rs25c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-hw=half_cands:HalfWgm --register rat/gluon-hwd=half_cands:HalfWgmDkv"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 70 python run_bench.py --preset check-triton --impl rat/gluon-hwd --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-200} - ($(date +%s) - t0) ))
ab train 3 4 "$(( left / 2 ))" --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-hw,rat/gluon-hwd
ls -la "$OUT"
