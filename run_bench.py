#!/usr/bin/env python
"""ratbench: sweep attention implementations over sequence length, chunk size and batch.

A thin entry point: the work is in bench/ (sweep -> cases -> rows -> results file -> report).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

from bench import exit_codes
from bench.cli_args import Parser, has_rows, nonneg_float, nonneg_int, positive_float, positive_int, prepare_out_dir
from bench.exit_codes import UsageError

#: bench.sweep.PRESETS (kept here so that --help imports no torch; tests/test_fa_rule.py compares them)
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

log = logging.getLogger("ratbench")


def _run_args(p: argparse.ArgumentParser) -> None:
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
                        "outside, impls.register_family; repeatable), e.g. --param sharpness=1,2")
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
    _register_arg(o)


def _register_arg(g: argparse._ActionsContainer) -> None:
    g.add_argument("--register", metavar="NAME=MODULE:CLASS",
                   help="register an extra implementation first (test-only or out of tree; repeatable, anywhere on "
                        "the command line), e.g. full/mine=my_pkg.attn:MyFull (with its module on PYTHONPATH); "
                        "when NAME's family is not registered, the module is imported first so that it can declare it "
                        "(impls.register_family)")


#: run flags a resumed sweep honours; every other run flag is part of the sweep, which comes from DIR/run.json
RESUME_FLAGS = ("time_limit", "retry", "threads", "baseline", "no_figures", "dry_run", "no_progress", "verbose",
                "register")


def _resume_args(p: argparse.ArgumentParser) -> None:
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
    _register_arg(p)


def _list_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["cpu", "cuda", "auto"], help="e.g. --device cuda")
    _register_arg(p)


def _report_formats(text: str) -> tuple[str, ...]:
    """argparse type of ``report --format``: formats among bench.report.FORMATS, comma-separated."""
    from bench.report import FORMATS, parquet_engine

    names = list(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown format {', '.join(map(repr, bad)) or repr(text)}; "
                                         f"valid: {', '.join(FORMATS)}")
    if "parquet" in names and parquet_engine() is None:
        raise argparse.ArgumentTypeError("parquet needs pyarrow or fastparquet, and neither is installed "
                                         "(pip install pyarrow), or choose csv / json")
    return tuple(names)


def _report_metrics(text: str) -> tuple[str, ...]:
    """argparse type of ``report --metrics``: metric names of bench.tables.METRICS, comma-separated."""
    from bench.tables import select_metrics

    try:
        return select_metrics(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", help="results.jsonl or its run directory, e.g. reports/h200-paper")
    p.add_argument("--baseline", help="speed-ups over this implementation, e.g. full/sdpa-cudnn")
    p.add_argument("--out", help="write the report here instead of next to the results")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--format", type=_report_formats, default=("md",), metavar="FORMATS",
                   help="what to write, comma-separated: md (report.md and figures/, the default), csv, json, "
                        "parquet (the report's tables as one long table, report_tables.<format>; parquet needs "
                        "pyarrow or fastparquet), e.g. --format md,csv")
    p.add_argument("--metrics", type=_report_metrics, default=None, metavar="METRICS",
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


def _profile_args(p: argparse.ArgumentParser) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    """Every command's arguments, in one parser tree (``run`` is the default command: ``main`` puts it
    in front of a command line that does not start with a command)."""
    from bench import exit_codes, gate_cli

    top = Parser(prog="run_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    raw = argparse.RawDescriptionHelpFormatter

    def add(name: str, func, doc: str, prog: str | None = None, **kw) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, prog=prog or f"run_bench.py {name}", help=doc, description=doc,
                           formatter_class=raw, **kw)
        p.set_defaults(func=func, prog=p.prog)
        return p

    _run_args(add("run", cmd_run, "Measure implementations over a grid (train = forward + backward, prefill = "
                  "forward without grad, decode = one step at position T - 1) and write results, tables and "
                  "figures. 'run' may be left out.", prog="run_bench.py",
                  epilog=EXAMPLES + "\n" + exit_codes.table_text()))
    r = add("resume", cmd_run, "Run the cases of DIR's sweep that have no row yet (the sweep is DIR/run.json's).",
            epilog=exit_codes.table_text())
    _resume_args(r)
    r.set_defaults(out=None, preset=None)
    _list_args(add("list", cmd_list, "Every implementation and whether it runs here."))
    _report_args(add("report", cmd_report, "Regenerate report.md and figures/ from a results file."))
    p = add("profile", cmd_profile, PROFILE_DOC, epilog=PROFILE_EXAMPLES + "\n" + exit_codes.table_text())
    _run_args(p)
    _profile_args(p)
    gate_cli.add_parsers(add)
    return top


def _pop_register(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--register NAME=MODULE:CLASS`` (or ``--register=...``) may stand anywhere: take every one out."""
    rest, found = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--register":
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise UsageError("argument --register: expected NAME=MODULE:CLASS")
            found.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--register="):
            found.append(a.partition("=")[2])
        else:
            rest.append(a)
        i += 1
    return rest, found


