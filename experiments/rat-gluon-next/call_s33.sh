# Device call s33 (under 9.5 minutes). On an H200: call_c.sh (TOTAL=470: the check preset, the table beside
# rat/triton, the D 64 and L 64 shapes, the per-stage profile at D 128), then bscan_mlp.py (the backward scan's loop
# with the dq accumulator's load first (acc), with kt_r, vt carried too (cr), the next row's loads first (pf), heads
# fastest (hf)), then fscan_hf.py (the forward scan with heads fastest) if 45 s are left. On an H100: call_s32d.sh
# (TOTAL=280: the thirty-second session's adoptions against the routes before them), bscan_mlp.py, fscan_hf.py, then
# the per-stage profile at D 64 L 16 (train, prefill, 4k / 32k / 128k) in the time left. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_s33.sh` (S33: the seconds it may take, 565).
D=$(dirname "$0")
T33=$(date +%s); S33=${S33:-565}
if nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; then
  TOTAL=$(( S33 - 95 )) bash "$D/call_c.sh"
else
  TOTAL=$(( S33 * 280 / 565 )) bash "$D/call_s32d.sh"
fi
NAME=s33
source "$D/_call.sh"
export PYTHONPATH=.:experiments/rat-gluon-next
TAILN=8 step bscan 90 env OUT="$R" python "$D/bscan_mlp.py" --rounds 5 --variants main,acc,cr,pf,hf,acc-nc/2
left=$(( S33 - ($(date +%s) - T33) ))
[ "$left" -ge 45 ] && TAILN=9 step fscan $(( left < 60 ? left : 60 )) env OUT="$R" python "$D/fscan_hf.py" --rounds 5
left=$(( S33 - ($(date +%s) - T33) ))
nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200 || { [ "$left" -ge 60 ] && TAILN=10 step profile "$left" python run_bench.py profile --impl rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 64 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"; }
ls -la "$OUT"
