"""Markdown tables and matplotlib figures, always regenerated from a results file (never from live
objects).

    write_report(run_dir)   ->  run_dir/report.md and run_dir/figures/*.png|pdf

Tables: implementation x sequence length per mode, median milliseconds with the speed-up over a
baseline implementation measured on the same shapes; then the details of every timed case.
Figures: latency vs T per mode side by side (the paper's Figure 3 layout), speed-up vs T, latency vs
chunk size, decode latency vs batch, and a roofline with the run's measured ceilings. Failed cases are
drawn as markers at the top of the axes (OOM: a red x), not left out.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

from bench import results as R
from bench.sweep import MODES, format_size, short_dtype

log = logging.getLogger(__name__)

#: first of these with timed rows is the default baseline
BASELINE_PRIORITY = ("full/sdpa-flash", "full/sdpa-cudnn", "full/sdpa", "full/flash-attn", "full/fa4", "full/flex",
                     "full/sdpa-math", "full/reference")
#: rows compared for a speed-up share these (layer level: compiled layers against compiled layers)
SHAPE_COLS = ["mode", "seq_len", "batch", "heads", "head_dim", "dtype", "device", "level", "compiled"]
STATUS_MARK = {"oom": "OOM", "error": "error", "wrong": "wrong", "unsupported": "n/a", "unavailable": "n/a",
               "skipped": "skipped"}
MODE_TITLE = {"train": "train (forward + backward)", "prefill": "prefill (forward, no grad)",
              "decode": "decode (one step at T - 1)"}


def _num(x: object) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _ms(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _bytes(x: object) -> str:
    f = _num(x)
    if f is None:
        return ""
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if f >= div:
            return f"{f / div:.3g} {unit}"
    return f"{f:.0f} B"


def choose_baseline(df, baseline: str | None = None) -> str | None:  # type: ignore[no-untyped-def]
    """The implementation speed-ups are measured against: ``baseline`` if given (it must have rows),
    else the one of BASELINE_PRIORITY with the most timed rows, else the first implementation timed."""
    ok = df[df.status == "ok"]
    if baseline:
        if baseline not in set(df.impl):
            raise ValueError(f"baseline {baseline!r} has no rows in this results file; impls: "
                             f"{', '.join(sorted(set(df.impl)))}")
        return baseline
    counts = ok.impl.value_counts().to_dict()
    candidates = [n for n in BASELINE_PRIORITY if n in counts]
    if candidates:  # the most complete of the preferred baselines (earlier in the list wins ties)
        return max(candidates, key=lambda n: (counts[n], -candidates.index(n)))
    return min(counts) if counts else None


def with_series(df):  # type: ignore[no-untyped-def]
    """Add a 'series' column: the row label of tables and the line of plots (impl + family params, and
    B / H / D / dtype where they vary within a mode at one T)."""
    df = df.copy()
    df["series"] = df["label"]
    for mode, sub in df.groupby("mode"):
        idx = sub.index
        extra = [""] * len(sub)
        for col, fmt in (("heads", "H={}"), ("head_dim", "D={}"), ("dtype", "{}")):
            if sub[col].nunique() > 1:
                extra = [e + " " + fmt.format(short_dtype(v) if col == "dtype" else v)
                         for e, v in zip(extra, sub[col])]
        if (sub.groupby(["label", "seq_len", "heads", "head_dim", "dtype"]).batch.nunique() > 1).any():
            extra = [e + f" B={b}" for e, b in zip(extra, sub["batch"])]
        df.loc[idx, "series"] = [s + e for s, e in zip(sub["label"], extra)]
    return df


def speedups(df, baseline: str | None):  # type: ignore[no-untyped-def]
    """Column 'speedup': baseline median / this median on the same shape (mode, T, B, H, D, dtype)."""
    df = df.copy()
    df["speedup"] = float("nan")
    if baseline is None:
        return df
    base = df[(df.impl == baseline) & (df.status == "ok")]
    base = base.drop_duplicates(SHAPE_COLS)[SHAPE_COLS + ["ms_median"]].rename(columns={"ms_median": "base_ms"})
    merged = df.merge(base, on=SHAPE_COLS, how="left")
    df["speedup"] = (merged["base_ms"] / merged["ms_median"]).to_numpy()
    return df


# ----- Markdown -----------------------------------------------------------------------------------
def mode_table(df, mode: str, baseline: str | None) -> str:  # type: ignore[no-untyped-def]
    """Implementation x sequence length: median ms and the speed-up over the baseline."""
    sub = df[df["mode"] == mode]
    if sub.empty:
        return ""
    Ts = sorted(sub.seq_len.unique())
    batches = {T: sorted(sub[sub.seq_len == T].batch.unique()) for T in Ts}
    head = ["implementation"] + [
        f"T={format_size(int(T))}" + (f" (B={batches[T][0]})" if len(batches[T]) == 1 else "") for T in Ts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for series, g in sub.groupby("series", sort=True):
        if g.status.isin(["unavailable", "unsupported"]).all():
            continue  # listed under 'Cases not timed'
        is_base = baseline is not None and g.impl.iloc[0] == baseline
        cells = [f"`{series}`" + (" (baseline)" if is_base else "")]
        for T in Ts:
            r = g[g.seq_len == T]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            if r.status == "ok":
                cell = _ms(r.ms_median)
                sp = _num(r.get("speedup"))
                if sp is not None and r.impl != baseline:
                    cell += f" ({sp:.3g}x)"
                cells.append(cell)
            else:
                cells.append(STATUS_MARK.get(r.status, r.status))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def speedup_table(df, mode: str, baseline: str) -> str:  # type: ignore[no-untyped-def]
    """Implementation x sequence length: only the speed-up over a second baseline."""
    sub = df[(df["mode"] == mode) & (df.impl != baseline) & df.speedup.notna()]
    if sub.empty:
        return ""
    Ts = sorted(sub.seq_len.unique())
    head = ["implementation"] + [f"T={format_size(int(T))}" for T in Ts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for series, g in sub.groupby("series", sort=True):
        cells = [f"`{series}`"]
        for T in Ts:
            r = g[g.seq_len == T]
            cells.append(f"{r.speedup.iloc[0]:.3g}x" if len(r) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: a second baseline shown where it was measured: the strongest SDPA backend on Hopper
SECOND_BASELINE = "full/sdpa-cudnn"


def detail_table(df, mode: str) -> str:  # type: ignore[no-untyped-def]
    sub = df[(df["mode"] == mode) & (df.status == "ok")].sort_values(["series", "seq_len", "batch"])
    if sub.empty:
        return ""
    head = ["implementation", "B", "T", "ms median [p20, p80]", "n", "timer / call", "TFLOP/s", "% peak", "GB/s",
            "% BW", "peak mem", "state/seq", "max abs err", "first call ms"]
    if mode == "decode":
        head.insert(4, "tokens/s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in sub.iterrows():
        def pct(x: object) -> str:
            f = _num(x)
            return "" if f is None else f"{f:.1f}"

        err = _num(r.max_abs_err)
        cells = [
            f"`{r.series}`", str(r.batch), format_size(int(r.seq_len)),
            f"{_ms(r.ms_median)} [{_ms(r.ms_p20)}, {_ms(r.ms_p80)}]", str(int(r.n_samples)),
            str(r.timer) + ("" if _missing(r.get("timed_call")) else f" / {r.timed_call}"),
            f"{r.tflops:.3g}", pct(r.pct_peak_flops), f"{r.gbps:.3g}", pct(r.pct_peak_bw),
            _bytes(r.peak_mem_bytes), _bytes(r.state_bytes_per_seq),
            "" if err is None else f"{err:.2g}", f"{r.first_call_ms:.0f}",
        ]
        if mode == "decode":  # one new token per sequence per step
            cells.insert(4, f"{r.batch / (r.ms_median * 1e-3):.4g}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def reasons_table(df) -> str:  # type: ignore[no-untyped-def]
    bad = df[df.status != "ok"]
    if bad.empty:
        return ""
    lines = ["| implementation | mode | status | sequence lengths | reason (first case) |", "|---|---|---|---|---|"]
    for (series, mode, status), g in bad.groupby(["series", "mode", "status"], sort=True):
        g = g.sort_values(["seq_len", "batch"])
        reason = g.reason.iloc[0]
        text = "" if _missing(reason) else str(reason).replace("|", "\\|").replace("\n", " ")
        Ts = ", ".join(f"{format_size(int(T))} (B={B})" for T, B in zip(g.seq_len, g.batch))
        lines.append(f"| `{series}` | {mode} | {status} | {Ts} | {text[:300]} |")
    return "\n".join(lines)


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
    out.append(f"- speed-ups are over `{baseline}` on the same shape" if baseline else "- no baseline")
    out.append("")
    for mode in MODES:
        t = mode_table(df, mode, baseline)
        if not t:
            continue
        out += [f"## {MODE_TITLE[mode]}", "", "Median milliseconds (speed-up over the baseline).", "", t, ""]
        if second is not None:
            t2 = speedup_table(second, mode, SECOND_BASELINE)
            if t2:
                out += [f"Speed-up over `{SECOND_BASELINE}` on the same shapes:", "", t2, ""]
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


# ----- figures ------------------------------------------------------------------------------------
def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7})
    return plt


def _save(fig, fig_dir: Path, name: str, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = fig_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        written.append(str(path))
    import matplotlib.pyplot as plt

    plt.close(fig)


def _size_ticks(ax, values) -> None:  # type: ignore[no-untyped-def]
    vals = sorted({int(v) for v in values})
    ax.set_xticks(vals)
    ax.set_xticklabels([format_size(v) for v in vals])
    ax.minorticks_off()


def _log_y(ax, suffix: str = "") -> None:  # type: ignore[no-untyped-def]
    """Log y axis labelled at 1, 2, 5 x 10^k (plain numbers, not powers of ten)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}{suffix}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _fail_markers(ax, g, x_col: str, color) -> None:  # type: ignore[no-untyped-def]
    """Failed cases at the top of the axes: OOM as a red x, others as a hollow marker."""
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    for _, r in g[g.status.isin(["oom", "error", "wrong", "skipped"])].iterrows():
        if r.status == "oom":
            ax.plot(r[x_col], 0.96, marker="x", color="red", markersize=8, mew=2, transform=trans, clip_on=False)
        else:
            ax.plot(r[x_col], 0.96, marker="o", mfc="none", color=color, transform=trans, clip_on=False)


