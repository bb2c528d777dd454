# Device call s32d (about 4-5 minutes with TOTAL=280): the thirty-second session's adoptions checked. rat/gluon (f26 in
# the training forward at D 64 L 16 256-2048 chunk ends and D 128 L 64 512; b21 + b22 up to 8192) through the
# check-triton preset (train), then against rat/gluon-s31 (adopt32_cands.Before32, the routes before) at train D 64
# L 16 4k / 32k / 64k / 128k in 4 gate rounds; on an H200 with time left the issue's D 128 rows (call_c.sh's op step).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=280 bash experiments/rat-gluon-next/call_s32d.sh`.
NAME=s32d
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-s31=adopt32_cands:Before32"
left() { echo $(( ${TOTAL:-280} - ($(date +%s) - t0) )); }
TAILN=6 step check 80 python run_bench.py --preset check-triton --impl rat/gluon --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,64k,128k"; [ "$(left)" -ge 60 ] && ab a64 4 6 $(( $(left) / 2 - 10 )) --impl rat/gluon-s31,rat/gluon --head-dim 64 --chunk-size 16 --mode train
C="--seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 && [ "$(left)" -ge 70 ] && TAILN=12 step op $(( $(left) - 5 )) python run_bench.py --impl rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 $C --out "$R/op"
ls -la "$OUT"
