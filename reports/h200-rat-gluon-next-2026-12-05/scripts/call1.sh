# device call 1: the patch's correctness (check.py, check-triton preset), f10's A/B, the issue's table
set -u
export PYTHONPATH=. PYTHONUNBUFFERED=1
R=/tmp/r1; rm -rf $R; mkdir -p $R
t0=$(date +%s)
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout $lim "$@" > $R/$name.log 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n ${TAILN:-25} $R/$name.log; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; python -c "import torch,triton;print(torch.__version__,torch.version.cuda,triton.__version__)"; echo git $RATBENCH_GIT_REV; } > $R/env.txt 2>&1; cat $R/env.txt
TAILN=12 step check 110 env CHECKS_ONLY=1 OUT=$R python experiments/rat-gluon-bwd/check.py
TAILN=40 step onepass 210 env OUT=$R ROUNDS=3 python experiments/rat-gluon-next/ab_onepass.py
python - <<'PY' 2>&1 | tail -n 30
import json
d=json.load(open("/tmp/r1/ab_onepass.json"))
for r in d["rows"]:
    ms={k[:-3]:round(v,3) for k,v in r.items() if k.endswith("_ms")}
    print(r["D"],r["L"],r["T"],ms,"finite",r.get("finite"),"maxdiff",r.get("maxdiff"),r.get("fa_rule_seq0",""))
PY
TAILN=20 step op 120 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --head-dim 128 --chunk-size 16 --budget 2 --tokens 128k --heads 16 --dtype bf16 --device cuda --out $R/op --no-progress --no-figures
TAILN=8 step checkpreset 90 python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out $R/check --no-progress --no-figures
tar czf $OUT/r1.tgz -C /tmp r1; ls -la $OUT
