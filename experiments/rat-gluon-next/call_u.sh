# Device call U (sixteenth session; branch pp): where pp (fwd_pingpong) wins, for a route by T: rat/gluon against
# rat/gluon-pp in the harness at D 64 L 16 and D 128 L 64 (train, prefill, 8k / 16k / 32k / 64k / 128k) and D 128 L 16
# (prefill, 16k / 64k), then the check-triton preset on rat/gluon-pp (train, prefill) with what time is left.
# Rule (call T's): pp becomes the forward for a mode and shape family over a range of T where it is faster than
# rat/gluon by more than 1% at every measured T, once the check preset passes it; else rejected.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=420 bash experiments/rat-gluon-next/call_u.sh`.
NAME=ru
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-pp=pp_cands:PingPong"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-pp
TAILN=16 step d64 130 python run_bench.py --impl $F --mode prefill,train --head-dim 64 --chunk-size 16 --seq-len 8k,16k,32k,64k,128k $C --out "$R/d64"
TAILN=16 step l64 130 python run_bench.py --impl $F --mode prefill,train --head-dim 128 --chunk-size 64 --seq-len 8k,16k,32k,64k,128k $C --out "$R/l64"
TAILN=8 step d128 60 python run_bench.py --impl $F --mode prefill --head-dim 128 --chunk-size 16 --seq-len 16k,64k $C --out "$R/d128"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=8 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-pp --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $W
ls -la "$OUT"
