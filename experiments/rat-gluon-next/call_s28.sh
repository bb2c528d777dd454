# Device call s28 (under 8 minutes): the scans' launch shapes (scan_cands.py: scan_kernel and bwd_scan_kernel at
# several chunks side by side and warps, D 64 / 128, L 16 / 64, 4k), then the per-stage profile of rat/gluon at
# D 64 and L 64 (train and prefill, 4k / 32k / 128k). Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s28.sh`.
NAME=s28
source "$(dirname "$0")/_call.sh"
P="--mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress"
TAILN=110 step scans 300 env OUT="$R" python experiments/rat-gluon-next/scan_cands.py
TAILN=10 step profile-d64 90 python run_bench.py profile --impl rat/gluon --head-dim 64 --chunk-size 16 $P --out "$R/profile-d64"
TAILN=10 step profile-l64 90 python run_bench.py profile --impl rat/gluon --head-dim 128 --chunk-size 64 $P --out "$R/profile-l64"
ls -la "$OUT"
