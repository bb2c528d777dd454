# Device call A (under 6 minutes; TOTAL=seconds): the candidates in TRAIN (default: six of cands.py; 'rat/gluon*': all) (next.patch's backward versions) in the harness,
# train at D 128 / L 16 side by side with main's kernels (rat/gluon-main) in the same run; b10 at L 64 (train 4k,
# 32k; at 4k -main and -b7c take rat/triton's backward, as rat/gluon does there); b11 at D 64; prefill of the patch
# against main's; then ab_split.py (per-kernel times, D 64 / L 64) in the time left. Needs next.patch applied and committed; run from the
# repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_a.sh`.
set -u
export PYTHONPATH=.:experiments/rat-gluon-next PYTHONUNBUFFERED=1
R=/tmp/ra; rm -rf $R; mkdir -p $R
t0=$(date +%s)
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout "$lim" "$@" > "$R/$name.log" 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n "${TAILN:-25}" "$R/$name.log"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; python -c "import torch,triton;print(torch.__version__,torch.version.cuda,triton.__version__)"; echo "git ${RATBENCH_GIT_REV:-?}"; } > "$OUT/env.txt" 2>&1; cat "$OUT/env.txt"
REG=$(python experiments/rat-gluon-next/cands.py | sed 's/ *#.*//' | tr '\n' ' ')  # every candidate's --register flag
C="--seq-len 4k,32k,128k --head-dim 128 --chunk-size 16 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
# shellcheck disable=SC2086
TRAIN=${TRAIN:-rat/gluon,rat/gluon-main,rat/gluon-fwd,rat/gluon-b7c,rat/gluon-b7c10,rat/gluon-b7c10b8}  # 'rat/gluon*': all
# shellcheck disable=SC2086
TAILN=12 step op-train 170 python run_bench.py --impl "$TRAIN" $REG --mode train $C --out "$R/op-train"
# shellcheck disable=SC2086
TAILN=8 step op-l64 60 python run_bench.py --impl rat/gluon-main,rat/gluon-b7c,rat/gluon-b7c10 $REG --mode train --seq-len 4k,32k --head-dim 128 --chunk-size 64 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --out "$R/op-l64"
# shellcheck disable=SC2086
TAILN=8 step op-d64 70 python run_bench.py --impl rat/gluon-main,rat/gluon-b7c,rat/gluon-b7c11 $REG --mode train --seq-len 4k,32k,128k --head-dim 64 --chunk-size 16 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --out "$R/op-d64"
# shellcheck disable=SC2086
TAILN=8 step op-prefill 50 python run_bench.py --impl rat/gluon,rat/gluon-main $REG --mode prefill $C --out "$R/op-prefill"
tar czf "$OUT/ra-op.tgz" -C /tmp ra
left=$(( ${TOTAL:-330} - ($(date +%s) - t0) ))  # A and B together fit a 20-minute budget
[ "$left" -ge 30 ] && TAILN=5 step ab_split "$left" env OUT="$OUT" ROUNDS=3 python experiments/rat-gluon-next/ab_split.py
[ -f "$OUT/ab_split.json" ] && python - <<'PY'
import json, os
d = json.load(open(os.environ["OUT"] + "/ab_split.json"))
for r in d["rows"]:
    print(r["mode"], r["D"], r["L"], r["T"], {k[:-3]: round(v, 3) for k, v in r.items() if k.endswith("_ms")}, "finite", r["finite"])
PY
tar czf "$OUT/ra.tgz" -C /tmp ra; ls -la "$OUT"
