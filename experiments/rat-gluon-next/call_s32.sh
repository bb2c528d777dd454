# Device call s32: on an H200, call_c.sh (the issue's table, D 64, L 64, profile; TOTAL=540: rat/gluon's defaults do
# not take f26); on an H100, call_s32b.sh (f26 against rat/gluon; TOTAL=250), then call_s32c.sh (b23, the D 64 dq
# writer with b22, b22 at 64k / 128k) in what is left of 540 s.
# Run from the repository root as `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s32.sh`.
G=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); echo "GPU: $G"
case "$G" in
  *H200*) TOTAL=540 bash "$(dirname "$0")/call_c.sh" ;;
  *) t=$(date +%s); TOTAL=250 bash "$(dirname "$0")/call_s32b.sh"
     TOTAL=$(( 540 - ($(date +%s) - t) )) bash "$(dirname "$0")/call_s32c.sh" ;;
esac
