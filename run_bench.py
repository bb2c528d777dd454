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
  list [--device D]              implementations and their availability
  report RESULTS [--baseline B]  regenerate report.md and figures/ from a results file or run directory
  resume DIR                     run the cases of DIR's sweep that have no row yet (same as --resume DIR);
                                 --retry error,oom also re-runs the cases that ended so
  compare BASE NEW               per-case slowdown NEW/BASE with a bootstrap interval; exit 1 on a regression
  gate --baseline B              re-measure B's cases here in interleaved rounds and compare (exit 0/1/2)
  calibrate --baseline B         A/A gate runs: false-alarm rate, smallest detectable slowdown
  static [--baseline F]          compile every Triton kernel for sm_90: registers, spills, smem, HGMMA vs F
  profile [run's flags] [--ncu]  kernels and stages of one call per case, traces, coverage (bench/profile.py)
  (see bench/README.md, "Perf-regression gate"; --register NAME=MODULE:CLASS adds an implementation)

sizes take k/m suffixes (4k = 4096) and doubling ranges (4k..128k). Results go to
reports/runs/<UTC timestamp>/ unless --out is given: results.jsonl (one JSON row per case, appended
as each finishes), run.json (command, git revision, versions, device, measured ceilings), report.md
and figures/*.png|pdf.
"""

log = logging.getLogger("ratbench")


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_bench.py [run]",
        description="Measure implementations over a grid (train = forward + backward, prefill = forward "
                    "without grad, decode = one step at position T - 1) and write results, tables and figures.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("what to run (flags override the preset)")
    g.add_argument("--preset", choices=["smoke", "default", "paper"], default=None,
                   help="named sweep (default: 'default'); CPU presets use small shapes, e.g. --preset paper")
    g.add_argument("--impl", help="comma-separated names or globs, e.g. 'rat/*,full/sdpa-*' (default: all; "
                                  "GPU presets leave the slow */reference oracles out of globs)")
    g.add_argument("--mode", help="train,prefill,decode (default: all three), e.g. --mode train")
    g.add_argument("--seq-len", help="sequence lengths, e.g. 4k,16k,128k or 4k..128k")
    g.add_argument("--chunk-size", help="RAT chunk sizes L, e.g. 16,64,128")
    g.add_argument("--window", help="SWA windows (keys including the query), e.g. 1024")
    g.add_argument("--decay", help="linear attention without/with a per-head decay: no, yes or no,yes")
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
    lv.add_argument("--layers", type=int, help="model: mixer layers (each followed by an FFN), e.g. 24")
    lv.add_argument("--model-batch", help="model: a fixed batch instead of the largest that fits, e.g. 64")
    lv.add_argument("--max-batch", help="model: upper limit of the largest-batch search, e.g. 4096")
    g.add_argument("--heads", help="heads H, e.g. 16")
    g.add_argument("--head-dim", help="head dim D, e.g. 128")
    g.add_argument("--dtype", help="bf16, fp16, fp32 or fp64, e.g. --dtype bf16 (GPU presets: bf16, CPU: fp32)")
    g.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda if visible), e.g. --device cuda")
    g.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: torch's choice; 1 is steadier on a busy machine), e.g. 1")
    g.add_argument("--skip-references", action=argparse.BooleanOptionalAction, default=None,
                   help="leave */reference out of glob matches (default: on for GPU presets)")
    t = p.add_argument_group("timing")
    t.add_argument("--repeats", type=int, help="most timed calls per case, e.g. --repeats 100")
    t.add_argument("--min-repeats", type=int, help="fewest timed calls per case, e.g. 5")
    t.add_argument("--budget", type=float, help="seconds of timed calls per case, e.g. 1.0")
    t.add_argument("--max-call-s", type=float,
                   help="a call slower than this skips the longer sequences of the same series, e.g. 5")
    t.add_argument("--time-limit", type=float,
                   help="start no case after this many seconds; the rest wait for 'resume' (paper preset on a GPU: "
                        "540), e.g. --time-limit 500")
    t.add_argument("--no-flush-l2", action="store_true", help="do not flush the L2 cache between timed calls")
    t.add_argument("--no-cuda-graphs", action="store_true", help="time decode steps eagerly, not by graph replay")
    t.add_argument("--no-check", action="store_true", help="skip the accuracy check against the family reference")
    t.add_argument("--seed", type=int, help="input seed, e.g. 0")
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
    return p


