# Device call s30b (about 3 minutes with TOTAL=200): f25 (three consumer warpgroups) in the D 64 prefill where
# rat/gluon takes f23's consumers (16k, 32k; wg3_cands.Wg3Nx: f23 off, three warpgroups) against rat/gluon in the gate's
# rounds, then the per-stage profile of Wg3 against rat/gluon in training (4k, 128k): where call s30's training loss is.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=200 bash experiments/rat-gluon-next/call_s30b.sh`.
NAME=s30b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-wg3=wg3_cands:Wg3 --register rat/gluon-wg3nx=wg3_cands:Wg3Nx"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 16k,32k"; ab pp 4 6 70 --impl rat/gluon,rat/gluon-wg3nx --head-dim 64 --chunk-size 16 --mode prefill
left=$(( ${TOTAL:-200} - ($(date +%s) - t0) ))
TAILN=8 step profile "$left" python run_bench.py profile --impl rat/gluon,rat/gluon-wg3 $REG --mode train --seq-len 4k,128k --tokens 128k --heads 16 --head-dim 64 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"
ls -la "$OUT"
