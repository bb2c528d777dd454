"""The arguments of every ``run_bench.py`` command (run, resume, list, report, profile; compare, gate,
calibrate and static in bench/gate_cli.py), the examples shown by ``--help``, and the preset names.

bench/cli.py's build_parser puts them into one argparse tree and binds each command to its function.
"""
from __future__ import annotations

import argparse

from ratbench.bench.cli_args import nonneg_float, nonneg_int, positive_float, positive_int

#: bench.presets.PRESETS (kept here so that --help imports no torch; tests/bench/test_fa_rule.py compares them)
PRESET_NAMES = ("smoke", "default", "paper", "check-triton", "rat-triton", "full-swa-triton", "linear-triton",
                "peers", "layers")

COMMANDS = ("run", "list", "report", "resume", "compare", "gate", "calibrate", "static", "profile")

EXAMPLES = """\
examples:
  python run_bench.py                                   # default sweep for this machine, prints the table
  python run_bench.py --preset smoke                    # a few seconds, every mode
  python run_bench.py --preset paper --device cuda --out reports/h200-paper
                                                        # the paper's Figure 3 (layer level, 256k tokens/batch)
                                                        # and Table 1 (model level); --level op: op-level grid
  python run_bench.py --level layer --kind attention,rat --impl 'full/sdpa-*,rat/triton' --seq-len 4k..128k \
      --tokens 256k --heads 16 --head-dim 128 --dtype bf16 --compile no,yes --device cuda
  python run_bench.py --level model --model rat,rat-swa --impl 'rat/triton,swa/*' --heads 16 --head-dim 128 \
      --dtype bf16 --device cuda                        # 1.3B model, 1024 tokens after 3072, largest batch
  python run_bench.py --impl 'rat/*,full/sdpa-*' --mode train,prefill --seq-len 4k..128k --tokens 128k \\
      --heads 16 --head-dim 128 --dtype bf16 --device cuda
  python run_bench.py --impl rat/triton --mode train --seq-len 16k --chunk-size 16,32,64,128 --batch 8
  python run_bench.py --impl 'full/*,rat/*' --mode decode --seq-len 4k,16k --decode-batch 1,16,64,256,512
  python run_bench.py --impl linear/fla,linear/reference --decay no,yes --seq-len 1k --batch 2 --device cpu
  python run_bench.py --preset paper --device cuda --dry-run   # the cases it would run
  python run_bench.py list --device cuda                # every implementation, and why one cannot run
  python run_bench.py report reports/runs/20261129-050000 --baseline full/sdpa-cudnn
  python run_bench.py resume reports/runs/20261129-050000   # finish an interrupted sweep

other commands:
  --version                      ratbench's version and git revision (installed as the command `ratbench`)
  list [--device D]              implementations and their availability
  report RESULTS [--baseline B] [--format md,csv,json,parquet] [--metrics ms,tflops,...]
                                 regenerate report.md and figures/ (and tables as data) from a results file
  resume DIR                     run the cases of DIR's sweep that have no row yet (same as --resume DIR);
                                 --retry error,oom also re-runs the cases that ended so
  compare BASE NEW               per-case slowdown NEW/BASE with a bootstrap interval; exit 1 on a regression
  gate --baseline B              re-measure B's cases here in interleaved rounds and compare (exit 0/1/2)
  calibrate --baseline B         A/A gate runs: false-alarm rate, smallest detectable slowdown
  static [--baseline F]          compile every Triton kernel for sm_90: registers, spills, smem, HGMMA vs F
  profile [run's flags] [--ncu]  kernels and stages of one call per case, traces, coverage (bench/profile.py)
  (see bench/README.md, "Perf-regression gate"; --register NAME=MODULE:CLASS adds an implementation)
  COMMAND --help                 each command's own flags

sizes take k/m suffixes (4k = 4096) and doubling ranges (4k..128k). Results go to
reports/runs/<UTC timestamp>/ unless --out is given: results.jsonl (one JSON row per case, appended
as each finishes), run.json (command, git revision, versions, device, measured ceilings), report.md
and figures/*.png|pdf.
"""


