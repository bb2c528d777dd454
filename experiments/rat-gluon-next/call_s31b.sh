# Device call s31b (about 6 minutes with TOTAL=360): b21 (kvr_cands.KvRegs) and b22 on it (kvr_cands.Owner) through
# the check-triton preset at head dim 64 (train), then against rat/gluon in the harness's gate rounds (6): train D 64
# L 16 at 4k / 16k / 32k / 64k / 128k; on an H200 rat/gluon's issue table (D 128, L 16); then the per-stage profile
# of the two at 32k and 128k.
# Prediction and rule: impls/rat/gluon/NOTES.md "Thirty-first session".
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=360 bash experiments/rat-gluon-next/call_s31b.sh`.
NAME=s31b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-kvr=kvr_cands:KvRegs --register rat/gluon-own=kvr_cands:Owner"
TAILN=6 step check 100 python run_bench.py --preset check-triton --impl rat/gluon-own $REG --head-dim 64 --mode train --device cuda --out "$R/check" --no-progress --no-figures
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,16k,32k,64k,128k"; ab tt 6 6 150 --impl rat/gluon,rat/gluon-kvr,rat/gluon-own --head-dim 64 --chunk-size 16 --mode train
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
if grep -q H200 "$R/env.txt" && [ "$left" -ge 140 ]; then
  TAILN=12 step op 90 python run_bench.py --impl rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
  left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
fi
[ "$left" -ge 40 ] && TAILN=8 step profile "$left" python run_bench.py profile --impl rat/gluon-kvr,rat/gluon-own $REG --mode train --seq-len 32k,128k --tokens 128k --heads 16 --head-dim 64 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"
ls -la "$OUT"
