"""Command lines of ``run_bench.py compare | gate | calibrate | static`` (the perf-regression gate).

Their parsers hang in run_bench.py's one parser tree (``add_parsers``). Exit codes (bench/exit_codes.py):
0 pass, 1 regression (or a broken case; for ``static``: new spills, lost HGMMA, serialized wgmma, a helper left
un-inlined, shared memory over the limit, a kernel that no longer compiles; for ``calibrate``: no threshold without false alarms), 2 bad
arguments or unusable input (missing or unreadable baseline, another device, a baseline case that
cannot run here: one line, nothing written) or a comparison without a verdict (compare.md / gate.md
say why).
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ratbench.bench.cli_args import has_rows, nonneg_int, positive_int, prepare_out_dir
from ratbench.bench.exit_codes import UsageError

log = logging.getLogger("ratbench")


def _compare_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("statistics (bench/compare.py)")
    g.add_argument("--threshold", type=float, default=0.05,
                   help="relative slowdown that counts, e.g. 0.05 = 5%% (default); a case regresses only when its "
                        "whole confidence interval of the median ratio lies above 1 + threshold")
    g.add_argument("--confidence", type=float, default=0.95, help="bootstrap interval level (default 0.95)")
    g.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    g.add_argument("--min-samples", type=int, default=5,
                   help="fewer samples on a side make a case inconclusive (default 5)")
    g.add_argument("--seed", type=nonneg_int, default=0,
                   help="bootstrap seed (mixed with each case key; default 0)")
    g.add_argument("--fail-on-improvement", action="store_true",
                   help="also fail (exit 1) when a case got faster beyond the threshold: the baseline is stale")


def _ccfg(args: argparse.Namespace):  # -> CompareConfig
    from ratbench.bench.compare import CompareConfig

    try:
        return CompareConfig(threshold=args.threshold, confidence=args.confidence, n_boot=args.n_boot,
                             min_samples=args.min_samples, seed=args.seed,
                             fail_on_improvement=args.fail_on_improvement)
    except ValueError as exc:
        raise UsageError(str(exc), prog=args.prog) from None


def _print_verdict(v, md: Path | None, title: str = "Perf gate") -> None:  # type: ignore[no-untyped-def]
    from ratbench.bench.compare import to_markdown

    print(to_markdown(v, title))
    if md is not None:
        print(f"summary: {md}\nverdict: {md.with_suffix('.json')}", file=sys.stderr)
    print(f"verdict: {v.verdict} (exit {v.exit_code}): {v.reason}", file=sys.stderr)


def _command(argv: list[str]) -> str:
    return "python run_bench.py " + " ".join(shlex.quote(a) for a in argv)


def cmd_compare(args: argparse.Namespace, argv: list[str]) -> int:
    from ratbench.bench import compare as CMP

    cfg = _ccfg(args)
    try:
        v = CMP.compare_runs(args.base, args.new, cfg)
    except (OSError, ValueError) as exc:  # a missing or unreadable run, CMP.MismatchError
        raise UsageError(str(exc), prog=args.prog) from None
    new = Path(args.new)
    out = prepare_out_dir(Path(args.out) if args.out else (new if new.is_dir() else new.parent), prog=args.prog)
    md, _ = CMP.write_outputs(v, out, stem="compare", title="Perf compare")
    _print_verdict(v, md, "Perf compare")
    return v.exit_code


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", required=True, help="baseline run directory or results.jsonl, e.g. "
                                                     "reports/baselines/h200-op")
    p.add_argument("--out", help="run directory for the new measurement (default: reports/runs/gate-<UTC stamp>)")
    p.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds over all cases (default 5)")
    p.add_argument("--samples-per-round", type=positive_int,
                   help="timed calls per case per round (default: the baseline's repeats / rounds, >= 3)")
    p.add_argument("--register", metavar="NAME=MODULE:CLASS",
                   help="register (or replace) an implementation first (test-only or out of tree; repeatable), "
                        "e.g. full/test-gate=gate_fakes:WorkFull")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch, e.g. 1")
    p.add_argument("--no-progress", action="store_true", help="no per-round messages")


def _preflight(args: argparse.Namespace, out: Path, runs: int | None = None):  # -> tuple[GateConfig, CompareConfig]
    """Everything a gate or calibration needs, checked before anything is written: the statistics, the
    baseline (readable, with a spec and ok cases, from this device type and model, every implementation
    registered here) and an output directory without rows. Then the directory is created."""
    from ratbench.bench import gate as G
    from ratbench.bench.results import RESULTS

    ccfg = _ccfg(args)
    gcfg = G.GateConfig(rounds=args.rounds, samples_per_round=args.samples_per_round,
                        register=tuple(getattr(args, "register", None) or ()))
    try:
        G.check_baseline(args.baseline, gcfg)
    except (OSError, ValueError, G.GateError) as exc:  # ValueError: CMP.MismatchError, an unreadable run.json
        raise UsageError(str(exc), prog=args.prog) from None
    for d in [out] if runs is None else [out / f"aa{i:02d}" for i in range(runs)]:
        for name in (RESULTS, G.ROUNDS_FILE):
            if has_rows(d / name):
                raise UsageError(f"{d / name} already has rows: choose another --out", prog=args.prog)
    prepare_out_dir(out, prog=args.prog)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.no_progress:  # per-round progress on stderr
        logging.getLogger("ratbench.bench.gate").setLevel(logging.INFO)
    return gcfg, ccfg


def cmd_gate(args: argparse.Namespace, argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.calibrate is not None:
        return _calibrate(args, argv)
    from ratbench.bench import gate as G

    out = Path(args.out) if args.out else Path("reports") / "runs" / time.strftime("gate-%Y%m%d-%H%M%S", time.gmtime())
    gcfg, ccfg = _preflight(args, out)
    t0 = time.perf_counter()
    v = G.gate(args.baseline, out, gcfg, ccfg, command=_command(argv), progress=not args.no_progress)
    _print_verdict(v, out / "gate.md")
    print(f"gate run took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return v.exit_code


def _calibrate(args: argparse.Namespace, argv: list[str]) -> int:
    from ratbench.bench import gate as G

    out = Path(args.out) if args.out else Path("reports") / "runs" / time.strftime("calibrate-%Y%m%d-%H%M%S",
                                                                                   time.gmtime())
    gcfg, ccfg = _preflight(args, out, runs=args.calibrate)
    try:
        s = G.calibrate(args.baseline, out, args.calibrate, gcfg, ccfg, command=_command(argv),
                        progress=not args.no_progress)
    except (G.GateError, ValueError) as exc:  # an A/A run without a verdict (its gate.md says why)
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return 2
    print((out / "calibration.md").read_text(encoding="utf-8"))
    print(f"calibration: {out / 'calibration.md'}", file=sys.stderr)
    return 0 if s["suggested_threshold"] is not None else 1


def cmd_calibrate(args: argparse.Namespace, argv: list[str]) -> int:
    """``run_bench.py calibrate --baseline B --runs N`` = ``gate --baseline B --calibrate N``."""
    args.calibrate = args.runs
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _calibrate(args, argv)


def _static_args(p: argparse.ArgumentParser) -> None:
    from ratbench.bench.static_gate import DEFAULT_BASELINE

    p.add_argument("--baseline", default=str(DEFAULT_BASELINE),
                   help=f"baseline JSON (default {DEFAULT_BASELINE}); 'none' checks the absolute rules only")
    p.add_argument("--update", action="store_true", help="write the measured report as the new baseline")
    p.add_argument("--jobs", type=positive_int, help="compile processes (default: CPU count)")
    p.add_argument("--out", help="also write static.md and static.json here, e.g. reports/runs/static")
    p.add_argument("--list", action="store_true", help="print the launches found, compile nothing")
    p.add_argument("--impl", help="only these implementations' scenarios (comma-separated), e.g. rat/gluon")
    p.add_argument("--like", metavar="IMPL",
                   help="drive the one --impl implementation through IMPL's scenarios: a candidate of your own "
                        "before any GPU time, e.g. --register rat/gluon-x=mymod:X --impl rat/gluon-x --like rat/gluon")


def cmd_static(args: argparse.Namespace, argv: list[str]) -> int:
    from ratbench import impls
    from ratbench.bench import static_gate

    try:  # registered names (--register's were loaded by the CLI already), as run's --impl reads them
        names = impls.match(args.impl) if args.impl else None
    except impls.UnknownImplementationError as exc:
        raise UsageError(f"--impl {args.impl}: unknown implementation ({exc})", prog=args.prog) from None
    try:
        args.scenarios = static_gate.scenarios_for(names, args.like)
    except ValueError as exc:
        raise UsageError(str(exc), prog=args.prog) from None
    if args.update and names is not None:
        raise UsageError("--update writes the whole baseline: leave out --impl / --like", prog=args.prog)
    base = None
    if args.baseline != "none" and not args.update and not args.list:
        bp = Path(args.baseline)
        if not bp.is_file():
            raise UsageError(f"baseline {bp} does not exist (create it with --update)", prog=args.prog)
        try:
            base = json.loads(bp.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"baseline {bp} is not a static-gate report: {exc}", prog=args.prog) from None
        if not isinstance(base, dict) or not isinstance(base.get("kernels"), dict):
            raise UsageError(f"baseline {bp} is not a static-gate report: no 'kernels' table", prog=args.prog)
    if args.update:
        bp = Path(args.baseline if args.baseline != "none" else static_gate.DEFAULT_BASELINE)
        if bp.is_dir():
            raise UsageError(f"--baseline {bp} is a directory; --update writes a JSON file", prog=args.prog)
        prepare_out_dir(bp.parent, flag="--baseline", prog=args.prog)
    if args.out:
        prepare_out_dir(args.out, prog=args.prog)
    return static_gate.run(args, base)


def add_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add compare, gate, calibrate and static to run_bench.py's parser tree (``add(name, func, doc)``
    returns the new subparser)."""
    p = add("compare", cmd_compare, "Compare two runs case by case (ratio NEW/BASE of medians, bootstrap "
                                    "interval). Exit 0 pass, 1 regression, 2 mismatch/unusable.")
    p.add_argument("base", help="baseline run directory or results.jsonl, e.g. reports/baselines/h200-op")
    p.add_argument("new", help="run to judge, e.g. reports/runs/20261129-050838")
    p.add_argument("--out", help="where compare.md and compare.json go (default: NEW's directory)")
    _compare_args(p)
    p = add("gate", cmd_gate, "Re-measure exactly the baseline's cases here in interleaved rounds and compare. "
                              "Exit 0 pass, 1 regression (or improvement with --fail-on-improvement), 2 unusable.")
    _gate_args(p)
    p.add_argument("--calibrate", type=positive_int, metavar="N",
                   help="instead: N A/A runs against the baseline; report false alarms and detectable slowdowns")
    _compare_args(p)
    p = add("calibrate", cmd_calibrate, "A/A runs of the gate: false-alarm rate and smallest detectable slowdown "
                                        "per threshold. Exit 0, or 1 when every threshold had a false alarm.")
    _gate_args(p)
    p.add_argument("--runs", type=positive_int, default=10, help="A/A gate runs (default 10)")
    _compare_args(p)
    _static_args(add("static", cmd_static, "Compile every Triton kernel launch of the GPU runs for sm_90 (no GPU) "
                                          "and check registers, spills, shared memory and HGMMA against a "
                                          "baseline. Exit 0 pass, 1 fail, 2 unusable."))