def register(items: list[str], prog: str) -> tuple[tuple[str, str], ...]:
    """Register each ``NAME=MODULE:CLASS`` and import it now: a name, module or class that does not
    work is a usage error here, not an error row later."""
    import importlib

    import impls
    from bench.gate import parse_register, register_impls

    try:
        pairs = parse_register(items)
    except ValueError as exc:
        raise UsageError(str(exc), prog=prog) from None
    for name, target in pairs:  # a family from outside: the implementation's module registers it on import
        if name.partition("/")[0] not in impls.families():
            try:
                importlib.import_module(target.partition(":")[0])
            except Exception as exc:  # noqa: BLE001 - the user's module
                raise UsageError(f"--register {name}={target}: {type(exc).__name__}: {exc}", prog=prog) from None
    try:
        register_impls(pairs)
    except ValueError as exc:
        raise UsageError(str(exc), prog=prog) from None
    for name, target in pairs:
        try:
            impls.load_class(name)
        except Exception as exc:  # noqa: BLE001 - ImportError, AttributeError, TypeError: all the user's spec
            impls.unregister(name)
            raise UsageError(f"--register {name}={target}: {type(exc).__name__}: {exc}", prog=prog) from None
    return pairs


def parse_family_param(item: str) -> dict[str, list]:
    """'sharpness=1,2' -> {'sharpness': [1, 2]}, read by the parameter's own parser (FamilyParam.parse)."""
    import impls
    from impls.spec import CASE_FIELDS

    name, sep, values = item.partition("=")
    name = name.strip()
    declared = {p.name: p for f in impls.families() for p in impls.family(f).params if p.name not in CASE_FIELDS}
    if not sep or not values.strip():
        raise UsageError(f"argument --param: expected NAME=VALUES, e.g. sharpness=1,2, got {item!r}")
    if name not in declared:
        raise UsageError(f"argument --param: no registered family has a parameter {name!r} without a flag of its own"
                         f" (known: {', '.join(declared) or 'none'}; chunk_size, window, decay have their flags)")
    try:
        parsed = [declared[name].parse(v.strip()) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise UsageError(f"argument --param {name}: {exc}") from None
    return {name: list(dict.fromkeys(parsed))}


def build_spec(args: argparse.Namespace):  # -> SweepSpec
    import torch

    from bench.sweep import parse_bools, parse_dtype, parse_modes, parse_size, parse_sizes, preset

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        raise UsageError("--device cuda, but no CUDA GPU is visible to torch")
    spec = preset(args.preset or "default", device)

    def names(text: str) -> list[str]:
        return [x.strip() for x in text.split(",") if x.strip()]

    # flag -> spec field, parser; a flag left empty keeps the preset's value
    for name, attr, parse in (
            ("impl", "impls", names), ("mode", "modes", parse_modes), ("seq_len", "seq_lens", parse_sizes),
            ("chunk_size", "chunk_sizes", parse_sizes), ("window", "windows", parse_sizes),
            ("decay", "decays", parse_bools), ("decode_batch", "decode_batches", parse_sizes),
            ("heads", "heads", parse_sizes), ("head_dim", "head_dims", parse_sizes), ("dtype", "dtype", parse_dtype),
            ("level", "levels", names), ("kind", "kinds", names), ("layer_chunk_size", "layer_chunk_sizes", parse_sizes),
            ("compile", "compile", parse_bools), ("decode_fill", "decode_fill", str), ("model", "models", names),
            ("prompt_len", "prompt_len", parse_size), ("new_tokens", "new_tokens", parse_size),
            ("model_batch", "model_batch", parse_size), ("max_batch", "max_batch_limit", parse_size),
            ("layers", "n_layers", int)):
        if getattr(args, name):
            setattr(spec, attr, parse(getattr(args, name)))
    for item in args.param or []:
        spec.family_params = {**spec.family_params, **parse_family_param(item)}
    # --batch and --tokens exclude each other (argparse): either one clears the other's preset value
    if args.batch:
        spec.batches, spec.tokens = parse_sizes(args.batch), None
    if args.tokens:
        spec.tokens, spec.batches = parse_size(args.tokens), None
    if args.skip_references is not None:
        spec.skip_references = args.skip_references
    for name, attr in (("time_limit", "time_limit_s"), ("repeats", "repeats"), ("min_repeats", "min_repeats"),
                       ("budget", "case_budget_s"),
                       ("max_call_s", "max_call_s"), ("seed", "seed"), ("threads", "threads")):
        if getattr(args, name) is not None:
            setattr(spec, attr, getattr(args, name))
    spec.flush_l2 = spec.flush_l2 and not args.no_flush_l2
    spec.cuda_graphs = spec.cuda_graphs and not args.no_cuda_graphs
    if args.accuracy:
        spec.accuracy_rule = args.accuracy
    if args.no_check and args.accuracy:
        raise UsageError(f"--accuracy {args.accuracy} and --no-check exclude each other")
    spec.check_accuracy = spec.check_accuracy and not args.no_check
    return spec


def _retry_statuses(args: argparse.Namespace) -> set[str]:
    from bench.results import STATUSES

    if not args.retry:
        return set()
    retry = {x.strip() for x in args.retry.split(",") if x.strip()}
    bad = sorted(retry - set(STATUSES))
    if args.resume is None or bad or "ok" in retry or not retry:
        raise UsageError("--retry goes with resume and takes statuses among "
                         f"{', '.join(x for x in STATUSES if x != 'ok')}" + (f"; unknown: {', '.join(bad)}" if bad else ""))
    return retry


def _sweep_flags_given(args: argparse.Namespace) -> list[str]:
    """The sweep flags of a ``run --resume DIR`` command line (the sweep comes from DIR/run.json)."""
    p = Parser(add_help=False)
    _run_args(p)
    return sorted(a.option_strings[0] for a in p._actions
                  if a.option_strings and a.dest not in RESUME_FLAGS + ("resume",)
                  and getattr(args, a.dest, a.default) != a.default)


def _resumed_spec(args: argparse.Namespace):  # -> tuple[Path, SweepSpec, str | None]
    from bench.results import META, read_meta
    from bench.sweep import SweepSpec

    run_dir = Path(args.resume)
    given = _sweep_flags_given(args)
    if given:
        raise UsageError(f"--resume takes the sweep from {run_dir / META}; these flags would be ignored: "
                         f"{', '.join(given)}")
    if not run_dir.is_dir():
        raise UsageError(f"resume {run_dir}: no such run directory")
    try:
        meta = read_meta(run_dir)
    except (OSError, ValueError) as exc:
        raise UsageError(f"resume {run_dir}: cannot read {META}: {exc}") from None
    if not meta.get("spec"):
        raise UsageError(f"resume {run_dir}: no {META} with a sweep spec: nothing to resume")
    try:
        spec = SweepSpec.from_dict(meta["spec"])
    except TypeError as exc:
        raise UsageError(f"resume {run_dir}: {META} has an unreadable sweep spec: {exc}") from None
    if args.time_limit is not None:
        spec.time_limit_s = args.time_limit
    if args.threads is not None:
        spec.threads = args.threads
    return run_dir, spec, meta.get("preset")


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    """``run`` and ``resume``: validate everything, then create the run directory, run, report, and exit
    with the sweep's verdict (bench/exit_codes.py)."""
    from bench import report, runner
    from bench.results import RESULTS, finished_keys, last_rows, noise_summary, read_meta
    from bench.sweep import expand

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    command = "python run_bench.py " + " ".join(shlex.quote(a) for a in argv)
    retry = _retry_statuses(args)
    resume = args.resume is not None
    try:
        if resume:
            run_dir, spec, preset = _resumed_spec(args)
        else:
            spec = build_spec(args)
            preset = args.preset or "default"
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            run_dir = Path(args.out) if args.out else Path("reports") / "runs" / stamp
        cases = expand(spec)
    except ValueError as exc:  # SweepError, an unknown implementation (a resumed sweep's, not --register'ed)
        raise UsageError(str(exc)) from None
    if args.baseline and args.baseline not in {c.impl for c in cases}:
        raise UsageError(f"--baseline {args.baseline} is not among the sweep's implementations: "
                         f"{', '.join(sorted({c.impl for c in cases}))}")
    if args.dry_run:
        todo = [c for c in cases if c.key not in (finished_keys(run_dir, retry) if resume else set())]
        for c in todo:
            print(c.key)
        print(f"{len(todo)} cases" + (f" of {len(cases)} left" if resume else ""), file=sys.stderr)
        return 0
    from bench import distributed

    if not resume:
        busy = [p.name for p in [run_dir / RESULTS, *distributed.rank_files(run_dir)] if has_rows(p)]
        if busy:
            raise UsageError(f"{run_dir} already has rows in {', '.join(busy)}: resume it or choose another --out")
    prepare_out_dir(run_dir, flag="resume" if resume else "--out")
    try:
        # under torchrun: this rank's share of the cases, rows to results.rank<k>.jsonl (bench/distributed.py)
        session = distributed.Session.init(spec.device) if distributed.launched() else None
        if session is not None:
            r, cases, done, run_dir = session.start(spec, run_dir, command=command, preset=preset,
                                                    resume=resume, retry=retry)
        else:
            r, cases, done = runner.start(spec, run_dir, command=command, preset=preset, resume=resume,
                                          retry=retry)
    except (ValueError, FileExistsError) as exc:
        raise UsageError(str(exc)) from None
    keys = session.all_keys if session is not None and session.is_main else [c.key for c in cases]
    todo = [c for c in cases if c.key not in done]
    if session is not None:
        print(f"rank {session.rank} of {session.world_size}: {len(todo)} cases (its share) on {spec.device} -> "
              f"{run_dir}", file=sys.stderr)
    else:
        print(f"{len(cases)} cases ({len(cases) - len(todo)} already done) on {spec.device} -> {run_dir}",
              file=sys.stderr)
    rows = []
    try:
        if args.no_progress or not todo or (session is not None and not session.is_main):
            rows = r.run(todo, time_limit_s=spec.time_limit_s)
        else:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            from bench.costs import estimate_cases

            weights = estimate_cases(todo, spec)
            count = {"n": 0}

            def on_start(c) -> None:  # type: ignore[no-untyped-def]
                count["n"] += 1
                bar.set_postfix_str(f"case {count['n']}/{len(todo)}: {c.short()}", refresh=True)

            # the bar advances by each case's estimated cost, so its time-left estimate weighs long cases
            fmt = "{l_bar}{bar}| [{elapsed}<{remaining}]{postfix}"
            with tqdm(total=sum(weights.values()), bar_format=fmt, dynamic_ncols=True) as bar, \
                    logging_redirect_tqdm():
                rows = r.run(todo, on_start=on_start, on_done=lambda c, row: bar.update(weights[c.key]),
                             time_limit_s=spec.time_limit_s)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished cases are in {run_dir}; continue with: {_resume_command(run_dir, session)}",
              file=sys.stderr)
        return exit_codes.INTERRUPTED
    arrived = True
    if session is not None:  # wait for every rank; rank 0 merges the rank files and writes the report
        rows, r.left, arrived = session.finish(r)
        session.close()
        if not session.is_main:
            return exit_codes.OK if arrived else exit_codes.UNFINISHED
    runner.finish(run_dir, rows)
    final, left = last_rows(run_dir, keys)  # every session's rows: a resumed run is judged whole
    code = exit_codes.verdict(final, left)
    baseline = args.baseline
    if baseline and not any(x.get("impl") == baseline for x in final):  # its cases were left for resume
        print(f"--baseline {baseline} has no rows yet: speed-ups over the default baseline in this report",
              file=sys.stderr)
        baseline = None
    path = report.write_report(run_dir, baseline=baseline,
                               figures=not args.no_figures and code != exit_codes.NOTHING_RUNNABLE)
    if code != exit_codes.NOTHING_RUNNABLE:
        print(report.summary_tables(run_dir, baseline=baseline))
    print(f"results: {run_dir / 'results.jsonl'}\nreport:  {path}")
    if (noise := noise_summary(final, read_meta(run_dir).get("ceilings"))):
        print(noise, file=sys.stderr)
    explain(code, final, left, run_dir, session=session, arrived=arrived, time_limit_s=spec.time_limit_s)
    return code


