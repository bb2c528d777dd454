# Device call s32c (TOTAL seconds, about 4-5 minutes): b23 (kvr_cands.Owner128) through the check-triton preset (train,
# D 128) and against rat/gluon at train D 128 L 16 4k / 32k (4 gate rounds); b21 + b22 with the dq writer
# (kvr_cands.OwnerW) against rat/gluon at train D 64 L 16 16k / 32k (4 rounds); then call s31c cut to D 64 64k / 128k
# (rat/gluon, b21 + b22, with three ring entries, with the writer) as time allows.
# Prediction and rule: impls/rat/gluon/NOTES.md "Thirty-first session" (b23, s31c) and "Thirty-second session" (OwnerW).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=260 bash experiments/rat-gluon-next/call_s32c.sh`.
NAME=s32c
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-o128=kvr_cands:Owner128 --register rat/gluon-own=kvr_cands:Owner --register rat/gluon-own3=kvr_cands:Owner3 --register rat/gluon-ownw=kvr_cands:OwnerW"
left() { echo $(( ${TOTAL:-260} - ($(date +%s) - t0) )); }
TAILN=6 step check 60 python run_bench.py --preset check-triton --impl rat/gluon-o128,rat/gluon-ownw $REG --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k"; [ "$(left)" -ge 60 ] && ab t128 4 6 50 --impl rat/gluon,rat/gluon-o128 --head-dim 128 --chunk-size 16 --mode train
S="--seq-len 16k,32k"; [ "$(left)" -ge 50 ] && ab w64 4 6 40 --impl rat/gluon,rat/gluon-ownw --head-dim 64 --chunk-size 16 --mode train
S="--seq-len 64k,128k"; [ "$(left)" -ge 50 ] && ab tl 6 6 $(( $(left) / 2 )) --impl rat/gluon,rat/gluon-own,rat/gluon-own3,rat/gluon-ownw --head-dim 64 --chunk-size 16 --mode train
ls -la "$OUT"
