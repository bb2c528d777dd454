# Device call s31c (about 4 minutes with TOTAL=240): b21 (kvr_cands.KvRegs), b21 + b22 (kvr_cands.Owner) and b21 + b22
# with three ring entries (kvr_cands.Owner3) against rat/gluon at train D 64 L 16 32k / 64k / 128k in 8 gate rounds of
# 8 samples (call s31b's 64k and 128k rounds were within +-5% of each other: B 2 and 1; rat/gluon has b21 + b22 at 32k
# since 6f342b5). Rule: impls/rat/gluon/NOTES.md "Thirty-first session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=240 bash experiments/rat-gluon-next/call_s31c.sh`
# (SEQ and IMPLS cut it: e.g. SEQ=64k,128k IMPLS=rat/gluon,rat/gluon-own,rat/gluon-own3 with TOTAL=170).
NAME=s31c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-kvr=kvr_cands:KvRegs --register rat/gluon-own=kvr_cands:Owner --register rat/gluon-own3=kvr_cands:Owner3"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len ${SEQ:-32k,64k,128k}"; ab tl 8 8 $(( ${TOTAL:-240} / 2 - 10 )) --impl ${IMPLS:-rat/gluon,rat/gluon-kvr,rat/gluon-own,rat/gluon-own3} --head-dim 64 --chunk-size 16 --mode train
ls -la "$OUT"
