# Device call f19 (nineteenth session): f18 (rat/gluon-pdl), f18 + b18 (rat/gluon-pdl2) and f18 + b18 + f19, the
# forward's tiles from a counter (rat/gluon-pdl3), against rat/gluon: the harness's table for the four (cases
# interleaved), the check-triton preset on rat/gluon-pdl3 (FlashAttention rule), the per-kernel profile of rat/gluon
# and rat/gluon-pdl3 at the issue's shape, and D 64 / L 64 at 4k and 32k.
# Prediction (before the numbers): f18 alone 0-10 us (the forward's CTAs keep fixed shares, so the last one still
# starts when the scan's last program ends: only the launch gap is saved); b18 20-150 us in training (the backward
# scan's programs are dealt as bwd_ws_kernel's CTAs end); f19 on top 10-40 us at every T (CTAs that start early under
# the scan's last wave take more tiles; the tail of the forward evens out), so the 4k prefill 1-3% faster.
# Rule: each is adopted where the check passes and the harness is not slower at any T measured (0.5%); else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=500 bash experiments/rat-gluon-next/call_f19.sh`.
NAME=rf19
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-pdl=pdl_cands:Pdl --register rat/gluon-pdl2=pdl_cands:Pdl2 --register rat/gluon-pdl3=pdl_cands:Pdl3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
F=${F:-rat/gluon,rat/gluon-pdl,rat/gluon-pdl2,rat/gluon-pdl3}  # a shorter call: F=rat/gluon,rat/gluon-pdl2,rat/gluon-pdl3
TAILN=14 step op 200 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 2 $C --out "$R/op"
left=$(( ${TOTAL:-500} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 150 ? left : 150 )) python run_bench.py --preset check-triton --impl rat/gluon-pdl3 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-500} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step profile 90 python run_bench.py profile --impl rat/gluon,rat/gluon-pdl3 --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-500} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl rat/gluon,rat/gluon-pdl3 --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-500} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl rat/gluon,rat/gluon-pdl3 --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
