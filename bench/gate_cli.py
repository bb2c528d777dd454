"""Command lines of ``run_bench.py compare | gate | calibrate | static`` (the perf-regression gate).

Exit codes (all four): 0 pass, 1 regression (or a broken case; for ``static``: new spills, lost
HGMMA, shared memory over the limit, a kernel that no longer compiles), 2 unusable (mismatched runs,
missing device, unreadable baseline, bad arguments).
"""
from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

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
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (mixed with each case key; default 0)")
    g.add_argument("--fail-on-improvement", action="store_true",
                   help="also fail (exit 1) when a case got faster beyond the threshold: the baseline is stale")


def _ccfg(args: argparse.Namespace):  # -> CompareConfig
    from bench.compare import CompareConfig

    return CompareConfig(threshold=args.threshold, confidence=args.confidence, n_boot=args.n_boot,
                         min_samples=args.min_samples, seed=args.seed, fail_on_improvement=args.fail_on_improvement)


def _print_verdict(v, md: Path | None, title: str = "Perf gate") -> None:  # type: ignore[no-untyped-def]
    from bench.compare import to_markdown

    print(to_markdown(v, title))
    if md is not None:
        print(f"summary: {md}\nverdict: {md.with_suffix('.json')}", file=sys.stderr)
    print(f"verdict: {v.verdict} (exit {v.exit_code}): {v.reason}", file=sys.stderr)


def cmd_compare(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="run_bench.py compare",
        description="Compare two runs case by case (ratio NEW/BASE of medians, bootstrap interval). "
                    "Exit 0 pass, 1 regression, 2 mismatch/unusable.")
    p.add_argument("base", help="baseline run directory or results.jsonl, e.g. reports/baselines/h200-op")
    p.add_argument("new", help="run to judge, e.g. reports/runs/20261129-050838")
    p.add_argument("--out", help="where compare.md and compare.json go (default: NEW's directory)")
    _compare_args(p)
    args = p.parse_args(argv)
    from bench import compare as CMP

    try:
        cfg = _ccfg(args)
        v = CMP.compare_runs(args.base, args.new, cfg)
    except CMP.MismatchError as exc:
        print(f"run_bench.py compare: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"run_bench.py compare: error: {exc}", file=sys.stderr)
        return 2
    new = Path(args.new)
    out = Path(args.out) if args.out else (new if new.is_dir() else new.parent)
    md, _ = CMP.write_outputs(v, out, stem="compare", title="Perf compare")
    _print_verdict(v, md, "Perf compare")
    return v.exit_code


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baseline", required=True, help="baseline run directory or results.jsonl, e.g. "
                                                     "reports/baselines/h200-op")
    p.add_argument("--out", help="run directory for the new measurement (default: reports/runs/gate-<UTC stamp>)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds over all cases (default 5)")
    p.add_argument("--samples-per-round", type=int,
                   help="timed calls per case per round (default: the baseline's repeats / rounds, >= 3)")
    p.add_argument("--register", action="append", metavar="NAME=MODULE:CLASS",
                   help="register an extra implementation first (test-only or out of tree), "
                        "e.g. full/test-gate=gate_fakes:WorkFull")
    p.add_argument("--threads", type=int, help="CPU threads for torch, e.g. 1")
    p.add_argument("--no-progress", action="store_true", help="no per-round messages")


def _setup(args: argparse.Namespace):  # -> GateConfig
    from bench.gate import GateConfig, parse_register

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not args.no_progress:  # per-round progress on stderr
        logging.getLogger("bench.gate").setLevel(logging.INFO)
    return GateConfig(rounds=args.rounds, samples_per_round=args.samples_per_round,
                      register=parse_register(args.register))


def cmd_gate(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="run_bench.py gate",
        description="Re-measure exactly the baseline's cases here in interleaved rounds and compare. Exit 0 pass, "
                    "1 regression (or improvement with --fail-on-improvement), 2 unusable.")
    _gate_args(p)
    p.add_argument("--calibrate", type=int, metavar="N",
                   help="instead: N A/A runs against the baseline; report false alarms and detectable slowdowns")
    _compare_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.calibrate is not None:
        return _calibrate(args, argv)
    from bench import compare as CMP
    from bench import gate as G

    try:
        gcfg, ccfg = _setup(args), _ccfg(args)
    except ValueError as exc:
        print(f"run_bench.py gate: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("reports") / "runs" / time.strftime("gate-%Y%m%d-%H%M%S", time.gmtime())
    t0 = time.perf_counter()
    command = "python run_bench.py gate " + " ".join(shlex.quote(a) for a in argv)
    v = G.gate(args.baseline, out, gcfg, ccfg, command=command, progress=not args.no_progress)
    _print_verdict(v, out / "gate.md")
    print(f"gate run took {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    del CMP
    return v.exit_code


def _calibrate(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import gate as G

    try:
        gcfg, ccfg = _setup(args), _ccfg(args)
    except ValueError as exc:
        print(f"run_bench.py calibrate: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("reports") / "runs" / time.strftime("calibrate-%Y%m%d-%H%M%S",
                                                                                   time.gmtime())
    try:
        s = G.calibrate(args.baseline, out, args.calibrate, gcfg, ccfg,
                        command="python run_bench.py gate " + " ".join(shlex.quote(a) for a in argv),
                        progress=not args.no_progress)
    except (G.GateError, ValueError) as exc:
        print(f"run_bench.py calibrate: error: {exc}", file=sys.stderr)
        return 2
    print((out / "calibration.md").read_text(encoding="utf-8"))
    print(f"calibration: {out / 'calibration.md'}", file=sys.stderr)
    return 0 if s["suggested_threshold"] is not None else 1


def cmd_calibrate(argv: list[str]) -> int:
    """``run_bench.py calibrate --baseline B --runs N`` = ``gate --baseline B --calibrate N``."""
    p = argparse.ArgumentParser(prog="run_bench.py calibrate",
                                description="A/A runs of the gate: false-alarm rate and smallest detectable slowdown "
                                            "per threshold.")
    _gate_args(p)
    p.add_argument("--runs", type=int, default=10, help="A/A gate runs (default 10)")
    _compare_args(p)
    args = p.parse_args(argv)
    args.calibrate = args.runs
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _calibrate(args, argv)


def cmd_static(argv: list[str]) -> int:
    from bench import static_gate

    return static_gate.main(argv)
