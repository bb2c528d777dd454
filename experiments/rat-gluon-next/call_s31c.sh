# Device call s31c (about 3 minutes with TOTAL=200): b21 (kvr_cands.KvRegs) and b21 + b22 (kvr_cands.Owner) against
# rat/gluon at train D 64 L 16 64k / 128k in 8 gate rounds of 8 samples (call s31b's 64k and 128k rounds were
# within +-5% of each other: B 2 and 1). Rule: impls/rat/gluon/NOTES.md "Thirty-first session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=200 bash experiments/rat-gluon-next/call_s31c.sh`.
NAME=s31c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-kvr=kvr_cands:KvRegs --register rat/gluon-own=kvr_cands:Owner"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 64k,128k"; ab tl 8 8 $(( ${TOTAL:-200} / 2 - 10 )) --impl rat/gluon,rat/gluon-kvr,rat/gluon-own --head-dim 64 --chunk-size 16 --mode train
ls -la "$OUT"
