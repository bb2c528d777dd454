# Device call f17 (eighteenth session): RoPE(q) in a partition of its own (rat/gluon-roper) against rat/gluon: the
# check-triton preset on the candidate (FlashAttention rule), the per-kernel profile of both at the issue's shape
# (train and prefill, 4k / 32k / 128k), the harness's table for both, and D 64 / L 64 at 4k and 32k.
# Prediction (before the numbers): fwd_ws_kernel -5 to -10% in the 4k prefill (0.64 -> 0.58-0.61 ms on the H200),
# -2 to -5% at 32k, about 0 at 128k; training's forward the same or a little more (its tables were loaded at the
# tile's start, exposed); nothing else changes.
# Rule: f17 is adopted for a mode and head dim where the check passes and the harness is faster at every T measured
# (not slower than 0.5% anywhere); else it goes, with its numbers in NOTES.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash experiments/rat-gluon-next/call_f17.sh`.
NAME=rf17
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-roper=roper_cands:Roper"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
F=rat/gluon,rat/gluon-roper
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon-roper --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
TAILN=10 step profile 110 python run_bench.py profile --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
TAILN=14 step op 110 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 2 $C --out "$R/op"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl $F --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
