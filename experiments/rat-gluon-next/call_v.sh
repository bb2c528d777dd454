# Device call V (sixteenth session; main): Nsight Compute stall samples per SASS instruction of rat/gluon's training
# kernels at the 32k train cell (T 32k, B 4, H 16, D 128, L 16, bf16), SM clock not locked: where the backward kernel's
# 64% of the ceiling and the forward's 65% go. Explains only; nothing adopted from it. The profiled process is the
# harness's own (`run_bench.py profile --ncu-child CASE`: the case warmed up, then one timed call between
# cudaProfilerStart / Stop); SHAPE=T,B,D,L chooses another shape. (Call V ran at e6676dc with ncu_train.py, a script
# that did the same; it was replaced by the harness's child afterwards.)
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_v.sh`.
NAME=rv
source "$(dirname "$0")/_call.sh"
IFS=, read -r T B D L <<< "${SHAPE:-32768,4,128,16}"
CASE="{\"impl\":\"rat/gluon\",\"mode\":\"train\",\"batch\":$B,\"seq_len\":$T,\"heads\":16,\"head_dim\":$D,\"dtype\":\"bfloat16\",\"device\":\"cuda\",\"chunk_size\":$L}"
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
TAILN=8 step ncu 240 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_ws_kernel|bwd_ws_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats -f -o "$R/prof" python run_bench.py profile --ncu-child "$CASE"
TAILN=3 step details 60 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=2 step source 90 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
