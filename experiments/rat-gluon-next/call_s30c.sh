# Device call s30c (about 5 minutes with TOTAL=300): f25 with o by TMA (T a multiple of 64; the boxes past T not
# stored): the check-triton preset at D 64 with three warpgroups in training too (wg3_cands.Wg3T), then in the gate's
# rounds train D 64 L 16 at 4k / 32k / 128k (rat/gluon: two warpgroups, against Wg3T) and prefill at 64k / 128k
# (rat/gluon: three, against wg3_cands.Wg2: two).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=300 bash experiments/rat-gluon-next/call_s30c.sh`.
NAME=s30c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-wg3t=wg3_cands:Wg3T --register rat/gluon-wg2=wg3_cands:Wg2"
TAILN=6 step check 110 python run_bench.py --preset check-triton --impl rat/gluon-wg3t $REG --head-dim 64 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"; ab tt 4 6 80 --impl rat/gluon,rat/gluon-wg3t --head-dim 64 --chunk-size 16 --mode train
left=$(( ${TOTAL:-300} - ($(date +%s) - t0) ))
S="--seq-len 64k,128k"; [ "$left" -ge 50 ] && ab pp 4 6 $(( left / 2 )) --impl rat/gluon,rat/gluon-wg2 --head-dim 64 --chunk-size 16 --mode prefill
ls -la "$OUT"
