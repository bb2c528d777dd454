# Device call b25 (about 8 minutes with TOTAL=480): b25, dq's accumulator in 16 bits beyond two key blocks
# (acc16_cands.py; prediction and rule in impls/rat/gluon/NOTES.md "Thirty-fourth session"). Before each shape
# family's rounds, the FlashAttention rule where b25 changes dq, which the check-triton preset (T <= 4k, 256 chunk
# ends at L 16) does not reach: train, D 128, L 16 at 8k and 32k (B 1, H 4) and 64k (H 1), L 64 at 32k, D 64 at 8k and
# 32k (H 4). Then rat/gluon-acc16 (and -acc16nc4 and -acc16plain at D 128 L 16) against rat/gluon in the gate's rounds
# at D 128 L 16 8k / 32k / 128k, L 64 32k / 128k and D 64 32k / 128k (train, bf16, H 16, 131,072 tokens). Run from the
# repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_b25.sh`.
NAME=b25
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-acc16=acc16_cands:Acc16All --register rat/gluon-acc16nc4=acc16_cands:Acc16AllNc4 --register rat/gluon-acc16plain=acc16_cands:Acc16Plain"
left() { echo $(( ${TOTAL:-480} - ($(date +%s) - t0) )); }
K="--mode train --head-dim 128 --dtype bf16 --accuracy fa-rule --budget 0.2 --device cuda --no-progress --no-figures $REG"
TAILN=8 step check 120 python run_bench.py --impl rat/gluon-acc16,rat/gluon-acc16nc4,rat/gluon-acc16plain,rat/gluon --seq-len 8k,32k --batch 1 --heads 4 --chunk-size 16 $K --out "$R/check"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 8k,32k,128k"; [ "$(left)" -ge 90 ] && ab a128 4 6 $(( $(left) * 3 / 5 / 2 )) --impl rat/gluon,rat/gluon-acc16,rat/gluon-acc16nc4,rat/gluon-acc16plain --head-dim 128 --chunk-size 16 --mode train
TAILN=6 step check-long 80 python run_bench.py --impl rat/gluon-acc16,rat/gluon --seq-len 64k --batch 1 --heads 1 --chunk-size 16 $K --out "$R/check-long"
TAILN=6 step check-l64 60 python run_bench.py --impl rat/gluon-acc16,rat/gluon --seq-len 32k --batch 1 --heads 4 --chunk-size 64 $K --out "$R/check-l64"
S="--seq-len 32k,128k"; [ "$(left)" -ge 60 ] && ab a64l 4 6 $(( $(left) / 3 - 10 )) --impl rat/gluon,rat/gluon-acc16 --head-dim 128 --chunk-size 64 --mode train
TAILN=6 step check-d64 60 python run_bench.py --impl rat/gluon-acc16,rat/gluon --seq-len 8k,32k --batch 1 --heads 4 --chunk-size 16 ${K/--head-dim 128/--head-dim 64} --out "$R/check-d64"
S="--seq-len 32k,128k"; [ "$(left)" -ge 60 ] && ab ad64 4 6 $(( $(left) / 2 - 10 )) --impl rat/gluon,rat/gluon-acc16 --head-dim 64 --chunk-size 16 --mode train
ls -la "$OUT"
