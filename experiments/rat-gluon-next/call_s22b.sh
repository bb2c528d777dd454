# Device call s22b (twenty-second session): call_s22.sh cut to the session's last device time, after call s22's
# f22 crashed on the GPU (an illegal address: _blocks' early returns left it a function of several blocks that was
# not inlined; fixed in the commit that added this script). Same predictions and rules as call_s22.sh; the prefill
# A/B first (f22 alone), then training (f22, b15), then the check preset on both together with what time is left.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=230 bash experiments/rat-gluon-next/call_s22b.sh`.
NAME=rs22b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-half=half_cands:Half --register rat/gluon-wgm=half_cands:Wgm"
REG="$REG --register rat/gluon-hw=half_cands:HalfWgm"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k"
ab prefill 4 10 60 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
S="--seq-len 4k,32k,128k"
ab train 3 5 80 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half,rat/gluon-wgm
left=$(( ${TOTAL:-230} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=6 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-hw --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
ls -la "$OUT"
