# Device call b15 (seventeenth session): bwd_ws_kernel's per-warpgroup bounds (b15, rat/gluon's default on this
# commit) against the kernel before them (rat/gluon-b15off): the check-triton preset's training cases on rat/gluon
# (FlashAttention rule), the per-kernel profile of both at the issue's shape (train 4k / 32k / 128k), then the
# harness at D 64 / L 16 and D 128 / L 64 (train 4k / 32k).
# Prediction (before the numbers): bwd_ws_kernel -8 to -15% at D 128 L 16 4k (a third of warpgroup 1's tiles dead,
# half the masked tiles unmasked), -1 to -3% at 32k, within noise at 128k; at L 64 4k (warpgroup 1 dead on every
# tile) -25 to -40%.
# seg32 (work items of 32 query tiles): predicted bwd_ws_kernel -1 to -4% at 4k, slower at 32k / 128k; it becomes the
# rule at 4k if bwd_ws_kernel is faster there by more than 2% (the harness step's noise).
# Rule: b15 stays rat/gluon's backward if the check passes and bwd_ws_kernel is not slower by more than 1% at any
# shape measured (its live loop compiles to the same instructions); else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_b15.sh`.
NAME=rb15
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-b15off=b15_cands:B15Off --register rat/gluon-seg32=b15_cands:Seg32"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-b15off
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train --device cuda --out "$R/check" --no-progress --no-figures
TAILN=40 step profile 200 python run_bench.py profile --impl $F,rat/gluon-seg32 --mode train --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/profile"
TAILN=12 step d64 60 python run_bench.py --impl $F --mode train --head-dim 64 --chunk-size 16 --seq-len 4k,32k $C --out "$R/d64"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=12 step l64 "$left" python run_bench.py profile --impl $F --mode train --head-dim 128 --chunk-size 64 --seq-len 4k,32k $C --out "$R/l64"
ls -la "$OUT"