def run_args(p: argparse.ArgumentParser) -> None:
    """The flags of ``run`` (the default command)."""
    g = p.add_argument_group("what to run (flags override the preset)")
    g.add_argument("--preset", choices=list(PRESET_NAMES), default=None,
                   help="named sweep (default: 'default'; bench/README.md, 'Presets'); CPU presets use small shapes, "
                        "e.g. --preset paper")
    g.add_argument("--impl", help="comma-separated names or globs, e.g. 'rat/*,full/sdpa-*' (default: all; "
                                  "GPU presets leave the slow */reference oracles out of globs)")
    g.add_argument("--mode", help="train,prefill,decode (default: all three), e.g. --mode train")
    g.add_argument("--seq-len", help="sequence lengths, e.g. 4k,16k,128k or 4k..128k")
    g.add_argument("--chunk-size", help="RAT chunk sizes L, e.g. 16,64,128")
    g.add_argument("--window", help="SWA windows (keys including the query), e.g. 1024")
    g.add_argument("--decay", help="linear attention without/with a per-head decay: no, yes or no,yes")
    g.add_argument("--param", action="append", metavar="NAME=VALUES",
                   help="values of a family parameter that has no flag of its own (a family registered from "
                        "outside, ratbench.impls.register_family; repeatable), e.g. --param sharpness=1,2")
    bt = g.add_mutually_exclusive_group()
    bt.add_argument("--batch", help="batch sizes, e.g. 1,8")
    bt.add_argument("--tokens", help="tokens per batch, B = tokens // T (as the paper), e.g. 256k")
    g.add_argument("--decode-batch", help="batch sizes for decode only (default: as --batch/--tokens), e.g. 64,512")
    lv = p.add_argument_group("layer and model level (bench/levels.py; d_model = heads x head dim)")
    lv.add_argument("--level", help="op (the attention op alone), layer (a whole mixer layer: norm, projections, op, "
                                    "gates, residual) and/or model (the LM generating tokens), e.g. layer,model "
                                    "(default: op; paper preset: layer,model)")
    lv.add_argument("--kind", help="layer kinds: attention, swa, linear, rat, rnn, e.g. attention,rat,rnn")
    lv.add_argument("--layer-chunk-size", help="RAT chunk sizes at layer level (default: --chunk-size), e.g. 16,64,128")
    lv.add_argument("--compile", help="torch.compile the layer (train, prefill) or, at model level, every layer's glue "
                    "(prefill and decode steps): no, yes or no,yes (default: no)")
    lv.add_argument("--decode-fill", choices=["prefill", "none"],
                    help="layer decode cache: real prefills of T - 1 tokens (default) or only the position set")
    lv.add_argument("--model", help="model mixers, hybrids as <even>-<odd>, e.g. attention,rat,attention-swa,rat-swa")
    lv.add_argument("--prompt-len", help="model: prompt tokens prefilled before generating, e.g. 3072")
    lv.add_argument("--new-tokens", help="model: tokens generated per sequence, e.g. 1024")
    lv.add_argument("--layers", type=positive_int, help="model: mixer layers (each followed by an FFN), e.g. 24")
    lv.add_argument("--model-batch", help="model: a fixed batch instead of the largest that fits, e.g. 64")
    lv.add_argument("--max-batch", help="model: upper limit of the largest-batch search, e.g. 4096")
    g.add_argument("--heads", help="heads H, e.g. 16")
    g.add_argument("--head-dim", help="head dim D, e.g. 128")
    g.add_argument("--dtype", help="bf16, fp16, fp32 or fp64, e.g. --dtype bf16 (GPU presets: bf16, CPU: fp32)")
    g.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"],
                   help="cpu, cuda or auto (cuda if visible), e.g. --device cuda")
    g.add_argument("--threads", type=nonneg_int,
                   help="CPU threads for torch (CPU presets: 1, steady on a small or busy machine; 0: torch's "
                        "choice, one per core), e.g. 4")
    g.add_argument("--skip-references", action=argparse.BooleanOptionalAction, default=None,
                   help="leave */reference out of glob matches (default: on for GPU presets)")
    t = p.add_argument_group("timing")
    t.add_argument("--repeats", type=positive_int, help="most timed calls per case, e.g. --repeats 100")
    t.add_argument("--min-repeats", type=positive_int, help="fewest timed calls per case, e.g. 5")
    t.add_argument("--budget", type=nonneg_float, help="seconds of timed calls per case, e.g. 1.0")
    t.add_argument("--max-call-s", type=positive_float,
                   help="a call slower than this skips the longer sequences of the same series, e.g. 5")
    t.add_argument("--time-limit", type=nonneg_float,
                   help="start no case after this many seconds; the rest wait for 'resume' (paper preset on a GPU: "
                        "540), e.g. --time-limit 500")
    t.add_argument("--no-flush-l2", action="store_true", help="do not flush the L2 cache between timed calls")
    t.add_argument("--no-cuda-graphs", action="store_true", help="time decode steps eagerly, not by graph replay")
    t.add_argument("--no-check", action="store_true", help="skip the accuracy check against the family reference")
    t.add_argument("--accuracy", choices=["tolerance", "fa-rule"], default=None,
                   help="accuracy check: tolerance (small shape, atol + rtol) or fa-rule (the FlashAttention rule at "
                        "each case's own shape, per-tensor errors in the row's details; check-* presets: fa-rule), "
                        "e.g. --accuracy fa-rule")
    t.add_argument("--seed", type=nonneg_int, help="input seed, e.g. 0")
    o = p.add_argument_group("output")
    o.add_argument("--out", help="run directory (default: reports/runs/<UTC timestamp>), e.g. reports/h200")
    o.add_argument("--resume", metavar="DIR", help="finish the sweep in DIR: cases with a row are skipped")
    o.add_argument("--retry", metavar="STATUSES",
                   help="with resume: also run again the cases whose last row has one of these statuses (the new "
                        "row supersedes the old one), e.g. --retry error,oom after fixing a bug")
    o.add_argument("--baseline", help="speed-ups over this implementation (default: full/sdpa-flash, the paper's "
                                      "baseline, or the most complete full attention timed; speed-ups over "
                                      "full/sdpa-cudnn are added when it was timed), e.g. full/sdpa-cudnn")
    o.add_argument("--no-figures", action="store_true", help="tables only")
    o.add_argument("--dry-run", action="store_true", help="print the cases the sweep would run, run nothing")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    o.add_argument("-v", "--verbose", action="store_true", help="log every case's errors")
    register_arg(o)


