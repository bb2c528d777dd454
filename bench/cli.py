"""ratbench: sweep attention implementations over sequence length, chunk size and batch.

A thin entry point: the work is in bench/ (sweep -> cases -> rows -> results file -> report).
"""
from __future__ import annotations

import argparse
import logging
import re
import shlex
import sys
import time
from pathlib import Path

from ratbench.bench import cli_parser as P
from ratbench.bench import exit_codes
from ratbench.bench.cli_args import Parser, has_rows, prepare_out_dir
from ratbench.bench.cli_parser import COMMANDS, EXAMPLES, PRESET_NAMES, RESUME_FLAGS  # noqa: F401  (PRESET_NAMES: tests)
from ratbench.bench.exit_codes import UsageError


def build_parser() -> argparse.ArgumentParser:
    """Every command's arguments, in one parser tree (``run`` is the default command: ``main`` puts it
    in front of a command line that does not start with a command)."""
    from ratbench.bench import exit_codes, gate_cli

    top = Parser(prog="run_bench.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    raw = argparse.RawDescriptionHelpFormatter

    def add(name: str, func, doc: str, prog: str | None = None, **kw) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = sub.add_parser(name, prog=prog or f"run_bench.py {name}", help=doc, description=doc,
                           formatter_class=raw, **kw)
        p.set_defaults(func=func, prog=p.prog)
        return p

    P.run_args(add("run", cmd_run, "Measure implementations over a grid (train = forward + backward, prefill = "
                  "forward without grad, decode = one step at position T - 1) and write results, tables and "
                  "figures. 'run' may be left out.", prog="run_bench.py",
                  epilog=EXAMPLES + "\n" + exit_codes.table_text()))
    r = add("resume", cmd_run, "Run the cases of DIR's sweep that have no row yet (the sweep is DIR/run.json's).",
            epilog=exit_codes.table_text())
    P.resume_args(r)
    r.set_defaults(out=None, preset=None)
    P.list_args(add("list", cmd_list, "Every implementation and whether it runs here."))
    P.report_args(add("report", cmd_report, "Regenerate report.md and figures/ from a results file."))
    p = add("profile", cmd_profile, P.PROFILE_DOC, epilog=P.PROFILE_EXAMPLES + "\n" + exit_codes.table_text())
    P.run_args(p)
    P.profile_args(p)
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

    from ratbench import impls
    from ratbench.bench.gate import parse_register, register_impls

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
    from ratbench import impls
    from ratbench.impls.spec import CASE_FIELDS

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

    from ratbench.bench.presets import preset
    from ratbench.bench.sweep import FIELD_PARSERS, parse_size, parse_sizes

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        raise UsageError("--device cuda, but no CUDA GPU is visible to torch")
    spec = preset(args.preset or "default", device)

    # flag -> spec field (read by bench.sweep.FIELD_PARSERS); a flag left empty keeps the preset's value
    for name, attr in (
            ("impl", "impls"), ("mode", "modes"), ("seq_len", "seq_lens"), ("chunk_size", "chunk_sizes"),
            ("window", "windows"), ("decay", "decays"), ("decode_batch", "decode_batches"), ("heads", "heads"),
            ("head_dim", "head_dims"), ("dtype", "dtype"), ("level", "levels"), ("kind", "kinds"),
            ("layer_chunk_size", "layer_chunk_sizes"), ("compile", "compile"), ("decode_fill", "decode_fill"),
            ("model", "models"), ("prompt_len", "prompt_len"), ("new_tokens", "new_tokens"),
            ("model_batch", "model_batch"), ("max_batch", "max_batch_limit"), ("layers", "n_layers")):
        if getattr(args, name):
            setattr(spec, attr, FIELD_PARSERS[attr](getattr(args, name)))
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
    from ratbench.bench.results import STATUSES

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
    P.run_args(p)
    return sorted(a.option_strings[0] for a in p._actions
                  if a.option_strings and a.dest not in RESUME_FLAGS + ("resume",)
                  and getattr(args, a.dest, a.default) != a.default)


def _resumed_spec(args: argparse.Namespace):  # -> tuple[Path, SweepSpec, str | None]
    from ratbench.bench.results import META, read_meta
    from ratbench.bench.sweep import SweepSpec

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


def _plan(args: argparse.Namespace):  # -> tuple[Path, SweepSpec, str, list[Case], set[str], bool]
    """The sweep a run or resume command asks for, checked: (run_dir, spec, preset, cases, retry, resume)."""
    from ratbench.bench.sweep import expand

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
    return run_dir, spec, preset, cases, retry, resume


def _run_cases(r, todo: list, spec, progress: bool) -> list:  # type: ignore[no-untyped-def]
    """Run ``todo`` with runner ``r``; a progress bar that advances by each case's estimated cost."""
    if not progress or not todo:
        return r.run(todo, time_limit_s=spec.time_limit_s)
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from ratbench.bench.costs import estimate_cases

    weights = estimate_cases(todo, spec)
    count = {"n": 0}

    def on_start(c) -> None:  # type: ignore[no-untyped-def]
        count["n"] += 1
        bar.set_postfix_str(f"case {count['n']}/{len(todo)}: {c.short()}", refresh=True)

    # the bar advances by each case's estimated cost, so its time-left estimate weighs long cases
    fmt = "{l_bar}{bar}| [{elapsed}<{remaining}]{postfix}"
    with tqdm(total=sum(weights.values()), bar_format=fmt, dynamic_ncols=True) as bar, logging_redirect_tqdm():
        return r.run(todo, on_start=on_start, on_done=lambda c, row: bar.update(weights[c.key]),
                     time_limit_s=spec.time_limit_s)


def _conclude(args: argparse.Namespace, run_dir: Path, keys: list[str], spec, session, arrived: bool,  # type: ignore[no-untyped-def]
              device_lost: str | None = None) -> int:
    """After the cases: the verdict over every session's rows, report.md, the console summary."""
    from ratbench.bench import report
    from ratbench.bench.results import last_rows, noise_summary, read_meta

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
    explain(code, final, left, run_dir, session=session, arrived=arrived, time_limit_s=spec.time_limit_s,
            device_lost=device_lost)
    return code


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    """``run`` and ``resume``: validate everything, then create the run directory, run, report, and exit
    with the sweep's verdict (bench/exit_codes.py)."""
    from ratbench.bench import distributed, runner
    from ratbench.bench.results import RESULTS, finished_keys

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    command = "python run_bench.py " + " ".join(shlex.quote(a) for a in argv)
    run_dir, spec, preset, cases, retry, resume = _plan(args)
    if args.dry_run:
        todo = [c for c in cases if c.key not in (finished_keys(run_dir, retry) if resume else set())]
        for c in todo:
            print(c.key)
        print(f"{len(todo)} cases" + (f" of {len(cases)} left" if resume else ""), file=sys.stderr)
        return 0
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
    try:
        rows = _run_cases(r, todo, spec, not args.no_progress and (session is None or session.is_main))
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
    return _conclude(args, run_dir, keys, spec, session, arrived, r.device_lost)


def _resume_command(run_dir: Path, session: object | None) -> str:
    head = "torchrun --nproc-per-node=N run_bench.py" if session is not None else "python run_bench.py"
    return f"{head} resume {shlex.quote(str(run_dir))}"


def explain(code: int, rows: list[dict], left: int, run_dir: Path, *, session: object | None = None,
            arrived: bool = True, time_limit_s: float | None = None, device_lost: str | None = None) -> None:
    """What the sweep's exit code means, on stderr: the failed cases, the resume command, or why nothing ran."""
    failed = exit_codes.reasons(rows, exit_codes.FAILED_STATUSES)
    if failed:
        n = sum(1 for r in rows if r.get("status") in exit_codes.FAILED_STATUSES)
        print(f"{n} cases ended error or wrong (report.md, 'Cases not timed'; after a fix: "
              f"{_resume_command(run_dir, session)} --retry error,wrong):", *failed, sep="\n", file=sys.stderr)
    if code == exit_codes.UNFINISHED:
        why = ("a rank died" if not arrived else
               f"the device was lost in {device_lost}, and this process can run no more cases" if device_lost else
               f"time limit ({time_limit_s:g} s) reached" if time_limit_s is not None else "unfinished")
        print(f"{why}: {left} cases not run; finish them with: {_resume_command(run_dir, session)}",
              file=sys.stderr)
    elif code == exit_codes.NOTHING_RUNNABLE:
        print(f"run_bench.py: nothing runnable: all {len(rows)} cases are unsupported, unavailable or skipped:",
              *exit_codes.reasons(rows, exit_codes.NOT_RUN_STATUSES), sep="\n", file=sys.stderr)


def cmd_list(args: argparse.Namespace, argv: list[str]) -> int:
    import torch

    from ratbench import impls

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
    from ratbench.bench import report
    from ratbench.bench.rank_files import merge_rank_files, rank_files
    from ratbench.bench.results import RESULTS, read_rows
    from ratbench.bench.tables import METRICS

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
    rounds = report.rounds_summary(args.results, baseline=args.baseline)
    if rounds:
        print(rounds)
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
    from ratbench.bench import profile

    return profile.main(args, argv, build_spec)


def version_text() -> str:
    """``ratbench <version>`` from the installed metadata (``ratbench.__version__``; "not installed" when
    there is none), and the git revision of the checkout when the code runs from one."""
    import ratbench
    from ratbench.bench.provenance import git_revision

    version = ratbench.__version__
    if version == ratbench.UNKNOWN_VERSION:
        version = "(not installed: pip install -e .)"
    rev = git_revision(str(ratbench.CHECKOUT)) if ratbench.CHECKOUT is not None else ""
    known = re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?", rev)  # not "unknown (no .git, ...)": a copy without .git
    return f"ratbench {version}" + (f" (git {rev})" if known else "")


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
        if items and args.command in ("report", "compare"):
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
