# Device call b17 (seventeenth session): dq's accumulator in 16 bits up to 256 chunk ends with the dq writer (b17,
# rat/gluon's default on this commit) against float32 (rat/gluon-acc32): the check-triton preset's training cases on
# rat/gluon (FlashAttention rule: dq's error with the 16-bit accumulator), the per-kernel profile at the shapes it
# changes (train 4k: D 128 L 16, D 64 L 16, D 128 L 64; L 64 16k), then the harness at the issue's 4k cell.
# Prediction (before the numbers): D 128 L 16 4k bwd_ws_kernel -10 to -20% (the L2-bound kernel's share traffic
# halves), backward scan -5 to -8% (13 U -> 12 U), step -0.25 to -0.4 ms on an H100 (6.18 -> 5.8-5.9 ms); the same
# shape of gain at D 64 and L 64 4k; dq's error within the rule with its margin smaller than float32's.
# Rule: b17 stays if the check passes and the train step is faster at every shape measured; else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_b17.sh`.
NAME=rb17
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --register rat/gluon-acc32=acc_cands:Acc32"
F=rat/gluon,rat/gluon-acc32
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train --device cuda --out "$R/check" --no-progress --no-figures
TAILN=8 step d128 60 python run_bench.py profile --impl $F --mode train --head-dim 128 --chunk-size 16 --seq-len 4k $C --out "$R/d128"
TAILN=8 step d64 50 python run_bench.py profile --impl $F --mode train --head-dim 64 --chunk-size 16 --seq-len 4k $C --out "$R/d64"
TAILN=8 step l64 60 python run_bench.py profile --impl $F --mode train --head-dim 128 --chunk-size 64 --seq-len 4k,16k $C --out "$R/l64"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=8 step op "$left" python run_bench.py --impl $F --mode train --head-dim 128 --chunk-size 16 --seq-len 4k --budget 3 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --register rat/gluon-acc32=acc_cands:Acc32 --out "$R/op"
ls -la "$OUT"
