# Device call H (eleventh session; under 9.5 minutes with TOTAL=540): the check-triton preset on rat/gluon with the
# Gluon backward at L 64 below 16k (its L 64 train cases now take it), the L 64 shapes beside rat/triton, on an H200
# the issue's table, and Nsight Compute's source page (SASS, stall samples) of call G's reports if ncu_reps/ holds
# them. Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash
# experiments/rat-gluon-next/call_h.sh`.
NAME=rh
source "$(dirname "$0")/_call.sh"
C="--seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
TAILN=12 step shapes-l64 70 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 128 --chunk-size 64 $C --out "$R/shapes-l64"
if grep -q H200 "$R/env.txt"; then
  TAILN=12 step op 90 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 $C --out "$R/op"
fi
for f in ncu_reps/*.ncu-rep; do
  [ -f "$f" ] && ncu --import "$f" --page source --print-source sass --csv > "$R/$(basename "$f" .ncu-rep)-source.csv" 2> "$R/$(basename "$f" .ncu-rep)-source.err"
done
tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
