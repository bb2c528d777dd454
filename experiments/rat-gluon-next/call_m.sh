# Device call M (twelfth session; about 5 minutes): the harness's train step of rat/gluon (the dq writer at head dim
# 128 at every T), rat/gluon-fw (key block 0's items first: bwd_first_wave) and rat/gluon-w256 (the writer up to 256
# chunk ends, the plain backward beyond, as before), D 128, L 16, 4k / 32k / 128k (wr_cands.py); rat/gluon's prefill
# (the issue's table with the train rows); the check-triton preset on rat/gluon-fw with what time is left. Run from
# the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_m.sh`.
NAME=rm
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-w256=wr_cands:W256 --register rat/gluon-fw=wr_cands:FirstWave"
C="--budget 1 --tokens 128k --heads 16 --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=10 step train 150 python run_bench.py --impl rat/gluon,rat/gluon-fw,rat/gluon-w256 --mode train $C --out "$R/train"
TAILN=8 step prefill 60 python run_bench.py --impl rat/gluon --mode prefill $C --out "$R/prefill"
left=$(( ${TOTAL:-300} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-fw --mode train --device cuda --out "$R/check" --no-progress --no-figures $W
ls -la "$OUT"