def register_arg(g: argparse._ActionsContainer) -> None:
    g.add_argument("--register", metavar="NAME=MODULE:CLASS",
                   help="register an extra implementation first (test-only or out of tree; repeatable, anywhere on "
                        "the command line), e.g. full/mine=my_pkg.attn:MyFull (with its module on PYTHONPATH); "
                        "when NAME's family is not registered, the module is imported first so that it can declare it "
                        "(ratbench.impls.register_family)")


#: run flags a resumed sweep honours; every other run flag is part of the sweep, which comes from DIR/run.json
RESUME_FLAGS = ("time_limit", "retry", "threads", "baseline", "no_figures", "dry_run", "no_progress", "verbose",
                "register")


def resume_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("resume", metavar="DIR", help="run directory of the sweep, e.g. reports/runs/20261129-050000")
    p.add_argument("--time-limit", type=nonneg_float,
                   help="start no case after this many seconds (default: the run's own), e.g. 500")
    p.add_argument("--retry", metavar="STATUSES",
                   help="also run again the cases whose last row has one of these statuses (the new row supersedes "
                        "the old one), e.g. --retry error,oom after fixing a bug")
    p.add_argument("--threads", type=nonneg_int, help="CPU threads for torch (0: torch's choice), e.g. 1")
    p.add_argument("--baseline", help="speed-ups over this implementation, e.g. full/sdpa-cudnn")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--dry-run", action="store_true", help="print the cases that would run, run nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log every case's errors")
    register_arg(p)


def list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"], help="e.g. --device cuda")
    register_arg(p)


