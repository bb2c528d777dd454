# Device call R (sixteenth session; branch f13 at 6258f92): Nsight Compute stall samples per SASS instruction of
# f13's fused forward, rat/gluon's fwd_ws_kernel and scan_kernel (one prefill each at 4k, B 32, H 16, L 16, bf16,
# head dim 128 and 64; ncu_f13.py), SM clock not locked. Only explains where f13's extra ~7-10 us per tile goes.
NAME=rr
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
TAILN=12 step ncu 300 "$NCU" --clock-control none --profile-from-start off --kernel-name "regex:fwd_fused_kernel|fwd_ws_kernel|scan_kernel" --section SpeedOfLight --section WarpStateStats --section SourceCounters --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats -f -o "$R/prof" python experiments/rat-gluon-next/ncu_f13.py
TAILN=5 step details 60 "$NCU" --import "$R/prof.ncu-rep" --page details --csv
TAILN=3 step source 120 "$NCU" --import "$R/prof.ncu-rep" --page source --print-source sass --csv
gzip -f "$R/source.log"; tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
