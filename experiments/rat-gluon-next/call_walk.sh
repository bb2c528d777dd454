# Device call walk (twentieth session): f21, fwd_ws_kernel's tiles stepped by adds (RATTritonConfig.fwd_walk;
# walk_cands.py) against rat/gluon: the harness's table (cases interleaved), the per-stage profile of both, the
# check-triton preset on rat/gluon-walk (FlashAttention rule), and D 64 / L 64 at 4k / 32k / 128k.
# Prediction (before the numbers): main's consumers take three full integer divisions per tile and the loader two
# (walk_cands.py); call hg put about 12 us per division per tile on the 4k prefill's forward (H100). So the forward
# kernel of rat/gluon-walk is 20-40 us faster at every T (124 tiles per CTA at each T of the issue's table): the 4k
# prefill -1.5 to -2.5% (H100: 1.577 -> about 1.55 ms), the 4k train step -0.4 to -0.7%, 32k and 128k -0.1 to -0.4%,
# D 64 and L 64 the same microseconds. Compiled for sm_90: 6,288 instructions in the D 128 prefill against main's 6,408,
# no spills there; the D 128 training launch has 10 spill instructions (main: none), none in the key-block loops.
# Rule: adopted where the check passes, the 4k prefill is faster and no case is slower (0.5%) at any T; else it goes.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=420 bash experiments/rat-gluon-next/call_walk.sh`.
NAME=rwalk
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
REG="--register rat/gluon-walk=walk_cands:Walk"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG"
P=rat/gluon,rat/gluon-walk
TAILN=14 step op 150 python run_bench.py --impl $P --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 3 $C --out "$R/op"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=14 step profile 100 python run_bench.py profile --impl $P --mode train,prefill --head-dim 128 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/profile"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 40 ] && TAILN=6 step check $(( left < 120 ? left : 120 )) python run_bench.py --preset check-triton --impl rat/gluon-walk --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step d64 $(( left / 2 )) python run_bench.py --impl $P --mode train,prefill --head-dim 64 --chunk-size 16 --seq-len 4k,32k,128k --budget 1 $C --out "$R/d64"
left=$(( ${TOTAL:-420} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] && TAILN=10 step l64 "$left" python run_bench.py --impl $P --mode train,prefill --head-dim 128 --chunk-size 64 --seq-len 4k,32k,128k --budget 1 $C --out "$R/l64"
ls -la "$OUT"