def build_spec(args: argparse.Namespace):  # -> SweepSpec
    import torch

    from bench.sweep import parse_bools, parse_dtype, parse_modes, parse_size, parse_sizes, preset

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SystemExit(f"--device must be cpu, cuda or auto, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available() and not args.dry_run:
        raise SystemExit("--device cuda, but no CUDA GPU is visible to torch")
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
    # --batch and --tokens exclude each other (argparse): either one clears the other's preset value
    if args.batch:
        spec.batches, spec.tokens = parse_sizes(args.batch), None
    if args.tokens:
        spec.tokens, spec.batches = parse_size(args.tokens), None
    if args.skip_references is not None:
        spec.skip_references = args.skip_references
    for name, attr in (("time_limit", "time_limit_s"), ("repeats", "repeats"), ("min_repeats", "min_repeats"),
                       ("budget", "case_budget_s"),
                       ("max_call_s", "max_call_s"), ("seed", "seed")):
        if getattr(args, name) is not None:
            setattr(spec, attr, getattr(args, name))
    spec.flush_l2 = spec.flush_l2 and not args.no_flush_l2
    spec.cuda_graphs = spec.cuda_graphs and not args.no_cuda_graphs
    spec.check_accuracy = spec.check_accuracy and not args.no_check
    return spec


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from bench import report, runner
    from bench.results import STATUSES, read_meta
    from bench.sweep import SweepError, SweepSpec

    command = "python run_bench.py " + " ".join(shlex.quote(a) for a in argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    retry: set[str] = set()
    if args.retry:
        retry = {x.strip() for x in args.retry.split(",") if x.strip()}
        bad = sorted(retry - set(STATUSES))
        if not args.resume or bad or "ok" in retry:
            print("run_bench.py: error: --retry goes with resume and takes statuses among "
                  f"{', '.join(x for x in STATUSES if x != 'ok')}" + (f"; unknown: {', '.join(bad)}" if bad else ""),
                  file=sys.stderr)
            return 2
    try:
        if args.resume:
            run_dir = Path(args.resume)
            meta = read_meta(run_dir)
            if not meta.get("spec"):
                raise SystemExit(f"{run_dir} has no run.json with a sweep spec: nothing to resume")
            spec = SweepSpec.from_dict(meta["spec"])
            if args.time_limit is not None:
                spec.time_limit_s = args.time_limit
            preset = meta.get("preset")
        else:
            spec = build_spec(args)
            preset = args.preset or "default"
            if args.dry_run:
                from bench.sweep import expand

                cases = expand(spec)
                for c in cases:
                    print(c.key)
                print(f"{len(cases)} cases", file=sys.stderr)
                return 0
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
            run_dir = Path(args.out) if args.out else Path("reports") / "runs" / stamp
        from bench import distributed

        # under torchrun: this rank's share of the cases, rows to results.rank<k>.jsonl (bench/distributed.py)
        session = distributed.Session.init(spec.device) if distributed.launched() else None
        if session is not None:
            r, cases, done, run_dir = session.start(spec, run_dir, command=command, preset=preset,
                                                    resume=bool(args.resume), retry=retry)
        else:
            r, cases, done = runner.start(spec, run_dir, command=command, preset=preset, resume=bool(args.resume),
                                          retry=retry)
    except (SweepError, ValueError, FileExistsError) as exc:
        print(f"run_bench.py: error: {exc}", file=sys.stderr)
        return 2
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
        print(f"\ninterrupted; finished cases are in {run_dir}; continue with: python run_bench.py resume {run_dir}",
              file=sys.stderr)
        return 130
    if session is not None:  # wait for every rank; rank 0 merges the rank files and writes the report
        rows, r.left, arrived = session.finish(r)
        session.close()
        if not session.is_main:
            return 0 if arrived else 1
    runner.finish(run_dir, rows)
    path = report.write_report(run_dir, baseline=args.baseline, figures=not args.no_figures)
    print(report.summary_tables(run_dir, baseline=args.baseline))
    print(f"results: {run_dir / 'results.jsonl'}\nreport:  {path}")
    if session is not None and not arrived:
        print(f"a rank died: {r.left} cases have no row; finish them with: torchrun --nproc-per-node=N "
              f"run_bench.py resume {run_dir}", file=sys.stderr)
        return 1
    if r.left:
        print(f"time limit ({spec.time_limit_s:g} s) reached: {r.left} cases not run; finish them with: "
              f"python run_bench.py resume {run_dir}", file=sys.stderr)
    return 0


def cmd_list(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py list", description="Every implementation and whether it runs here.")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto, e.g. --device cuda")
    args = p.parse_args(argv)
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


def cmd_report(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="run_bench.py report",
                                description="Regenerate report.md and figures/ from a results file.")
    p.add_argument("results", help="results.jsonl or its run directory, e.g. reports/h200-paper")
    p.add_argument("--baseline", help="speed-ups over this implementation, e.g. full/sdpa-cudnn")
    p.add_argument("--out", help="write the report here instead of next to the results")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    args = p.parse_args(argv)
    from bench import report

    try:
        from bench.distributed import merge_rank_files

        src = Path(args.results)  # rows of a torchrun launch that never reached its merge
        if src.is_dir() or src.name == "results.jsonl":
            merge_rank_files(src if src.is_dir() else src.parent)
        path = report.write_report(args.results, baseline=args.baseline, out_dir=args.out,
                                   figures=not args.no_figures)
    except (OSError, ValueError) as exc:
        print(f"run_bench.py report: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary_tables(args.results, baseline=args.baseline))
    print(f"report: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("compare", "gate", "calibrate", "static"):  # the perf gate: bench/gate_cli.py
        from bench import gate_cli

        return getattr(gate_cli, f"cmd_{argv[0]}")(argv[1:])
    if "--register" in argv:  # extra implementations for a sweep (e.g. the gate's test-only ones)
        from bench.gate import parse_register, register_impls

        i = argv.index("--register")
        register_impls(parse_register(argv[i + 1:i + 2]))
        return main(argv[:i] + argv[i + 2:])
    if argv and argv[0] == "profile":  # kernels and stages of one call per case: bench/profile.py
        from bench import profile

        return profile.main(argv[1:], _run_parser, build_spec)
    if argv and argv[0] == "list":
        return cmd_list(argv[1:])
    if argv and argv[0] == "report":
        return cmd_report(argv[1:])
    if argv and argv[0] == "resume":
        if len(argv) < 2 or argv[1].startswith("-"):
            print("usage: run_bench.py resume DIR", file=sys.stderr)
            return 2
        argv = ["--resume", argv[1]] + argv[2:]
    elif argv and argv[0] == "run":
        argv = argv[1:]
    args = _run_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return cmd_run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
