# Device call S17 (seventeenth session): rat/gluon with bwd_ws_kernel's items of 32 tiles up to 256 chunk ends (the
# rule on this commit) against items of 64 (rat/gluon-seg64, the rule before): the check-triton preset's training cases
# (FlashAttention rule), then the per-kernel profile at the shapes the rule changes (train 4k: D 128 L 16, D 64 L 16,
# D 128 L 64), then Nsight Compute of the 4k train cell's kernels (call_v.sh's, SHAPE 4096,32,128,16) with what is left.
# Rule: the seg 32 rule stays if the check passes and bwd_ws_kernel is not slower than seg64's at any of the three
# shapes by more than 1%; else the rule goes back.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; TOTAL=560 bash experiments/rat-gluon-next/call_s17.sh`.
NAME=rs17
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
C="--budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures --register rat/gluon-seg64=seg_cands:Seg64"
F=rat/gluon,rat/gluon-seg64
TAILN=6 step check 200 python run_bench.py --preset check-triton --impl rat/gluon --mode train --device cuda --out "$R/check" --no-progress --no-figures
TAILN=8 step d128 60 python run_bench.py profile --impl $F --mode train --head-dim 128 --chunk-size 16 --seq-len 4k $C --out "$R/d128"
TAILN=8 step d64 50 python run_bench.py profile --impl $F --mode train --head-dim 64 --chunk-size 16 --seq-len 4k $C --out "$R/d64"
TAILN=8 step l64 50 python run_bench.py profile --impl $F --mode train --head-dim 128 --chunk-size 64 --seq-len 4k $C --out "$R/l64"
CASE='{"impl":"rat/gluon","mode":"train","batch":32,"seq_len":4096,"heads":16,"head_dim":128,"dtype":"bfloat16","device":"cuda","chunk_size":16}'
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
left=$(( ${TOTAL:-560} - ($(date +%s) - t0) - 80 ))
[ "$left" -ge 60 ] && TAILN=6 step ncu "$left" "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:bwd_ws_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats -f -o "$R/prof" python run_bench.py profile --ncu-child "$CASE"
[ -f "$R/prof.ncu-rep" ] && TAILN=3 step details 30 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
[ -f "$R/prof.ncu-rep" ] && TAILN=2 step source 45 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
[ -f "$R/source.log" ] && gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
