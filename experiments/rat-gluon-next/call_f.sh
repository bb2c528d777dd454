# Device call F (under 9.5 minutes; TOTAL=seconds): the scans beside the attention kernels on a second stream
# (RATTritonConfig.stream_groups, impls/rat/gluon/streams.py). ab_overlap.py (the kernels' launches by hand, 4k and
# 32k), then ov_cands.py's candidates beside rat/gluon in the harness (train and prefill, D 128 / L 16, 4k / 8k /
# 32k: 128k has B = 1, one group), then the check-triton preset on rat/gluon-ov4. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_f.sh`.
export PYTHONPATH=.:experiments/rat-gluon-next
NAME=rf
source "$(dirname "$0")/_call.sh"
TAILN=30 step ab 200 env OUT="$R" TS=4096,32768 python experiments/rat-gluon-next/ab_overlap.py
REG=$(python experiments/rat-gluon-next/ov_cands.py | sed 's/ *#.*//' | tr '\n' ' ')
C="--seq-len 4k,8k,32k --chunk-size 16 --head-dim 128 --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
# shellcheck disable=SC2086
TAILN=30 step op 200 python run_bench.py --impl rat/gluon,rat/gluon-ov4,rat/gluon-ov4hi,rat/gluon-ov2,rat/gluon-ov4r32 $REG --mode train,prefill $C --out "$R/op"
left=$(( ${TOTAL:-540} - ($(date +%s) - t0) ))
# shellcheck disable=SC2086
[ "$left" -ge 40 ] && TAILN=8 step check "$left" python run_bench.py --preset check-triton --impl rat/gluon-ov4 $REG --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
ls -la "$OUT"
