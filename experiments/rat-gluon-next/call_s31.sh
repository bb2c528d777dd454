# Device call s31 (about 6 minutes with TOTAL=360): b21, K_w and V_w in registers in the D 64 backward
# (kvr_cands.KvRegs), through the check-triton preset at head dim 64 (train: the FlashAttention rule), then against
# rat/gluon in the harness's gate rounds: train D 64 L 16 at 4k / 32k / 128k; then both under the per-stage profile;
# on an H200 also rat/gluon's issue table (D 128, L 16; the last H200 rows are the twenty-second session's).
# Prediction and rule: impls/rat/gluon/NOTES.md "Thirty-first session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=360 bash experiments/rat-gluon-next/call_s31.sh`.
NAME=s31
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-kvr=kvr_cands:KvRegs"
TAILN=6 step check 110 python run_bench.py --preset check-triton --impl rat/gluon-kvr $REG --head-dim 64 --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"; ab tt 4 6 90 --impl rat/gluon,rat/gluon-kvr --head-dim 64 --chunk-size 16 --mode train
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
if grep -q H200 "$R/env.txt" && [ "$left" -ge 150 ]; then
  TAILN=12 step op 90 python run_bench.py --impl rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
  left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
fi
[ "$left" -ge 40 ] && TAILN=10 step profile "$left" python run_bench.py profile --impl rat/gluon,rat/gluon-kvr $REG --mode train --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 64 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"
ls -la "$OUT"
