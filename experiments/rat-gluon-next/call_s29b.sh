# Device call s29b (about 5 minutes with TOTAL=300): the D 64 forward's share of exponentials by polynomial
# (poly_cands: one in 4, none; rat/gluon's one in 8) in the harness's gate rounds, prefill at 4k / 32k / 128k and, while
# time is left, train at 32k; on an H200 first rat/gluon's rows of the issue's table (D 128, L 16: train and prefill at
# 4k / 32k / 128k), the cells the issue sets there.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=300 bash experiments/rat-gluon-next/call_s29b.sh`.
NAME=s29b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
O="--impl rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --budget 1"
grep -q H200 "$R/env.txt" && TAILN=12 step op 120 python run_bench.py $O --head-dim 128 --chunk-size 16 --out "$R/op"
REG="--register rat/gluon-ep4=poly_cands:Ep4 --register rat/gluon-ep0=poly_cands:Ep0"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
I="--impl rat/gluon,rat/gluon-ep4,rat/gluon-ep0 --head-dim 64 --chunk-size 16"
S="--seq-len 4k,32k,128k"; ab poly 6 8 120 $I --mode prefill
left=$(( ${TOTAL:-300} - ($(date +%s) - t0) ))
S="--seq-len 32k"; [ "$left" -ge 70 ] && ab polyt 4 6 $(( left / 2 )) $I --mode train
ls -la "$OUT"
