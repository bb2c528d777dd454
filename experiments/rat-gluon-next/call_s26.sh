# Device call s26 (twenty-sixth session): call s25 on an H100 stopped at f22's first case (illegal memory access in
# every f22 launch, train and prefill), so b15 and b20 without f22: the check preset's training cases on rat/gluon-wd
# (b15 + b20; b20's flags could hang: the step's timeout), then training in the gate's rounds: rat/gluon, b15
# (rat/gluon-wgm), b15 + b20 (rat/gluon-wd). Predictions and rule as call_s22.sh / call_s25.sh (b15 -2.4% of the
# backward's products at 32k, 0.6% at 128k; b20 -0.03 ms at every T).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=360 bash experiments/rat-gluon-next/call_s26.sh`.
NAME=rs26
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-wgm=half_cands:Wgm --register rat/gluon-wd=half_cands:WgmDkv"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 100 python run_bench.py --preset check-triton --impl rat/gluon-wd --mode train --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-360} - ($(date +%s) - t0) ))
ab train 4 5 "$(( left / 2 ))" --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-wgm,rat/gluon-wd
ls -la "$OUT"
