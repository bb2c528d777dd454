# Sourced by the device calls (call_c.sh) after NAME=rc: results under /tmp/$NAME, tarred to
# $OUT/$NAME.tgz after every step, so that what finished comes back even if the call is cut; env.txt first.
set -u
export PYTHONUNBUFFERED=1
R=/tmp/$NAME; rm -rf "$R"; mkdir -p "$R"
t0=$(date +%s)
# step NAME LIMIT CMD...: CMD under `timeout LIMIT`, its log in $R/NAME.log, the last TAILN lines printed
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout "$lim" "$@" > "$R/$name.log" 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n "${TAILN:-25}" "$R/$name.log"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"; }
{ nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv; python -c "import torch,triton;print(torch.__version__,torch.version.cuda,triton.__version__)"; echo "git ${RATBENCH_GIT_REV:-?}"; } > "$R/env.txt" 2>&1; cat "$R/env.txt"
