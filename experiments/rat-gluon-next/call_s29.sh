# Device call s29 (about 7 minutes with TOTAL=420): the backward scan's launch by head dim and dq accumulator
# (impls.rat.gluon.bscan_nc, adopted from scan_cands.py's per-kernel rounds) against 8 everywhere (bscan_cands.Bscan8)
# in the harness's gate rounds, train: D 64 L 16 at 32k (float32 accumulator: 16), D 128 L 16 and L 64 at 4k (16-bit:
# 4); then, while time is left, rat/gluon's rows of the issue's table (D 128 L 16, then D 64 and L 64).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=420 bash experiments/rat-gluon-next/call_s29.sh`.
NAME=s29
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-bscan8=bscan_cands:Bscan8"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
I="--impl rat/gluon,rat/gluon-bscan8 --mode train"
S="--seq-len 32k"; ab d64 6 8 100 $I --head-dim 64 --chunk-size 16
S="--seq-len 4k"; ab d128 6 8 100 $I --head-dim 128 --chunk-size 16,64
O="--impl rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --budget 1"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step op "$left" python run_bench.py $O --head-dim 128 --chunk-size 16 --out "$R/op"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step shapes-d64 "$left" python run_bench.py $O --head-dim 64 --chunk-size 16 --out "$R/shapes-d64"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step shapes-l64 "$left" python run_bench.py $O --head-dim 128 --chunk-size 64 --out "$R/shapes-l64"
ls -la "$OUT"
