# Device call s25 (twenty-fifth session): call s22's A/B (f22, b15; predictions and the rule to adopt in
# call_s22.sh's header) with b20 on top of both (rat/gluon-hwd: dK, dV's accumulators stored by each key block's
# first item, no zero fills). b20's prediction: the fills are 2 x 67 MB at every T (131k tokens, H 16, D 128,
# float32), 0.030 ms on the H200 (twenty-second session's profile), so the train step -0.03 ms: -0.7% at 4k, -0.3%
# at 32k, -0.1% at 128k, against rat/gluon-hw. The check preset first: b20's flags could hang (a step's timeout).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=560 bash experiments/rat-gluon-next/call_s25.sh`.
NAME=rs25
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-half=half_cands:Half --register rat/gluon-wgm=half_cands:Wgm"
REG="$REG --register rat/gluon-hw=half_cands:HalfWgm --register rat/gluon-hwd=half_cands:HalfWgmDkv"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 120 python run_bench.py --preset check-triton --impl rat/gluon-hwd --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
ab train 4 6 200 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half,rat/gluon-wgm,rat/gluon-hw,rat/gluon-hwd
ab prefill 5 10 110 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-half
left=$(( ${TOTAL:-560} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=12 step profile "$left" python run_bench.py profile --impl rat/gluon,rat/gluon-hwd --mode train --head-dim 128 --chunk-size 16 --seq-len 32k $C --out "$R/profile"
ls -la "$OUT"