def _resume_command(run_dir: Path, session: object | None) -> str:
    head = "torchrun --nproc-per-node=N run_bench.py" if session is not None else "python run_bench.py"
    return f"{head} resume {shlex.quote(str(run_dir))}"


def explain(code: int, rows: list[dict], left: int, run_dir: Path, *, session: object | None = None,
            arrived: bool = True, time_limit_s: float | None = None) -> None:
    """What the sweep's exit code means, on stderr: the failed cases, the resume command, or why nothing ran."""
    failed = exit_codes.reasons(rows, exit_codes.FAILED_STATUSES)
    if failed:
        n = sum(1 for r in rows if r.get("status") in exit_codes.FAILED_STATUSES)
        print(f"{n} cases ended error or wrong (report.md, 'Cases not timed'; after a fix: "
              f"{_resume_command(run_dir, session)} --retry error,wrong):", *failed, sep="\n", file=sys.stderr)
    if code == exit_codes.UNFINISHED:
        why = ("a rank died" if not arrived else
               f"time limit ({time_limit_s:g} s) reached" if time_limit_s is not None else "unfinished")
        print(f"{why}: {left} cases not run; finish them with: {_resume_command(run_dir, session)}",
              file=sys.stderr)
    elif code == exit_codes.NOTHING_RUNNABLE:
        print(f"run_bench.py: nothing runnable: all {len(rows)} cases are unsupported, unavailable or skipped:",
              *exit_codes.reasons(rows, exit_codes.NOT_RUN_STATUSES), sep="\n", file=sys.stderr)


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    import impls

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    rows = impls.available(device)
    print(f"implementations on {device}:")
    width = max(len(a.name) for a in rows)
    for a in rows:
        if not a.available:
            print(f"  {a.name:<{width}}  unavailable: {a.reason}")
            continue
        cls = impls.load_class(a.name)
        dts = ",".join(str(d).removeprefix("torch.").replace("bfloat16", "bf16").replace("float", "fp")
                       for d in cls.dtypes)
        hd = "any" if cls.head_dims is None else ",".join(map(str, cls.head_dims))
        train = "train" if device in cls.backward_devices else "no-train"
        decode = "decode" if cls.supports_decode else "no-decode"
        print(f"  {a.name:<{width}}  available  [{train}, {decode}, {dts}, head_dim {hd}]  {a.description}")
    return 0


def cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import report
    from bench.rank_files import merge_rank_files, rank_files
    from bench.results import RESULTS, read_rows
    from bench.tables import METRICS

    prog = args.prog
    src = Path(args.results)
    run_dir = src if src.is_dir() else src.parent
    if not src.exists():
        raise UsageError(f"{src}: no such file or directory", prog=prog)
    sources = ([src / RESULTS] if (src / RESULTS).exists() else []) if src.is_dir() else [src]
    if src.is_dir() or src.name == RESULTS:  # rows of a torchrun launch that never reached its merge
        sources += rank_files(run_dir)
    try:
        rows = [r for f in sources for r in read_rows(f)]
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {src}: {exc}", prog=prog) from None
    if not rows:
        raise UsageError(f"{src}: no results rows" + (f" (no {RESULTS} in the directory)" if not sources else ""),
                         prog=prog)
    impl_names = {r.get("impl") for r in rows}
    if args.baseline and args.baseline not in impl_names:
        raise UsageError(f"--baseline {args.baseline} has no rows in {src}; implementations: "
                         f"{', '.join(sorted(str(x) for x in impl_names))}", prog=prog)
    prepare_out_dir(args.out or run_dir, flag="--out" if args.out else "report", prog=prog)
    if src.is_dir() or src.name == RESULTS:
        merge_rank_files(run_dir)
    drawable = any(r.get("status") not in exit_codes.NOT_RUN_STATUSES for r in rows)
    metrics = args.metrics or tuple(METRICS)
    tables = [f for f in args.format if f != "md"]
    try:
        path = report.write_report(args.results, baseline=args.baseline, out_dir=args.out, metrics=metrics,
                                   figures=not args.no_figures and drawable) if "md" in args.format else None
        written = report.write_tables(args.results, tables, baseline=args.baseline, out_dir=args.out,
                                      metrics=metrics) if tables else []
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc), prog=prog) from None
    print(report.summary_tables(args.results, baseline=args.baseline, metrics=metrics))
    if path is not None:
        print(f"report: {path}")
    for f in written:
        print(f"tables: {f}")
    return 0


