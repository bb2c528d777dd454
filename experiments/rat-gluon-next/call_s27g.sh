# Device call s27g (twenty-seventh session): call s27f's Nsight Compute had fwd_ws_kernel with f23 1% faster at D 64,
# 128k (4.79 against 4.84 ms) where the harness's prefill was 3.5-5% slower: the harness's per-kernel profile of both
# (rat/gluon and rat/gluon-xtall, f23 at every T) finds where the time goes. Explains only.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s27g.sh`.
NAME=rs27g
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xtall=ncu_xt:XtAll"
TAILN=30 step profile 200 python run_bench.py profile --impl rat/gluon,rat/gluon-xtall --mode prefill --seq-len 128k,32k --tokens 128k --heads 16 --head-dim 64 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile" --no-progress $REG
ls -la "$OUT"
