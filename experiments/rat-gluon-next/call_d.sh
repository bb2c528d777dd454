# Device call D (under 9 minutes; TOTAL=seconds): b7c.patch's candidates (b7c_cands.py) beside rat/gluon in the
# harness, train at D 128 / L 16 and D 64 / L 16 at 4k, 8k, 16k, 32k (the crossover for a rule by T), then the
# check-triton preset on rat/gluon-b7c. Needs b7c.patch applied and committed; run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_d.sh`.
export PYTHONPATH=.:experiments/rat-gluon-next
NAME=rd
source "$(dirname "$0")/_call.sh"
REG=$(python experiments/rat-gluon-next/b7c_cands.py | sed 's/ *#.*//' | tr '\n' ' ')
C="--seq-len 4k,8k,16k,32k --chunk-size 16 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
# shellcheck disable=SC2086
TAILN=12 step d128 200 python run_bench.py --impl rat/gluon,rat/gluon-b7c,rat/gluon-b7b,rat/gluon-writer $REG --mode train --head-dim 128 $C --out "$R/d128"
# shellcheck disable=SC2086
TAILN=10 step d64 120 python run_bench.py --impl rat/gluon,rat/gluon-b7c $REG --mode train --head-dim 64 $C --out "$R/d64"
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
# shellcheck disable=SC2086
[ "$left" -ge 60 ] && TAILN=8 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-b7c $REG --mode train --device cuda --out "$R/check" --no-progress --no-figures
ls -la "$OUT"
