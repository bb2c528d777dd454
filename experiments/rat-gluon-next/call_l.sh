# Device call L (twelfth session; about 6 minutes): rat/gluon (the dq writer at head dim 128 at every T) beside
# rat/gluon-w256 (the writer up to 256 chunk ends, as before; wr_cands.py) in the harness: the issue's table (train
# and prefill, D 128, L 16), train at 8k / 16k, L 64 train, and the per-stage profile of both at train 4k / 32k /
# 128k. Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash
# experiments/rat-gluon-next/call_l.sh`.
NAME=rl
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-w256=wr_cands:W256"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=12 step op 120 python run_bench.py --impl rat/gluon,rat/gluon-w256 --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
TAILN=8 step mid 70 python run_bench.py --impl rat/gluon,rat/gluon-w256 --mode train --head-dim 128 --chunk-size 16 --seq-len 8k,16k $C --out "$R/mid"
TAILN=8 step l64 80 python run_bench.py --impl rat/gluon,rat/gluon-w256 --mode train --head-dim 128 --chunk-size 64 --seq-len 4k,32k,128k $C --out "$R/l64"
left=$(( ${TOTAL:-400} - ($(date +%s) - t0) ))
[ "$left" -ge 50 ] && TAILN=8 step profile "$left" python run_bench.py profile --impl rat/gluon,rat/gluon-w256 --mode train --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 128 --chunk-size 16 --dtype bf16 --device cuda $W --out "$R/profile"
ls -la "$OUT"
