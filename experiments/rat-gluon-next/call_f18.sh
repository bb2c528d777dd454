# Device call f18 (eighteenth session): the forward as a dependent launch of the scan (rat/gluon-pdl), and with it
# the backward scan as a dependent launch of bwd_ws_kernel (b18, rat/gluon-pdl2), against rat/gluon: the
# check-triton preset on rat/gluon-pdl2 (FlashAttention rule), the harness's table for the three (cases
# interleaved), the per-kernel profile at the issue's shape (train and prefill, 4k / 32k / 128k), and D 64 / L 64 at
# 4k and 32k.
# Prediction (before the numbers): f18: the prefill and the training step 10-50 us faster at every T (the scan's
# last wave and the forward's launch, about 1/12 of the scan's 0.65-0.95 ms plus a few us), so -1 to -3% at 4k
# prefill, less elsewhere; b18: training another 20-150 us (bwd_ws_kernel's last wave, about 1/11-1/20 of 1.0-19 ms);
# the profile's per-kernel sums unchanged or a little longer (the dependent kernels' CTAs wait inside them).
# Rule: f18 and b18 are each adopted where the check passes and the harness is not slower at any T measured (0.5%); else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash experiments/rat-gluon-next/call_f18.sh`.
NAME=rf18
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-pdl=pdl_cands:Pdl --register rat/gluon-pdl2=pdl_cands:Pdl2"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
F=rat/gluon,rat/gluon-pdl,rat/gluon-pdl2
TAILN=14 step op 150 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 2 $C --out "$R/op"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-pdl2 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step profile 100 python run_bench.py profile --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl $F --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
