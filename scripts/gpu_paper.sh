#!/usr/bin/env bash
# The RAT paper's Figure 3 (layer level) and Table 1 (model level) on one GPU, in commands of under 10 minutes.
#
#   OUT=/path bash scripts/gpu_paper.sh layer|model|compiled|model-compiled [STAGE]
#
# Each phase is one harness run directory, $OUT/<phase> (results.jsonl, run.json, report.md: three files,
# no figures, so that everything comes back from a remote machine). If STAGE/<phase>/run.json exists
# (STAGE defaults to reports/h200-paper), that earlier part-run is copied to $OUT/<phase> and resumed;
# otherwise the phase starts. No case starts after TIME_LIMIT seconds (the last one started finishes:
# layer cases take at most about a minute, model cases about four), so repeat a phase until its report.md
# has no "**incomplete**" line, copying $OUT/<phase>/* back to STAGE/<phase>/ after each command.
#   layer     Figure 3: attention (SDPA FA2 = the paper's baseline, SDPA cuDNN), RAT L = 16, 64, 128 and the
#             RNN (rat/triton); train, prefill, gen at batch 512; T 4k..128k, 262,144 tokens per batch;
#             eager layers; gen caches at zeros with the position set (--decode-fill none: same kernels
#             and bytes, no minutes of filling)
#   model     Table 1: the 1.3B model generating 1024 tokens after a 3072-token prompt at the largest batch
#             that fits: attention (FA2, cuDNN), RAT, attention-SWA, RAT-SWA (SWA: swa/flex)
#   compiled  the paper's torch.compile protocol for the headline series: attention (FA2, cuDNN) and RAT
#             L = 16, train and prefill (each shape compiles once: slower)
#   model-compiled  Table 1 for attention (FA2) and RAT with every layer's glue torch.compile'd for the prefill
#             and the decode steps (--compile yes at model level; the mixers' kernels unchanged)
# Then, on any machine: bash scripts/gpu_paper.sh merge [STAGE] -> STAGE/all/report.md with the figures and the
# side-by-side section (bench/paper.py) over every phase's rows; all/run.json keeps every phase's sessions
# (each row's run_id names the command, git revision, versions and GPU that measured it).
# Environment: DEVICE (cuda), TIME_LIMIT (layer 420, model 240, compiled 420, model-compiled 300), LAYER_IMPLS,
# MODEL_IMPLS, MODEL_KINDS (model-compiled: attention,rat),
# RETRY (statuses to run again when resuming a stage, e.g. RETRY=error after a fix), SEQ_LEN (a new phase's
# sequence lengths instead of the preset's, e.g. SEQ_LEN=128k for the compiled headline point), PYTHON (the
# interpreter with ratbench's dependencies; default: python on PATH, e.g. PYTHON=.venv/bin/python).
set -euo pipefail
py=${PYTHON:-python}
phase=${1:?usage: gpu_paper.sh layer|model|compiled|model-compiled|merge [STAGE]}
stage=${2:-reports/h200-paper}
dev=${DEVICE:-cuda}
common=(--no-progress --no-figures)
case "$phase" in
  layer)
    args=(--preset paper --level layer --device "$dev" --decode-fill none
          --impl "${LAYER_IMPLS:-full/sdpa-flash,full/sdpa-cudnn,rat/triton}")
    limit=${TIME_LIMIT:-420} ;;
  model)
    args=(--preset paper --level model --device "$dev"
          --impl "${MODEL_IMPLS:-full/sdpa-flash,full/sdpa-cudnn,rat/triton,swa/flex}")
    limit=${TIME_LIMIT:-240} ;;
  compiled)
    args=(--preset paper --level layer --device "$dev" --kind attention,rat --layer-chunk-size 16
          --mode train,prefill --compile yes --impl "${LAYER_IMPLS:-full/sdpa-flash,full/sdpa-cudnn,rat/triton}")
    limit=${TIME_LIMIT:-420} ;;
  model-compiled)
    args=(--preset paper --level model --device "$dev" --compile yes --model "${MODEL_KINDS:-attention,rat}"
          --impl "${MODEL_IMPLS:-full/sdpa-flash,rat/triton}")
    limit=${TIME_LIMIT:-300} ;;
  merge)  # bench/paper.py merge_phases: every phase's rows, and every session of every phase in all/run.json
    "$py" -c 'import sys; from ratbench.bench.paper import merge_phases
try: merge_phases(sys.argv[1])
except FileNotFoundError as e: sys.exit(f"gpu_paper.sh merge: error: {e}")' "$stage" || exit 2
    "$py" run_bench.py report "$stage/all"
    exit 0 ;;
  *) echo "unknown phase $phase (layer, model, compiled, model-compiled, merge)" >&2; exit 2 ;;
esac
[ -z "${SEQ_LEN:-}" ] || args+=(--seq-len "$SEQ_LEN")
: "${OUT:?set OUT to the output folder}"
mkdir -p "$OUT/$phase"
rc=0
if [ -f "$stage/$phase/run.json" ]; then
  cp "$stage/$phase/results.jsonl" "$stage/$phase/run.json" "$OUT/$phase/"
  "$py" run_bench.py resume "$OUT/$phase" --time-limit "$limit" ${RETRY:+--retry "$RETRY"} "${common[@]}" || rc=$?
else
  "$py" run_bench.py "${args[@]}" --time-limit "$limit" "${common[@]}" --out "$OUT/$phase" || rc=$?
fi
# exit codes (README, "Exit codes"): 3 = some case ended error or wrong (recorded; RETRY=error after a fix),
# 4 = the time limit left cases for the next command; anything else but 0 stops here
case $rc in 0|3|4) ;; *) exit "$rc" ;; esac
grep -q '\*\*incomplete\*\*' "$OUT/$phase/report.md" && echo "PHASE $phase INCOMPLETE: copy $OUT/$phase/* to $stage/$phase/ and run again" \
  || echo "PHASE $phase COMPLETE"
