"""The report of a run, always regenerated from a results file (never from live objects):

    write_report(run_dir)   ->  run_dir/report.md and run_dir/figures/*.png|pdf

Tables (bench.tables): implementation x sequence length per mode, median milliseconds with the speed-up over
the baseline case that differs from the cell's case in the implementation alone (bench.report_rows), one
table per baseline row; noisy cells end in ~. Then the details of every timed case.
Figures (bench.figures): latency vs T per mode, speed-up vs T, latency vs chunk size, decode latency vs batch,
a roofline. Layer and model rows add the paper's section (bench.paper); a profile run its stages
(bench.profile_report).
"""
from __future__ import annotations

from pathlib import Path

from bench import figures as F
from bench import results as R
from bench.report_rows import MODE_TITLE, SECOND_BASELINE, choose_baseline, speedups, with_series
from bench.sweep import MODES
from bench.tables import detail_table, mode_table, reasons_table, speedup_table


def markdown(df, meta: dict, baseline: str | None, figures: list[str],  # type: ignore[no-untyped-def]
             second=None) -> str:
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
    out.append("")
    for mode in MODES:
        t = mode_table(df, mode, baseline)
        if not t:
            continue
        out += [f"## {MODE_TITLE[mode]}", "", t, ""]
        if second is not None:
            t2 = speedup_table(second, mode, SECOND_BASELINE)
            if t2:
                cap = (f"Speed-up over `{SECOND_BASELINE}`, each case over its `{SECOND_BASELINE}` case (same "
                       "shape, dtype, level, compile setting):")
                out += [cap, "", t2, ""]
    for mode in MODES:
        t = detail_table(df, mode)
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


# ----- entry point --------------------------------------------------------------------------------
def write_report(path: str | Path, *, baseline: str | None = None, out_dir: str | Path | None = None,
                 figures: bool = True) -> Path:
    """Regenerate report.md (and figures/) from a results file or run directory. Returns report.md."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    out = Path(out_dir) if out_dir else run_dir
    out.mkdir(parents=True, exist_ok=True)
    df = R.load(path)
    meta = R.read_meta(run_dir)
    if df.empty:
        raise ValueError(f"{path} has no rows")
    df = with_series(df)
    base = choose_baseline(df, baseline)
    second = None
    if base != SECOND_BASELINE and (df[df.status == "ok"].impl == SECOND_BASELINE).any():
        second = speedups(df, SECOND_BASELINE)
    df = speedups(df, base)
    written: list[str] = []
    if figures:
        fig_dir = out / "figures"
        fig_dir.mkdir(exist_ok=True)
        for fn in (F.plot_latency, F.plot_speedup):
            fn(df, fig_dir, written, base)
        F.plot_chunk_size(df, fig_dir, written)
        F.plot_decode_batch(df, fig_dir, written)
        F.plot_roofline(df, meta, fig_dir, written)
    md = markdown(df, meta, base, written, second)
    if (df["level"] != "op").any():  # layer / model rows: the paper's Figure 3 and Table 1 side by side
        from bench import paper

        md += "\n" + paper.section(df, meta, out / "figures" if figures else None)
    from bench import profile_report  # run_bench.py profile: kernels and stages of one call (profile.jsonl)

    md += "\n" + profile_report.section(run_dir, meta, out / "figures" if figures else None)
    report = out / "report.md"
    report.write_text(md, encoding="utf-8")
    return report


def summary_tables(path: str | Path, baseline: str | None = None) -> str:
    """Just the per-mode tables (what the CLI prints at the end of a sweep)."""
    df = with_series(R.load(path))
    base = choose_baseline(df, baseline)
    df = speedups(df, base)
    parts = []
    for mode in MODES:
        t = mode_table(df, mode, base)
        if t:
            parts += [f"{MODE_TITLE[mode]}:", t, ""]
    return "\n".join(parts)
