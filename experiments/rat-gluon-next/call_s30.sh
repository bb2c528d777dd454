# Device call s30 (about 6 minutes with TOTAL=360): f25, the D 64 forward with three consumer warpgroups
# (wg3_cands.Wg3, and Wg3Ep0 without polynomial exponentials), through the check-triton preset (FlashAttention rule)
# and against rat/gluon in the harness's gate rounds: train D 64 L 16 at 4k / 32k / 128k, then prefill 64k / 128k
# (below 64k the D 64 prefill takes f23's consumers, two warpgroups: the same kernel).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=360 bash experiments/rat-gluon-next/call_s30.sh`.
NAME=s30
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-wg3=wg3_cands:Wg3 --register rat/gluon-wg3e0=wg3_cands:Wg3Ep0"
TAILN=6 step check 120 python run_bench.py --preset check-triton --impl rat/gluon-wg3,rat/gluon-wg3e0 $REG --head-dim 64 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
I="--impl rat/gluon,rat/gluon-wg3,rat/gluon-wg3e0 --head-dim 64 --chunk-size 16"
S="--seq-len 4k,32k,128k"; ab tt 4 6 90 $I --mode train
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
S="--seq-len 64k,128k"; [ "$left" -ge 50 ] && ab pp 4 6 $(( left / 2 )) $I --mode prefill
ls -la "$OUT"
