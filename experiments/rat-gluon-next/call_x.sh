# Device call X (sixteenth session; branch f16): Nsight Compute of f16 (the scan partition) and rat/gluon, one prefill
# at 4k, head dim 64 (ncu_f13.py, HEAD_DIMS=64): the per-partition stall mix that call W's ncu step did not get.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_x.sh`.
NAME=rx
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
HEAD_DIMS=64 IMPLS=rat/gluon,f13s4 TAILN=4 step ncu 150 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_fused_kernel|fwd_ws_kernel|scan_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats -f -o "$R/prof" python experiments/rat-gluon-next/ncu_f13.py
TAILN=2 step details 40 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=1 step source 60 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; rm -f "$R/prof.ncu-rep"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
