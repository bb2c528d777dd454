# Device call f20 (built in the nineteenth session, after call f19): f19 alone (rat/gluon-dyn: the forward's tiles from
# a counter), f18b + f19 (rat/gluon-pdlf: the forward as a dependent launch of the scan, with only the loader waiting for
# each head's count before the tile's q_ready arrival, the consumers reading the self logits after that barrier), and
# f18b + f19 + b18 (rat/gluon-pdl3), against rat/gluon: the harness's table for the four (cases interleaved), the
# check-triton preset on rat/gluon-pdl3 (FlashAttention rule), the per-kernel profile of rat/gluon and the best-placed
# candidate at the issue's shape, and D 64 / L 64 at 4k and 32k.
# Prediction (before the numbers): call f19's f18 lost 0.25 ms in the 4k prefill (H100), which I put on the consumers'
# per-tile wait (an acquire at GPU scope and a proxy fence, 256 threads a tile); f18b removes that wait, so
# rat/gluon-pdlf and -pdl3 are within +-0.5% of rat/gluon-dyn in the prefill, or 0-40 us faster (the launch gap and
# the scan's last wave); f19 alone within 1% of rat/gluon everywhere (in call f19, beside f18, it took back half of
# f18's 4k prefill loss and was 1.5% slower in training at 32k / 128k, noisy there). If rat/gluon-pdlf still loses more than 1% at 4k prefill, the per-tile wait was
# not the cause and the next suspect is the spinning itself (nanosleep backoff).
# Rule: each is adopted where the check passes and the harness is not slower at any T measured (0.5%); else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=520 bash experiments/rat-gluon-next/call_f20.sh`.
NAME=rf20
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-dyn=pdl_cands:Dyn --register rat/gluon-pdlf=pdl_cands:PdlF --register rat/gluon-pdl3=pdl_cands:Pdl3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
F=${F:-rat/gluon,rat/gluon-dyn,rat/gluon-pdlf,rat/gluon-pdl3}
P=${P:-rat/gluon,rat/gluon-pdl3}
TAILN=14 step op 200 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 2 $C --out "$R/op"
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 150 ? left : 150 )) python run_bench.py --preset check-triton --impl rat/gluon-pdl3 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step profile 90 python run_bench.py profile --impl $P --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl $P --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-520} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl $P --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
