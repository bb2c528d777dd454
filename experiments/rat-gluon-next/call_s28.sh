# Device call s28 (about 5 minutes with TOTAL=330): the scans' launch shapes (scan_cands.py: scan_kernel and
# bwd_scan_kernel at several chunks side by side and warps, D 64 / 128, L 16 / 64, 4k), then, while time is left,
# the per-stage profile of rat/gluon at D 64 (train and prefill, 4k / 32k / 128k). Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=330 bash experiments/rat-gluon-next/call_s28.sh`.
NAME=s28
source "$(dirname "$0")/_call.sh"
P="--mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress"
TAILN=70 step scans 240 env OUT="$R" PYTHONPATH=. python experiments/rat-gluon-next/scan_cands.py --shapes "${SHAPES:-64:16,128:16,128:64}" --rounds "${ROUNDS:-7}"
left=$(( ${TOTAL:-330} - ($(date +%s) - t0) ))
[ "$left" -ge 45 ] && TAILN=10 step profile-d64 "$left" python run_bench.py profile --impl rat/gluon --head-dim 64 --chunk-size 16 $P --out "$R/profile-d64"
ls -la "$OUT"
