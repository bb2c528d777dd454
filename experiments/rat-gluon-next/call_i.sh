# Device call I (eleventh session; under 9.5 minutes): ab_tables.py (f11: fwd_ws_kernel's RoPE tables and self
# logits loaded a tile ahead, against the kernel before it; experiments/rat-gluon-next/forward_prev.py made by
# `git show 385a1a3:impls/rat/gluon/forward.py` first), then the check-triton preset on rat/gluon with f11. Run from
# the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_i.sh`.
NAME=ri
source "$(dirname "$0")/_call.sh"
TAILN=12 step tables 330 env OUT="$R" ROUNDS=3 SHAPES=128:16:4096,128:16:32768,128:16:131072,128:64:4096 PYTHONPATH=. python experiments/rat-gluon-next/ab_tables.py
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
ls -la "$OUT"
