# Device call P (f13 and b14, fifteenth session; under 9.5 minutes with TOTAL=540; branch f13 with b14.patch applied):
# the issue's table (train and prefill, D 128, L 16, 4k / 32k / 128k) for rat/gluon, rat/gluon-f13 (f12's fused
# forward with each tile's own chunk ends from its self entry) and rat/gluon-f13h (the same, whole heads per CTA);
# rat/gluon-d2 (b14) in training; D 64 and L 64 at 4k and 32k; then the check-triton preset on rat/gluon-f13h
# (train, prefill) and rat/gluon-d2 (train) with what time is left.
# Rules to adopt, written before the numbers: f13 or f13h becomes rat/gluon's forward for a mode and shape family
# (D 128 L 16, D 64 L 16, D 128 L 64) at the sequence lengths where it is faster than rat/gluon by more than 1%, routed
# by T (f13h by B*H against the SM count), once every check of that route is within the FlashAttention rule; b14 as in
# call_n.sh (d2 faster by more than 1% at 32k and 128k, not slower by more than 0.5% at 4k, checks within the rule).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash
# experiments/rat-gluon-next/call_p.sh`.
NAME=rp
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f13=f13_cands:Fused --register rat/gluon-f13h=f13_cands:FusedHeads --register rat/gluon-d2=b14_cands:Depth2"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
F=rat/gluon,rat/gluon-f13,rat/gluon-f13h
TAILN=12 step op 130 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/op"
TAILN=6 step d2 70 python run_bench.py --impl rat/gluon-d2 --mode train --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/d2"
TAILN=10 step d64 60 python run_bench.py --impl $F --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k $C --out "$R/d64"
TAILN=10 step l64 60 python run_bench.py --impl $F --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k $C --out "$R/l64"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=8 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-f13h,rat/gluon-d2 --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $W
ls -la "$OUT"
