# Device call K (twelfth session; under 9 minutes): ab_wregs.py (the dq writer warp at 24 registers against 32 and
# against the plain backward, D 128 / 64, L 16 / 64, 4k to 128k), then the check-triton preset on rat/gluon as main
# has it. Needs experiments/rat-gluon-next/backward_w32.py (`git show 1bea30d:impls/rat/gluon/backward.py`). Run from
# the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_k.sh`.
NAME=rk
source "$(dirname "$0")/_call.sh"
TAILN=14 step ab 320 env OUT="$R" PYTHONPATH=. python experiments/rat-gluon-next/ab_wregs.py
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
ls -la "$OUT"
