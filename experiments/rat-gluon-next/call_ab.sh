# Device call ab (twenty-first session): f21b and b19 again, in the gate's interleaved rounds. Call b19 ran each case's
# implementations one after the other (rat/gluon first): in the power-capped cases (32k, 128k) the later rows ran
# 5-12% lower mean SM clocks (rat/gluon 1693 MHz against walkp's 1485 in the 128k prefill), so those medians carry the
# order. Here each pair is first swept briefly (budget 1 s, its results the gate's baseline) and then re-measured by
# `run_bench.py gate` in rounds over all cases, the direction alternating per round; the gate's pooled rows are the
# A/B (printed by `run_bench.py report --baseline rat/gluon`).
# Prediction (before the numbers): f21b's 128k prefill loss in call b19 (+3 to +4%) shrinks below 1% (the order);
# the 4k prefill stays 0.3-1% faster. b19: within 0.5% of rat/gluon at every T (call b19's profile: the 32k backward
# kernel 5.33 against 5.29 ms).
# Rules as in call_b19.sh, on the gate's pooled medians.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=420 bash experiments/rat-gluon-next/call_ab.sh`.
NAME=rab
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-walkp=walk_cands:WalkPrefill --register rat/gluon-tail1=tail_cands:Tail1"
REG="$REG --register rat/gluon-tail2=tail_cands:Tail2"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
# ab NAME ROUNDS SPR LIMIT SWEEP-ARGS...: the sweep, its gate, the gate's table
ab() { local n=$1 rounds=$2 spr=$3 lim=$4; shift 4
  TAILN=3 step "$n" "$lim" python run_bench.py "$@" $S $C --out "$R/$n"
  TAILN=3 step "$n-gate" "$lim" python run_bench.py gate --baseline "$R/$n" --rounds "$rounds" --samples-per-round "$spr" --out "$R/$n-gate" --no-progress $REG
  TAILN=14 step "$n-table" 60 python run_bench.py report "$R/$n-gate" --baseline rat/gluon --no-figures; }
ab prefill 8 10 150 --mode prefill --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-walkp
ab train 6 8 200 --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-tail1,rat/gluon-tail2
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 90 ] && ab d64 6 10 $(( left / 2 )) --mode prefill --head-dim 64 --chunk-size 16 --impl rat/gluon,rat/gluon-walkp
ls -la "$OUT"
