# Device call s23 (twenty-third session): call_s22.sh's A/B of f22 and b15 sized to the device time this session had
# left after its failed starts (under 7 minutes): the prefill A/B first (f22 alone, 4k to 128k), then training (f22,
# b15 and both), each swept briefly and re-measured by `run_bench.py gate` in rounds with the direction alternating,
# then the check preset on both together with what time is left. Predictions and the rule to adopt: call_s22.sh's
# header. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=400 bash experiments/rat-gluon-next/call_s23.sh`.
NAME=rs23
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-half=half_cands:Half --register rat/gluon-wgm=half_cands:Wgm"
REG="$REG --register rat/gluon-hw=half_cands:HalfWgm"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
ab prefill 4 10 70 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
ab train 3 5 100 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half,rat/gluon-wgm,rat/gluon-hw
left=$(( ${TOTAL:-400} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-hw --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
ls -la "$OUT"
