# Device call s26b (twenty-sixth session): f22's illegal memory access (call s25, H100) located, then call s26 (b15 and
# b20 without f22) with the time left. f22 first without the sanitizer at B 1 (does one call fault?), then under
# compute-sanitizer's memcheck (the faulting instruction, its address and thread; --print-limit keeps the log short).
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=450 bash experiments/rat-gluon-next/call_s26b.sh`.
NAME=rs26b
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
TAILN=4 step f22-plain 60 python experiments/rat-gluon-next/f22_san.py prefill 4096 1
TAILN=40 step f22-san 150 "$SAN" --tool memcheck --print-limit 4 --show-backtrace device python experiments/rat-gluon-next/f22_san.py prefill 4096 1
REG="--register rat/gluon-wgm=half_cands:Wgm --register rat/gluon-wd=half_cands:WgmDkv"
C="--tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures $REG --budget 1"
S="--seq-len 4k,32k,128k"
TAILN=6 step check 100 python run_bench.py --preset check-triton --impl rat/gluon-wd --mode train --device cuda --out "$R/check" --no-progress --no-figures $REG
left=$(( ${TOTAL:-450} - ($(date +%s) - t0) ))
[ "$left" -ge 60 ] && ab train 3 5 "$(( left / 2 ))" --mode train --head-dim 128 --chunk-size 16 --impl rat/gluon,rat/gluon-wgm,rat/gluon-wd
ls -la "$OUT"
