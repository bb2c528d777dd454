# Device call D (under 9 minutes; TOTAL=seconds): b7c.patch's candidates (b7c_cands.py) beside rat/gluon in the
# harness, train at D 128 / L 16 and D 64 / L 16 at 4k, 8k, 16k, 32k (the crossover for a rule by T), then the
# check-triton preset on rat/gluon-b7c. Needs b7c.patch applied and committed; run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_d.sh`.
set -u
export PYTHONPATH=.:experiments/rat-gluon-next PYTHONUNBUFFERED=1
R=/tmp/rd; rm -rf $R; mkdir -p $R
t0=$(date +%s)
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout "$lim" "$@" > "$R/$name.log" 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n "${TAILN:-25}" "$R/$name.log"; tar czf "$OUT/rd.tgz" -C /tmp rd; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; python -c "import torch,triton;print(torch.__version__,torch.version.cuda,triton.__version__)"; echo "git ${RATBENCH_GIT_REV:-?}"; } > "$R/env.txt" 2>&1; cat "$R/env.txt"
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
