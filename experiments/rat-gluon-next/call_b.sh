# Device call B (under 10 minutes), right after call A on the same warm machine: the candidate that won call A's
# train rows (WIN; unset, pick.py applies the decision rule to call A's rows left in /tmp/ra; one of
# rat/gluon, rat/gluon-b7b, -b9, -fwd, -b7c, -b7c10, -b7c10b8, -b7c11, -writer) through the check-triton preset (FlashAttention rule), the
# D 64 and L 64 shapes beside main's kernels, and the per-stage profile at D 128 / L 16. Run as `rm -rf .git; export
# RATBENCH_GIT_REV=<commit> WIN=<name>; bash experiments/rat-gluon-next/call_b.sh`.
set -u
export PYTHONPATH=.:experiments/rat-gluon-next PYTHONUNBUFFERED=1
R=/tmp/rb; rm -rf $R; mkdir -p $R
t0=$(date +%s)
WIN=${WIN:-$(python experiments/rat-gluon-next/pick.py /tmp/ra/op-train/results.jsonl)} || { echo "no WIN and no call A rows"; exit 2; }
echo "WIN=$WIN"; echo "$WIN" > "$OUT/win.txt"
step() { local name=$1 lim=$2; shift 2; echo "== $name (limit $lim s)"; timeout "$lim" "$@" > "$R/$name.log" 2>&1; echo "== $name rc=$? at $(( $(date +%s) - t0 )) s"; tail -n "${TAILN:-25}" "$R/$name.log"; }
REG=$(python experiments/rat-gluon-next/cands.py | sed 's/ *#.*//' | tr '\n' ' ')  # every candidate's --register flag
C="--seq-len 4k,32k,128k --budget 1 --tokens 128k --heads 16 --dtype bf16 --device cuda --no-progress --no-figures"
# shellcheck disable=SC2086
TAILN=8 step check 190 python run_bench.py --preset check-triton --impl "$WIN" $REG --mode train,prefill --device cuda --out "$R/check" --no-progress --no-figures
# shellcheck disable=SC2086
[ "${SHAPES:-0}" = 1 ] && TAILN=12 step shapes-d64 110 python run_bench.py --impl "$WIN,rat/gluon-main" $REG --mode train,prefill --head-dim 64 --chunk-size 16 $C --out "$R/shapes-d64"
# shellcheck disable=SC2086
[ "${SHAPES:-0}" = 1 ] && TAILN=12 step shapes-l64 110 python run_bench.py --impl "$WIN,rat/gluon-main" $REG --mode train,prefill --head-dim 128 --chunk-size 64 $C --out "$R/shapes-l64"
left=$(( ${TOTAL:-400} - ($(date +%s) - t0) ))
[ "$left" -ge 30 ] || left=30  # timeout 0 would mean no limit
# shellcheck disable=SC2086
TAILN=30 step profile "$left" python run_bench.py profile --impl "$WIN" $REG --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --heads 16 --head-dim 128 --chunk-size 16 --dtype bf16 --device cuda --out "$R/profile"
tar czf "$OUT/rb.tgz" -C /tmp rb; ls -la "$OUT"
