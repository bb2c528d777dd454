# Device call N (b14, next session; about 6 minutes; needs b14.patch applied: `git apply
# experiments/rat-gluon-next/b14.patch`): the harness's train step of rat/gluon and rat/gluon-d2 (two dq staging
# slots, b14_cands.py) at D 128, L 16, 4k / 32k / 128k and D 64 4k, then the check-triton preset on rat/gluon-d2.
# Rule to adopt, written before the numbers: -d2 faster than rat/gluon by more than 1% at 32k and 128k and not slower
# by more than 0.5% at 4k, every check within the FlashAttention rule. Run from the repository root as `rm -rf .git;
# export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_n.sh`.
NAME=rn
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-d2=b14_cands:Depth2"
C="--budget 1 --tokens 128k --heads 16 --chunk-size 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=10 step train 150 python run_bench.py --impl rat/gluon,rat/gluon-d2 --mode train --head-dim 128 --seq-len 4k,32k,128k $C --out "$R/train"
TAILN=8 step d64 60 python run_bench.py --impl rat/gluon,rat/gluon-d2 --mode train --head-dim 64 --seq-len 4k $C --out "$R/d64"
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-d2 --mode train --device cuda --out "$R/check" --no-progress --no-figures $W
ls -la "$OUT"
