# Device call plain (seventeenth session): how much the dq writer's kernel costs against the plain backward kernel
# where the writer runs at head dim 128 (every T), per kernel: rat/gluon against rat/gluon-plain (bwd_dq_writer=False:
# the pre pass writes the accumulator's zeros), train 16k / 32k / 128k, D 128, L 16. Decides whether a route that
# zeroes the accumulator elsewhere (in the forward's epilogue, where the forward is compute-bound) is worth building:
# it would save the plain kernel's zeros and the writer kernel's excess both.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_plain.sh`.
NAME=rplain
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --register rat/gluon-plain=seg_cands:Plain"
TAILN=12 step profile 240 python run_bench.py profile --impl rat/gluon,rat/gluon-plain --mode train --head-dim 128 --chunk-size 16 --seq-len 16k,32k,128k $C --out "$R/profile"
ls -la "$OUT"