def report_formats(text: str) -> tuple[str, ...]:
    """argparse type of ``report --format``: formats among bench.report.FORMATS, comma-separated."""
    from ratbench.bench.report import FORMATS, parquet_engine

    names = list(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(map(repr, bad)) or repr(text)}; "
                                         f"valid: {', '.join(FORMATS)}")
    if "parquet" in names and parquet_engine() is None:
        raise argparse.ArgumentTypeError("parquet needs pyarrow or fastparquet, and neither is installed "
                                         "(pip install pyarrow), or choose csv / json")
    return tuple(names)


def report_metrics(text: str) -> tuple[str, ...]:
    """argparse type of ``report --metrics``: metric names of bench.tables.METRICS, comma-separated."""
    from ratbench.bench.tables import select_metrics

    try:
        return select_metrics(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results.jsonl or its run directory, e.g. reports/h200-paper")
    p.add_argument("--baseline", help="speed-ups over this implementation, e.g. full/sdpa-cudnn")
    p.add_argument("--out", help="write the report here instead of next to the results")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--format", type=report_formats, default=("md",), metavar="FORMATS",
                   help="what to write, comma-separated: md (report.md and figures/, the default), csv, json, "
                        "parquet (the report's tables as one long table, report_tables.<format>; parquet needs "
                        "pyarrow or fastparquet), e.g. --format md,csv")
    p.add_argument("--metrics", type=report_metrics, default=None, metavar="METRICS",
                   help="the columns the tables show, comma-separated (default: all): ms, tokens_per_s, n, timer, "
                        "tflops, pct_peak, gbps, pct_bw, peak_mem, state_mem, max_err, first_call_ms, speedup; "
                        "e.g. --metrics ms,tflops,gbps,speedup,peak_mem")


PROFILE_EXAMPLES = """\
examples:
  python run_bench.py profile --impl rat/triton,rat/reference --mode train --seq-len 64 --batch 1 --heads 2 \\
      --head-dim 32 --chunk-size 16 --device cpu --threads 1      # CPU: operators and interpreted Triton kernels
  python run_bench.py profile --impl 'rat/triton,full/sdpa-cudnn' --mode train,prefill --seq-len 4k,32k,128k \\
      --tokens 128k --heads 16 --head-dim 128 --dtype bf16 --device cuda --no-check --out reports/profile
  python run_bench.py profile --impl rat/triton --mode train --seq-len 128k --tokens 128k --heads 16 \\
      --head-dim 128 --dtype bf16 --device cuda --ncu --sass   # + Nsight Compute and sm_90 SASS facts

Writes results.jsonl (timing rows), profile.jsonl (one profile row per case), run.json, traces/*.json.gz
(Perfetto: ui.perfetto.dev -> Open trace file), ncu/*.csv (--ncu), report.md with a profile section and
figures/profile_stages_<mode>.png, figures/profile_roofline.png.
"""

PROFILE_DOC = ("Profile one call of each case of a sweep (the same flags as run): every kernel (CPU: operator) "
               "with calls, time and share, grouped into the implementation's stages with FLOPs, bytes and % of "
               "the measured ceilings, how much of the harness median the kernels cover, a Perfetto trace per "
               "case; --ncu adds Nsight Compute counters, --sass the sm_90 compile facts.")


def profile_args(p: argparse.ArgumentParser) -> None:
    """The profile options, added to a parser that already has every ``run`` flag."""
    g = p.add_argument_group("profile")
    g.add_argument("--ncu", action="store_true",
                   help="Nsight Compute on each case's top kernels (CUDA; a missing ncu or GPU is reported in the rows)")
    g.add_argument("--sass", action="store_true",
                   help="registers, spills, shared memory, HGMMA of the case's Triton kernels compiled for sm_90 "
                        "(bench/static_gate.py; works on the CPU)")
    g.add_argument("--top", type=positive_int, default=5,
                   help="kernels per case given to ncu, longest first (default 5), e.g. 3")
    g.add_argument("--ncu-child", metavar="CASE_JSON", help=argparse.SUPPRESS)
