# Device call O (f12, next session; under 9.5 minutes with TOTAL=540): f12.patch applied here if the tree lacks it
# (git apply works outside a repository); then the issue's table for rat/gluon, rat/gluon-f12 and rat/gluon-f12g16
# (train and prefill, D 128 / L 16), the check-triton preset on rat/gluon-f12 (train, prefill and decode through its
# prefill: L 1, 16, 64, D 64 and 128, by the FlashAttention rule), the D 64 and L 64 shapes, and f12's per-stage
# profile. Rule to adopt, written before the numbers: f12 (group 1, or group 16 where that is faster) becomes
# rat/gluon's forward for a mode (train, prefill) and shape family (D 128 L 16, D 64 L 16, D 128 L 64) where every
# check passes and it is faster than rat/gluon at 4k, 32k and 128k of that family; faster at some T only: where
# faster by more than 1%, if not slower by more than 0.5% at the others. Run from the repository root as `rm -rf
# .git; export RATBENCH_GIT_REV=<commit>; TOTAL=540 bash experiments/rat-gluon-next/call_o.sh`, with <commit> one that has
# f12.patch applied (commit it on a branch first), so that the results name the code that ran.
NAME=ro
source "$(dirname "$0")/_call.sh"
grep -q fwd_fused impls/rat/config.py || git apply experiments/rat-gluon-next/f12.patch || { echo "f12.patch did not apply"; exit 4; }
export PYTHONPATH=.:experiments/rat-gluon-next
W="--register rat/gluon-f12=f12_cands:Fused --register rat/gluon-f12g16=f12_cands:FusedGroup16"
C="--seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $W"
TAILN=12 step op 110 python run_bench.py --impl rat/gluon,rat/gluon-f12,rat/gluon-f12g16 --mode train,prefill --head-dim 128 --chunk-size 16 $C --out "$R/op"
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon-f12 --device cuda --out "$R/check" --no-progress --no-figures $W
TAILN=12 step shapes-d64 60 python run_bench.py --impl rat/gluon,rat/gluon-f12 --mode train,prefill --head-dim 64 --chunk-size 16 $C --out "$R/shapes-d64"
TAILN=12 step shapes-l64 80 python run_bench.py --impl rat/gluon,rat/gluon-f12 --mode train,prefill --head-dim 128 --chunk-size 64 $C --out "$R/shapes-l64"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step profile "$left" python run_bench.py profile --impl rat/gluon-f12 --mode train,prefill --head-dim 128 --chunk-size 16 $C --out "$R/profile"
ls -la "$OUT"
