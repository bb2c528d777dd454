# Device call paper (twenty-sixth session, on branch adopt-hwd; brought to main in the thirty-fourth for the closing,
# its commands checked there with --dry-run: 24 layer cases, 1 model case): the paper's rows with rat/gluon as
# adopted, after call_c.sh's table (the issue's "Done when" asks for them once the table is met on the H200): Figure
# 3's RAT rows (one layer, Dm 2048, H 16, D 128, 262,144 tokens, bf16 autocast, eager and compiled, rat/triton beside
# rat/gluon; the command of reports/h200-rat-gluon-2026-12-04/README.md "layer/") and Table 1's RAT row (the 1.3B
# model, compiled glue, rat/gluon; "model-compiled/"). About 150 s for the layer rows (24 cases) and 4 minutes for the
# model. Run from the repository root as
# `rm -rf .git; export RATBENCH_GIT_REV=<commit>; bash experiments/rat-gluon-next/call_paper.sh`.
NAME=rpaper
source "$(dirname "$0")/_call.sh"
TAILN=14 step layer 260 python run_bench.py --level layer --kind rat --impl rat/triton,rat/gluon --mode train,prefill --seq-len 4k,32k,128k --tokens 256k --layer-chunk-size 16 --compile no,yes --heads 16 --head-dim 128 --dtype bf16 --device cuda --budget 1 --no-progress --out "$R/layer"
left=$(( ${TOTAL:-560} - ($(date +%s) - t0) ))
[ "$left" -ge 120 ] && TAILN=10 step model "$left" python run_bench.py --preset paper --level model --device cuda --compile yes --model rat --impl rat/gluon --no-progress --out "$R/model-compiled"
ls -la "$OUT"
