# Device call C (under 9.5 minutes with TOTAL=540; the check preset's first compiles took 130 s on a fresh H100 in
# the tenth session, so it has 200 s): rat/gluon as it is (since the tenth session: b7c's dq writer below 256
# chunk ends) through the check-triton preset (FlashAttention rule), the issue's table beside rat/triton
# (train and prefill, D 128 / L 16), the D 64 and L 64 shapes, and the per-stage profile. Run from the repository
# root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_c.sh`.
NAME=rc
source "$(dirname "$0")/_call.sh"
C="--seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
TAILN=12 step op 90 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 128 --chunk-size 16 $C --out "$R/op"
TAILN=12 step shapes-d64 60 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 64 --chunk-size 16 $C --out "$R/shapes-d64"
[ "${L64:-1}" = 1 ] && TAILN=12 step shapes-l64 100 python run_bench.py --impl rat/triton,rat/gluon --mode train,prefill --head-dim 128 --chunk-size 64 $C --out "$R/shapes-l64"
left=$(( ${TOTAL:-440} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && TAILN=10 step profile "$left" python run_bench.py profile --impl rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 128 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"
ls -la "$OUT"
