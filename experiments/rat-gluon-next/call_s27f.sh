# Device call s27f (twenty-seventh session): Nsight Compute of fwd_ws_kernel in the prefill without and with f23, at a
# shape where f23 wins (D 64, 32k) and one where it loses (D 64, 128k): explains only, nothing adopted from it.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s27f.sh`.
NAME=rs27f
source "$(dirname "$0")/_call.sh"
export PYTHONPATH=.
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
for shape in 131072,1,64,16 32768,4,64,16; do
  for mode in main xt; do
    n="${mode}-${shape%%,*}"
    SHAPE=$shape MODE=$mode TAILN=4 step "ncu-$n" 150 "$NCU" --clock-control none --profile-from-start off --kernel-name regex:fwd_ws_kernel --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats -f -o "$R/$n" python experiments/rat-gluon-next/ncu_xt.py
    TAILN=1 step "details-$n" 60 "$NCU" --import "$R/$n.ncu-rep" --page details --csv
    rm -f "$R/$n.ncu-rep"
  done
done
tar czf "$OUT/$NAME.tgz" -C /tmp "$NAME"
ls -la "$OUT"
