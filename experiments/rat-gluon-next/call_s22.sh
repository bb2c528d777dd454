# Device call s22 (twenty-second session): f22 (the forward's last key block on its first half where no row of the
# warpgroup sees past it) and b15 again (the backward's per-warpgroup bounds, ported to main), in the gate's rounds
# (bench/README.md, "A/B of implementations on a power-capped GPU"): each A/B swept briefly, then re-measured by
# `run_bench.py gate` in rounds with the direction alternating; the pooled rows against rat/gluon.
# Prediction (half_cands.py has the count): f22's forward kernel -2 to -3% at 32k, -0.5 to -1% at 128k, -2 to -6%
# at 4k; steps: train 32k -0.4 to -0.6%, prefill 32k -1.5 to -2.5%, prefill 4k -1 to -3%. b15's backward kernel -2
# to -2.5% at 32k, about -0.5% at 128k, 0 at 4k (the 4k backward is L2-bound); train 32k -1 to -1.3%.
# Rules (on the gate's pooled medians): a candidate is adopted if it is faster at one T or more by 0.5% or more,
# in most rounds there, and not slower than rat/gluon by more than 0.3% at any T of its modes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash experiments/rat-gluon-next/call_s22.sh`.
NAME=rs22
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-half=half_cands:Half --register rat/gluon-wgm=half_cands:Wgm"
REG="$REG --register rat/gluon-hw=half_cands:HalfWgm"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 120 python run_bench.py --preset check-triton --impl rat/gluon-hw --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
ab train 5 6 170 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half,rat/gluon-wgm,rat/gluon-hw
ab prefill 6 10 120 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 70 ] && TAILN=12 step profile 80 python run_bench.py profile --impl rat/gluon,rat/gluon-hw --mode train --head-dim 128 --chunk-size 16 --seq-len 32k,128k $C --out "$R/profile"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 "$left" python run_bench.py --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k --impl rat/gluon,rat/gluon-hw --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1 --out "$R/d64"
ls -la "$OUT"