def parse_run_args(argv: list[str]) -> argparse.Namespace:
    """``run``'s flags (no command word) parsed exactly as ``run_bench.py run`` parses them; bad flags raise
    UsageError (for callers that build a sweep from run flags: tests/benchmarks)."""
    args, extra = build_parser().parse_known_args(["run", *argv])
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}", prog=args.prog)
    return args


def cmd_profile(args: argparse.Namespace, argv: list[str]) -> int:
    """``profile``: run's sweep flags, one profiled call per case (bench/profile.py)."""
    from bench import profile

    return profile.main(args, argv, build_spec)


def version_text() -> str:
    """``ratbench <version>`` from the installed metadata (or "not installed"), and the git revision of
    the code that runs when it is a checkout."""
    from importlib import metadata

    try:
        version = metadata.version("ratbench")
    except metadata.PackageNotFoundError:
        version = "(not installed: pip install -e .)"
    from bench.provenance import git_revision

    rev = git_revision(str(Path(__file__).resolve().parent))
    return f"ratbench {version}" + (f" (git {rev})" if rev else "")


def main(argv: list[str] | None = None) -> int:
    """The command line: ``run_bench.py [COMMAND] ...`` or ``ratbench [COMMAND] ...`` (no command = run).
    Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(version_text())
        return exit_codes.OK
    try:
        rest, items = _pop_register(argv)
        if not rest or rest[0] not in COMMANDS:
            rest = ["run", *rest]
        args, extra = build_parser().parse_known_args(rest)
        if extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}", prog=args.prog)
        if items and args.command in ("report", "compare", "static"):
            raise UsageError("--register does not apply to this command", prog=args.prog)
        args.register = list(register(items, args.prog)) if items else []
        return args.func(args, argv)
    except UsageError as exc:
        print(f"{exc.prog}: error: {str(exc).replace(chr(10), ' ')}", file=sys.stderr)
        return exit_codes.USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
