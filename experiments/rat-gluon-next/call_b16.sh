# Device call b16 (seventeenth session): the dq writer's flags one tile late (b16, rat/gluon's default on this commit)
# against the writer before it (rat/gluon-b16off), and b16 with items of 32 tiles (rat/gluon-seg32): the check-triton
# preset's training cases on rat/gluon, the per-kernel profile at the issue's shape (train 4k / 32k) and at L 64, the
# harness at 128k and at D 64 (train 4k, where D 64 runs the writer).
# Prediction (before the numbers): bwd_ws_kernel -15 to -30% at D 128 L 16 4k (H100: 1.29 -> 0.9-1.1 ms), L 64 4k
# 0.93 -> 0.6-0.8 ms, 32k -2 to -8%, 128k within 1%; seg32 on top of b16 gains less than its 4.7% of call b15.
# Rule: b16 stays if the check passes, bwd_ws_kernel is faster at 4k by more than 3% and not slower by more than 1%
# at any other shape; seg32 becomes the rule at 4k if it is faster than b16 there by more than 2%.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_b16.sh`.
NAME=rb16
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-b16off=b16_cands:B16Off --register rat/gluon-seg32=b16_cands:Seg32"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-b16off
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train --device cuda --out "$R/check" --no-progress --no-figures
TAILN=30 step profile 150 python run_bench.py profile --impl $F,rat/gluon-seg32 --mode train --head-dim 128 --chunk-size 16 --seq-len 4k,32k $C --out "$R/profile"
TAILN=12 step l64 80 python run_bench.py profile --impl $F,rat/gluon-seg32 --mode train --head-dim 128 --chunk-size 64 --seq-len 4k,32k $C --out "$R/l64"
TAILN=12 step h128k 60 python run_bench.py --impl $F --mode train --head-dim 128 --chunk-size 16 --seq-len 128k $C --out "$R/h128k"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=12 step d64 "$left" python run_bench.py profile --impl $F --mode train --head-dim 64 --chunk-size 16 --seq-len 4k $C --out "$R/d64"
ls -la "$OUT"
