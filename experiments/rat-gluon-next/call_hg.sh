# Device call hg (twentieth session): f20h, the forward's tiles dealt out a group of heads at a time
# (RATTritonConfig.fwd_head_group; hg_cands.py), groups of 4 / 8 / 16 against rat/gluon (one head at a time): the
# harness's table for the four (cases interleaved), the per-stage profile of rat/gluon and rat/gluon-hg8 (also the
# per-stage numbers of main's rat/gluon, which the issue's closing note needs from the H200), the check-triton preset
# on rat/gluon-hg8 (FlashAttention rule), and D 64 / L 64 at 4k / 32k / 128k.
# Prediction (before the numbers): the host model (hg_cands.py) puts the forward's most loaded CTA 2.4% / 1.4% over
# the mean at 32k / 128k today and 0.7% / 0.14% with groups of 8. So the forward kernel of rat/gluon-hg8 is 1-2%
# faster at 32k and 128k and within 0.5% at 4k; the steps move by less (32k train -0.2 to -0.4%, 128k prefill -1%),
# near the harness's noise, so the profile's forward stage decides. If reading 8 or 16 heads' chunk ends at once costs
# L2 hits, hg16 and then hg8 lose at 128k first.
# Call hg (1c72749, H100): every group size slower at 4k (prefill +5%, fwd_ws_kernel 0.661 -> 0.729 ms with groups
# of 8), which balance cannot explain. That version took the group at run time (three integer divisions per tile, one
# by a divisor that changes per tile, in the loader warp and in each consumer). Call hg2 (this script at the commit that
# made HG a constexpr power of two: one division per tile, by NT, as main has): if the divisions were the 4k loss,
# the groups are now within 0.5% of rat/gluon at 4k and the model's gains show at 32k / 128k; if the 4k loss stays,
# it is the order itself, and the switch goes.
# Rule: a group size is adopted where the check passes, its forward kernel is faster at 32k and 128k and no step is
# slower at any T (0.5%); else the switch goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_hg.sh`.
NAME=rhg
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-hg4=hg_cands:HG4 --register rat/gluon-hg8=hg_cands:HG8 --register rat/gluon-hg16=hg_cands:HG16"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
F=${F:-rat/gluon,rat/gluon-hg4,rat/gluon-hg8,rat/gluon-hg16}
P=${P:-rat/gluon,rat/gluon-hg8}
TAILN=14 step op 200 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 2 $C --out "$R/op"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=14 step profile 100 python run_bench.py profile --impl $P --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 130 ? left : 130 )) python run_bench.py --preset check-triton --impl rat/gluon-hg8 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl $P --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl $P --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k,128k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
