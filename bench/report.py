"""The report of a run, always regenerated from a results file (never from live objects):

    write_report(run_dir)   ->  run_dir/report.md and run_dir/figures/*.png|pdf
    write_reports(pairs, jobs)  the same for many runs, in parallel processes (the figures notebook)
    find_runs(root)         the run directories under root/reports, those with rows and those without

Tables (bench.tables): implementation x sequence length per mode, median milliseconds with the speed-up over
the baseline case that differs from the cell's case in the implementation alone (bench.report_rows), one
table per baseline row; noisy cells end in ~. Then the details of every timed case.
A gate run (rounds.jsonl beside results.jsonl) adds each row's speed-up round by round (bench.rounds).
Figures (bench.figures): latency vs T per mode, speed-up vs T, latency vs chunk size, decode latency vs batch,
a roofline, grouped TFLOP/s bars. Layer and model rows add the paper's section (bench.paper); a profile run its stages
(bench.profile_report).
"""
from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

from ratbench.bench import figures as F
from ratbench.bench import results as R
from ratbench.bench.report_rows import (
    CLOCK_SPREAD,
    MODE_TITLE,
    SECOND_BASELINE,
    choose_baseline,
    clock_spreads,
    missing,
    speedups,
    with_series,
)
from ratbench.bench.rounds import rounds_section
from ratbench.bench.sweep import MODES
from ratbench.bench.tables import METRICS, detail_table, mode_table, reasons_table, speedup_table, table_frame

#: what ``run_bench.py report --format`` writes: md = report.md and figures/; the others report_tables.<ext>
FORMATS = ("md", "csv", "json", "parquet")
TABLES_STEM = "report_tables"


