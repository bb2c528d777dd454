# Device call s27d (twenty-seventh session): where f23 wins. Call s27c: at head dim 128 the 4k prefill -1.3% (xt) and
# -2.5% (xtn, tables at each tile's start), 32k +1.1-1.4%; head dim 64 -4.4% / -3% / +5% at 4k / 32k / 128k; L 64
# 0 to -2% / -5.5% / +1.4%. Here more rounds at the short T, and the T between, to find where each stops winning.
# Rule: as call_s27.sh (a T range where the candidate is faster in every round by more than 1%).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_s27d.sh`.
NAME=rs27d
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-xt=xt_cands:CrossTile --register rat/gluon-xtn=xt_cands:CrossTileNoAhead --register rat/gluon-xen=xt_cands:CrossEpilogueNoAhead --register rat/gluon-xt3=xt_cands:CrossTile3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,8k,16k"
ab p128 8 6 170 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-xt,rat/gluon-xtn,rat/gluon-xen
ab l64 6 6 110 --mode prefill --head-dim 128 --chunk-size 64 --impl rat/gluon,rat/gluon-xtn
S="--seq-len 8k,16k,64k"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 50 ] && ab p64 6 6 "$(( left - 15 ))" --mode prefill --head-dim 64 --chunk-size 16 --impl rat/gluon,rat/gluon-xt3
ls -la "$OUT"
