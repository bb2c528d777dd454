# Device call E (under 9 minutes; TOTAL=seconds): b12, the backward scan forming kt, vt (form_cands.py), beside
# rat/gluon: the check-triton preset on rat/gluon-form48, then train at D 128 / L 16 (4k, 32k, 128k) for the four
# launch shapes, then D 64. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_e.sh`.
export PYTHONPATH=.:experiments/rat-gluon-next
NAME=re
source "$(dirname "$0")/_call.sh"
REG=$(python experiments/rat-gluon-next/form_cands.py | sed 's/ *#.*//' | tr '\n' ' ')
C="--chunk-size 16 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
# shellcheck disable=SC2086
TAILN=6 step check 150 python run_bench.py --preset check-triton --impl rat/gluon-form48 $REG --mode train --device cuda --out "$R/check" --no-progress --no-figures
# shellcheck disable=SC2086
TAILN=14 step d128 220 python run_bench.py --impl rat/gluon,rat/gluon-form48,rat/gluon-form44,rat/gluon-form24,rat/gluon-form88 $REG --mode train --seq-len 4k,32k,128k --head-dim 128 $C --out "$R/d128"
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
# shellcheck disable=SC2086
[ "$left" -ge 50 ] && TAILN=10 step d64 "$left" python run_bench.py --impl rat/gluon,rat/gluon-form48,rat/gluon-form44 $REG --mode train --seq-len 4k,32k,128k --head-dim 64 $C --out "$R/d64"
ls -la "$OUT"