def markdown(df, meta: dict, baseline: str | None, figures: list[str],  # type: ignore[no-untyped-def]
             second=None, metrics: Sequence[str] = tuple(METRICS)) -> str:
    dev = meta.get("device", {})
    ceil = meta.get("ceilings") or {}
    spec = meta.get("spec", {})
    out = ["# ratbench results", ""]
    out.append(f"- command: `{meta.get('command', '?')}`")
    out.append(f"- git: `{meta.get('git')}`, started {meta.get('started_at')}, finished {meta.get('finished_at')}")
    out.append(f"- device: {dev.get('name')} ({dev.get('device')}), capability {dev.get('capability')}, "
               f"driver {dev.get('nvml', {}).get('driver')}; python {dev.get('python')}, torch {dev.get('torch')}, "
               f"triton {dev.get('triton')}, CUDA {dev.get('cuda')}"
               + (f", {dev['torch_threads']} CPU threads" if dev.get("device") == "cpu" and dev.get("torch_threads")
                  else ""))
    from ratbench.bench.provenance import header_lines  # each session's machine, revision, versions; mixes warned

    out += header_lines(meta, df.to_dict("records"))
    if ceil:
        out.append(f"- measured ceilings: {ceil['matmul_dtype']} matmul {ceil['matmul_tflops']:.4g} TFLOP/s "
                   f"({ceil['matmul_shape']}^3), copy {ceil['copy_gbps']:.4g} GB/s (read + write)")
    if spec:
        out.append(f"- timing: median of up to {spec.get('repeats')} calls per case (at least "
                   f"{spec.get('min_repeats')}, budget {spec.get('case_budget_s')} s), L2 flushed before each call "
                   f"on CUDA: {spec.get('flush_l2')}, decode by CUDA-graph replay: {spec.get('cuda_graphs')}")
    counts = df.status.value_counts().to_dict()
    out.append("- cases: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    planned = meta.get("n_cases")
    if planned and len(df) < planned:
        out.append(f"- **incomplete**: {len(df)} of {planned} cases have a row (time limit or interrupted); "
                   f"`python run_bench.py resume <this directory>` runs the rest")
    out.append(f"- speed-ups are over `{baseline}`: each case over the `{baseline}` case that differs from it in "
               "the implementation alone (same shape, dtype, level, compile setting; within a family also the same "
               "chunk size, window, decay); each table names its baseline row" if baseline else "- no baseline")
    out += _clock_lines(df)
    out.append("")
    for mode in MODES:
        t = mode_table(df, mode, baseline, metrics)
        if not t:
            continue
        out += [f"## {MODE_TITLE[mode]}", "", t, ""]
        if second is not None and "speedup" in metrics:
            t2 = speedup_table(second, mode, SECOND_BASELINE)
            if t2:
                cap = (f"Speed-up over `{SECOND_BASELINE}`, each case over its `{SECOND_BASELINE}` case (same "
                       "shape, dtype, level, compile setting):")
                out += [cap, "", t2, ""]
    for mode in MODES:
        t = detail_table(df, mode, metrics)
        if t:
            out += [f"### Details: {mode}", "", t, ""]
    t = reasons_table(df)
    if t:
        out += ["## Cases not timed", "", t, ""]
    if figures:
        pngs = [f for f in figures if f.endswith(".png")]
        out += ["## Figures", ""] + [f"![{Path(f).stem}](figures/{Path(f).name})" for f in pngs]
        out.append("")
    return "\n".join(out)


def _clock_lines(df) -> list[str]:  # type: ignore[no-untyped-def]
    """A warning where one case's rows ran at SM clocks more than CLOCK_SPREAD apart (the widest case named)."""
    spreads = clock_spreads(df)
    if not spreads:
        return []
    w = spreads[0]
    clocks = ", ".join(f"{impl} {mhz:.0f} MHz" for impl, mhz in w.clocks)
    return [(f"- **SM clocks differ within {len(spreads)} case(s)** by more than {CLOCK_SPREAD:.0%} (NVML's mean over "
            f"the timed calls; widest: {w.case}, {clocks}, {w.spread:.1%} apart, in the order the rows ran). Under a "
            "power cap a case's later rows run hotter and slower, so speed-ups there carry the sweep's order; "
            "`python run_bench.py gate --baseline <this run> --rounds 6` re-measures the cases in rounds with the "
            "order alternating (bench/README.md, \"A/B of implementations on a power-capped GPU\")")]


# ----- entry point --------------------------------------------------------------------------------
def load_compared(path: str | Path, baseline: str | None = None):  # type: ignore[no-untyped-def]
    """A results file or run directory as the report compares it: (rows with series and speed-ups over the
    baseline, run metadata, the baseline, the rows compared with SECOND_BASELINE or None)."""
    path = Path(path)
    df = R.load(path)
    meta = R.read_meta(path if path.is_dir() else path.parent)
    if df.empty:
        raise ValueError(f"{path} has no rows")
    df = with_series(df)
    base = choose_baseline(df, baseline)
    second = None
    if base != SECOND_BASELINE and (df[df.status == "ok"].impl == SECOND_BASELINE).any():
        second = speedups(df, SECOND_BASELINE)
    return speedups(df, base), meta, base, second


def write_report(path: str | Path, *, baseline: str | None = None, out_dir: str | Path | None = None,
                 figures: bool = True, metrics: Sequence[str] = tuple(METRICS)) -> Path:
    """Regenerate report.md (and figures/) from a results file or run directory; ``metrics``: the columns
    the tables show (bench.tables.METRICS). Returns report.md."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    out = Path(out_dir) if out_dir else run_dir
    out.mkdir(parents=True, exist_ok=True)
    df, meta, base, second = load_compared(path, baseline)
    written: list[str] = []
    if figures:
        fig_dir = out / "figures"
        fig_dir.mkdir(exist_ok=True)
        for fn in (F.plot_latency, F.plot_speedup):
            fn(df, fig_dir, written, base)
        F.plot_chunk_size(df, fig_dir, written)
        F.plot_decode_batch(df, fig_dir, written)
        F.plot_roofline(df, meta, fig_dir, written)
        F.plot_tflops_bars(df, fig_dir, written)
    md = markdown(df, meta, base, written, second, metrics)
    if (df["level"] != "op").any():  # layer / model rows: the paper's Figure 3 and Table 1 side by side
        from ratbench.bench import paper

        md += "\n" + paper.section(df, meta, out / "figures" if figures else None)
    from ratbench.bench import profile_report  # run_bench.py profile: kernels and stages of one call (profile.jsonl)

    md += "\n" + profile_report.section(run_dir, meta, out / "figures" if figures else None)
    rounds = rounds_section(run_dir, base)  # a gate run (rounds.jsonl): each row's speed-up round by round
    if rounds:
        md += "\n" + rounds
    report = out / "report.md"
    report.write_text(md, encoding="utf-8")
    return report


def _write_pair(pair: tuple[Path, Path]) -> Path:
    return write_report(pair[0], out_dir=pair[1])


def write_reports(pairs: Sequence[tuple[Path, Path]], jobs: int = 1) -> list[Path]:
    """write_report(run, out_dir=out) for each (run, out) pair, in up to ``jobs`` processes (matplotlib draws on
    one core: the notebook's 120 committed runs took 9.4 min in one process on 2 cores). Returns the report.md
    paths in the order given; the first error of any run is raised."""
    if jobs <= 1 or len(pairs) <= 1:
        return [_write_pair(pr) for pr in pairs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, len(pairs))) as pool:
        return list(pool.map(_write_pair, pairs))


def find_runs(root: str | Path) -> tuple[list[Path], list[Path]]:
    """The run directories under ``root``/reports (every folder holding a results.jsonl), sorted: those with rows,
    and those without (a sweep stopped before its first case finished), which have no report to draw."""
    with_rows: list[Path] = []
    without: list[Path] = []
    for run in sorted(p.parent for p in Path(root).glob("reports/**/results.jsonl")):
        (with_rows if R.read_rows(run) else without).append(run)
    return with_rows, without


def parquet_engine() -> str | None:
    """The parquet writer pandas would use (pyarrow, else fastparquet), or None when neither is installed."""
    return next((m for m in ("pyarrow", "fastparquet") if importlib.util.find_spec(m) is not None), None)


def write_tables(path: str | Path, formats: Sequence[str], *, baseline: str | None = None,
                 out_dir: str | Path | None = None, metrics: Sequence[str] = tuple(METRICS)) -> list[Path]:
    """The report's tables as data (bench.tables.table_frame: one long table, a ``table`` column naming the
    Markdown table of each row) in each of ``formats`` among csv, json (a list of row objects, null for
    no value), parquet: ``report_tables.<format>`` next to report.md. Returns the files written."""
    path = Path(path)
    out = Path(out_dir) if out_dir else (path if path.is_dir() else path.parent)
    out.mkdir(parents=True, exist_ok=True)
    df, _, _, _ = load_compared(path, baseline)
    frame = table_frame(df, metrics)
    written = []
    for fmt in formats:
        target = out / f"{TABLES_STEM}.{fmt}"
        if fmt == "csv":
            frame.to_csv(target, index=False)
        elif fmt == "json":
            records = [{k: None if missing(v) else v for k, v in rec.items()}  # NaN -> null
                       for rec in frame.astype(object).to_dict("records")]
            target.write_text(json.dumps(records, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        elif fmt == "parquet":
            engine = parquet_engine()
            if engine is None:
                raise ValueError("--format parquet needs pyarrow or fastparquet (pip install pyarrow)")
            frame.to_parquet(target, index=False, engine=engine)
        else:
            raise ValueError(f"unknown table format {fmt!r}; valid: {', '.join(FORMATS[1:])}")
        written.append(target)
    return written


def rounds_summary(path: str | Path, baseline: str | None = None) -> str:
    """A gate run's speed-ups round by round (bench.rounds), as the report has them; "" for a run without rounds."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / R.ROUNDS).is_file():
        return ""
    return rounds_section(run_dir, choose_baseline(R.load(path), baseline))


def summary_tables(path: str | Path, baseline: str | None = None, metrics: Sequence[str] = tuple(METRICS)) -> str:
    """Just the per-mode tables (what the CLI prints at the end of a sweep)."""
    df = with_series(R.load(path))
    base = choose_baseline(df, baseline)
    df = speedups(df, base)
    parts = []
    for mode in MODES:
        t = mode_table(df, mode, base, metrics)
        if t:
            parts += [f"{MODE_TITLE[mode]}:", t, ""]
    return "\n".join(parts)
