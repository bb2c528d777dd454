# Device call s31d (about 4 minutes with TOTAL=230): b23 (kvr_cands.Owner128: the D 128 backward's dq shares by owners
# in two halves, with the dq writer) through the check-triton preset (train, D 128) and against rat/gluon at train D 128
# L 16 4k / 32k in 4 gate rounds; then call s31c cut to D 64 64k / 128k (rat/gluon, b21 + b22, with three ring entries).
# Rule: impls/rat/gluon/NOTES.md "Thirty-first session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=230 bash experiments/rat-gluon-next/call_s31d.sh`.
NAME=s31d
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-o128=kvr_cands:Owner128 --register rat/gluon-own=kvr_cands:Owner --register rat/gluon-own3=kvr_cands:Owner3"
TAILN=6 step check 70 python run_bench.py --preset check-triton --impl rat/gluon-o128 $REG --head-dim 128 --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k"; ab t128 4 6 60 --impl rat/gluon,rat/gluon-o128 --head-dim 128 --chunk-size 16 --mode train
left=$(( ${TOTAL:-230} - ($(date +%s) - t0) ))
S="--seq-len 64k,128k"; [ "$left" -ge 50 ] && ab tl 8 8 $(( left / 2 )) --impl rat/gluon,rat/gluon-own,rat/gluon-own3 --head-dim 64 --chunk-size 16 --mode train
ls -la "$OUT"
