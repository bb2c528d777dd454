# Device call Z (sixteenth session; branch f16): f16c (f16b with f double-buffered: call Y's profile had the scan
# partition waiting about 10% of the time at its first wait, f_ready, which a single f buffer makes a round trip per
# tile) against rat/gluon, D 64, L 16, prefill at 4k / 32k / 128k. Rule (call W's).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_z.sh`.
NAME=rz
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f16c=f13_cands:FusedS4"
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=10 step d64 80 python run_bench.py --impl rat/gluon,rat/gluon-f16c --mode prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k $C --out "$R/d64"
ls -la "$OUT"
