# Device call s29 (about 8 minutes with TOTAL=480): the scans' launches adopted from scan_cands.py's per-kernel rounds
# (impls.rat.gluon.SCAN_NC and bscan_nc) against the launches before (scans0_cands.Scans0) in the harness's gate
# rounds: train D 64 L 16 at 32k (backward scan 16, float32 accumulator), train D 128 L 16 and L 64 at 4k (backward
# scan 4, 16-bit; forward scan 8 at L 16), prefill D 128 L 16 at 4k (forward scan 8); then, while time is left,
# rat/gluon's rows of the issue's table (D 128 L 16, then D 64 and L 64).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=480 bash experiments/rat-gluon-next/call_s29.sh`.
NAME=s29
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-scans0=scans0_cands:Scans0"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
I="--impl rat/gluon,rat/gluon-scans0"
S="--seq-len 32k"; ab d64 6 8 100 $I --mode train --head-dim 64 --chunk-size 16
S="--seq-len 4k"; ab d128 6 8 100 $I --mode train --head-dim 128 --chunk-size 16,64
S="--seq-len 4k"; ab p128 6 8 80 $I --mode prefill --head-dim 128 --chunk-size 16
O="--impl rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --budget 1"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step op "$left" python run_bench.py $O --head-dim 128 --chunk-size 16 --out "$R/op"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step shapes-d64 "$left" python run_bench.py $O --head-dim 64 --chunk-size 16 --out "$R/shapes-d64"
left=$(( ${TOTAL:-480} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=10 step shapes-l64 "$left" python run_bench.py $O --head-dim 128 --chunk-size 64 --out "$R/shapes-l64"
ls -la "$OUT"
