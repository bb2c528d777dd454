# Device call T (sixteenth session; branch pp): rat/gluon against rat/gluon-pp (the forward's consumer warpgroups
# taking turns issuing their products, FA3's ping-pong) in the harness: D 64 (train, prefill, 4k / 32k / 128k), D 128
# (the issue's table), L 64 (4k / 32k).
# Rule, written before the numbers: pp becomes the forward for a mode and shape family at the sequence lengths where it
# is faster than rat/gluon by more than 1%, once the check preset passes it there (a later call); else it is rejected.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_t.sh`.
NAME=rt
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-pp=pp_cands:PingPong"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-pp
TAILN=16 step d64 150 python run_bench.py --impl $F --mode prefill,train --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/d64"
TAILN=16 step op 150 python run_bench.py --impl $F --mode prefill,train --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
TAILN=16 step l64 100 python run_bench.py --impl $F --mode prefill,train --head-dim 128 --chunk-size 64 --seq-len 4k,32k $C --out "$R/l64"
ls -la "$OUT"