def plot_latency(df, fig_dir: Path, written: list[str], baseline: str | None) -> None:  # type: ignore[no-untyped-def]
    plt = _plt()
    modes = [m for m in MODES if (df["mode"] == m).any()]
    if not modes:
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = _styles(df)
    for ax, mode in zip(axes[0], modes):
        sub = df[df["mode"] == mode]
        for series, g in sub.groupby("series", sort=True):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.status == "ok"]
            st = styles[series]
            ax.plot(ok.seq_len, ok.ms_median, marker=st["marker"], ls=st["ls"], ms=3.5, color=st["color"],
                    label=series, lw=2.2 if series == baseline else 1.4)
            if not ok.empty:
                ax.fill_between(ok.seq_len, ok.ms_p20, ok.ms_p80, color=st["color"], alpha=0.15, lw=0)
            _fail_markers(ax, g, "seq_len", st["color"])
        ax.set_xscale("log", base=2)
        _log_y(ax)
        _size_ticks(ax, sub.seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
    _legend(fig, axes[0])
    fig.suptitle(_subtitle(df), fontsize=8)
    _save(fig, fig_dir, "latency_vs_seq_len", written)


def plot_speedup(df, fig_dir: Path, written: list[str], baseline: str | None) -> None:  # type: ignore[no-untyped-def]
    if baseline is None or df["speedup"].notna().sum() == 0:
        return
    plt = _plt()
    modes = [m for m in MODES if ((df["mode"] == m) & df["speedup"].notna()).any()]
    if not modes:  # (model-level rows only: no train / prefill / decode mode)
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = _styles(df)
    for ax, mode in zip(axes[0], modes):
        sub = df[(df["mode"] == mode) & (df.impl != baseline)]
        for series, g in sub.groupby("series", sort=True):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.speedup.notna()]
            st = styles[series]
            ax.plot(ok.seq_len, ok.speedup, marker=st["marker"], ls=st["ls"], ms=3.5, color=st["color"], label=series)
            _fail_markers(ax, g, "seq_len", st["color"])
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        _log_y(ax, "x")
        _size_ticks(ax, df[df["mode"] == mode].seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel(f"speed-up over {baseline} (x)")
        ax.set_title(MODE_TITLE[mode])
    _legend(fig, axes[0])
    fig.suptitle(_subtitle(df), fontsize=8)
    _save(fig, fig_dir, "speedup_vs_seq_len", written)


def plot_chunk_size(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    sub = df[df.chunk_size.notna()]
    if sub.empty or sub.chunk_size.nunique() < 2:
        return
    # modes with at least one measured point (a log axis with nothing on it cannot be drawn); layer rows
    # also differ by kind, model rows are not a latency-vs-L series
    sub = sub[sub["level"] != "model"] if "level" in sub else sub
    modes = [m for m in MODES if ((sub["mode"] == m) & (sub.status == "ok")).any()]
    if not modes:
        return
    plt = _plt()
    sub = sub.assign(_kind=sub["kind"].fillna("") if "kind" in sub else "")
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        m = sub[sub["mode"] == mode]
        for (impl, kind, T, B), g in m.groupby(["impl", "_kind", "seq_len", "batch"], sort=True):
            g = g.sort_values("chunk_size")
            ok = g[g.status == "ok"]
            line = None
            if not ok.empty:
                (line,) = ax.plot(ok.chunk_size, ok.ms_median, marker="o", ms=3.5,
                                  label=f"{kind + ' ' if kind else ''}{impl} T={format_size(int(T))} B={B}")
            _fail_markers(ax, g, "chunk_size", line.get_color() if line else "gray")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _size_ticks(ax, m.chunk_size)
        ax.set_xlabel("chunk size L (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
        ax.legend()
    _save(fig, fig_dir, "latency_vs_chunk_size", written)


def plot_decode_batch(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    sub = df[df["mode"] == "decode"]
    if sub.empty or sub.groupby(["label", "seq_len"]).batch.nunique().max() < 2:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for (label, T), g in sub.groupby(["label", "seq_len"], sort=True):
        if g.batch.nunique() < 2:
            continue
        g = g.sort_values("batch")
        ok = g[g.status == "ok"]
        line = None
        if not ok.empty:
            (line,) = ax.plot(ok.batch, ok.ms_median, marker="o", ms=3.5, label=f"{label} T={format_size(int(T))}")
        _fail_markers(ax, g, "batch", line.get_color() if line else "gray")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch B (sequences decoded together)")
    ax.set_ylabel("decode step latency (ms)")
    ax.set_title("decode latency vs batch")
    ax.legend()
    _save(fig, fig_dir, "decode_vs_batch", written)


def plot_roofline(df, meta: dict, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    ok = df[(df.status == "ok") & df.flops.notna() & df.bytes.notna()]
    ceil = meta.get("ceilings")
    if ok.empty or not ceil:
        return
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    inten = ok.flops / ok.bytes
    lo, hi = max(inten.min() / 4, 1e-2), inten.max() * 4
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    peak, bw = ceil["matmul_tflops"], ceil["copy_gbps"]
    ax.plot(xs, np.minimum(peak, bw * xs / 1e3), color="black", lw=1.2,
            label=f"ceiling: {peak:.3g} TFLOP/s {ceil['matmul_dtype']} matmul, {bw:.3g} GB/s copy")
    markers = {"train": "o", "prefill": "s", "decode": "^"}
    colors = _colors(df)
    for (series, mode), g in ok.groupby(["series", "mode"], sort=True):
        ax.scatter(g.flops / g.bytes, g.tflops, marker=markers.get(mode, "o"), color=colors[series], s=18)
    for series in sorted(ok.series.unique()):  # legend: colour = implementation, marker = mode
        ax.scatter([], [], marker="s", color=colors[series], label=series)
    for mode, mk in markers.items():
        if (ok["mode"] == mode).any():
            ax.scatter([], [], marker=mk, color="gray", label=mode)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / minimum byte)")
    ax.set_ylabel("achieved TFLOP/s (cost model)")
    ax.set_title("roofline")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _save(fig, fig_dir, "roofline", written)


def _colors(df) -> dict:  # type: ignore[no-untyped-def]
    """One colour per implementation (tab10; tab20 beyond ten), so a family's variants are easy to follow."""
    return {s: st["color"] for s, st in _styles(df).items()}


def _styles(df) -> dict:  # type: ignore[no-untyped-def]
    """Per series: the colour of its implementation, and a line style / marker per variant of it."""
    plt = _plt()
    impl_of = dict(zip(df.series, df.impl))
    impl_list = sorted(set(impl_of.values()))
    cmap = plt.get_cmap("tab10" if len(impl_list) <= 10 else "tab20")  # no two implementations share a colour
    out, seen = {}, {}
    for s in sorted(impl_of):
        impl = impl_of[s]
        i = seen.get(impl, 0)
        seen[impl] = i + 1
        out[s] = {"color": cmap(impl_list.index(impl) % cmap.N), "ls": ["-", "--", ":", "-."][i % 4],
                  "marker": "osD^v"[i % 5]}
    return out


def _legend(fig, axes) -> None:  # type: ignore[no-untyped-def]
    handles, labels = {}, []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in handles:
                handles[l] = h
                labels.append(l)
    from matplotlib.lines import Line2D

    handles["OOM"] = Line2D([], [], marker="x", color="red", ls="none", mew=2)
    handles["error / wrong / skipped"] = Line2D([], [], marker="o", mfc="none", color="gray", ls="none")
    labels += ["OOM", "error / wrong / skipped"]
    fig.legend([handles[l] for l in labels], labels, loc="lower center", ncol=min(4, len(labels)),
               bbox_to_anchor=(0.5, -0.02 - 0.035 * math.ceil(len(labels) / 4)), frameon=False)


def _subtitle(df) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for col, name in (("heads", "H"), ("head_dim", "D")):
        vals = sorted(df[col].unique())
        parts.append(f"{name}={','.join(str(v) for v in vals)}")
    parts.append("dtype " + ",".join(short_dtype(v) for v in sorted(df.dtype.unique())))
    tr = df[df["mode"] != "decode"]
    tokens = sorted((tr.batch * tr.seq_len).unique())
    if len(tokens) == 1:
        parts.append(f"B x T = {format_size(int(tokens[0]))} tokens")
    dec = df[df["mode"] == "decode"]
    if not dec.empty and dec.batch.nunique() == 1:
        parts.append(f"decode B={int(dec.batch.iloc[0])}")
    return ", ".join(parts)


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
        for fn in (plot_latency, plot_speedup):
            fn(df, fig_dir, written, base)
        plot_chunk_size(df, fig_dir, written)
        plot_decode_batch(df, fig_dir, written)
        plot_roofline(df, meta, fig_dir, written)
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
            parts += [f"{MODE_TITLE[mode]}: median ms" + (f" (speed-up over {base})" if base else ""), t, ""]
    return "\n".join(parts)
