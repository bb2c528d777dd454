# Sourced by the device calls (call_c.sh) after NAME=rc: results under /tmp/$NAME, tarred to
# $OUT/$NAME.tgz after every step, so that what finished comes back even if the call is cut; env.txt first.
set -u
export PYTHONUNBUFFERED=1
R=/tmp/$NAME; rm -rf "$R"; mkdir -p "$R"
t0=$(date +%s)
# step NAME LIMIT CMD...: CMD under `timeout LIMIT`, its log in $R/NAME.log, the last TAILN lines printed
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout "$lim" "$@" > "$R/$name.log" 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n "${TAILN:-25}" "$R/$name.log"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; python -c "import torch,triton;print(torch.__version__,torch.version.cuda,triton.__version__)"; echo "git ${RATBENCH_GIT_REV:-?}"; } > "$R/env.txt" 2>&1; cat "$R/env.txt"
# ab NAME ROUNDS SPR LIMIT SWEEP-ARGS...: an A/B that does not carry the sweep's order (bench/README.md, "A/B of
# implementations on a power-capped GPU"): a brief sweep of SWEEP-ARGS ($S $C appended: set them, with --budget 1 and
# any --register in $C and $REG), `gate`'s ROUNDS rounds of SPR calls per case over it (direction alternating), and
# the pooled rows' table against rat/gluon
ab() { local n=$1 rounds=$2 spr=$3 lim=$4; shift 4
  TAILN=3 step "$n" "$lim" python run_bench.py "$@" $S $C --out "$R/$n"
  TAILN=3 step "$n-gate" "$lim" python run_bench.py gate --baseline "$R/$n" --rounds "$rounds" --samples-per-round "$spr" --out "$R/$n-gate" --no-progress ${REG:-}
  TAILN=14 step "$n-table" 60 python run_bench.py report "$R/$n-gate" --baseline rat/gluon --no-figures; }
