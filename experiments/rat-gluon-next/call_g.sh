# Device call G (eleventh session; under 9.5 minutes with TOTAL=540): on an H200 first the issue's table (rat/gluon
# beside rat/triton, train and prefill, D 128 / L 16); then ab_stages.py (the Gluon kernels' ring depth at head dim
# 64, never measured), ab_l64.py (the Gluon backward with the dq writer at L 64 below 16k, where rat/triton's
# runs) and Nsight Compute's warp states and stall sampling of fwd_ws_kernel and bwd_ws_kernel in one train step
# at T 4k (B 32, D 128, L 16), where both run far from their floors. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_g.sh`.
NAME=rg
source "$(dirname "$0")/_call.sh"
if grep -q H200 "$R/env.txt"; then
  TAILN=12 step op 90 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --out "$R/op"
fi
TAILN=20 step stages 200 env OUT="$R" ROUNDS=3 TS=4096,131072 PYTHONPATH=. python experiments/rat-gluon-next/ab_stages.py
TAILN=10 step l64 100 env OUT="$R" ROUNDS=3 TS=4096,8192 PYTHONPATH=. python experiments/rat-gluon-next/ab_l64.py
CASE='{"impl":"rat/gluon","mode":"train","batch":32,"seq_len":4096,"heads":16,"head_dim":128,"dtype":"bfloat16","device":"cuda","chunk_size":16,"window":null,"decay":null,"level":"op","kind":null,"compiled":null,"new_tokens":null,"n_layers":null,"family_params":[]}'
SECS="--section SpeedOfLight --section LaunchStats --section Occupancy --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section SourceCounters"
for k in fwd_ws_kernel bwd_ws_kernel; do
  left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
  [ "$left" -ge 45 ] && TAILN=8 step "ncu-$k" $(( left > 150 ? 150 : left - 5 )) ncu --profile-from-start off --kernel-name "$k" --launch-count 1 $SECS -o "$OUT/ncu-$k" python -m ratbench.bench.cli profile --ncu-child "$CASE"
  [ -f "$OUT/ncu-$k.ncu-rep" ] && ncu --import "$OUT/ncu-$k.ncu-rep" --print-details all > "$R/ncu-$k.txt" 2>&1 && tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
done
ls -la "$OUT"
