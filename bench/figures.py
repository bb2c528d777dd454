"""matplotlib figures, always drawn from a results DataFrame (bench.report_rows): the helpers every figure of
the project uses (bench.paper too): a headless pyplot, saving as PNG and PDF, log axes labelled in plain
numbers, failure and noise marks, colours per implementation, one legend below the panels; and the report's
own figures: latency vs T per mode side by side (the paper's Figure 3 layout), speed-up vs T, latency vs chunk
size, decode latency vs batch, and a roofline with the run's measured ceilings. Failed cases are drawn as
markers at the top of the axes (OOM: a red x, others a triangle), not left out; noisy points are hollow."""
from __future__ import annotations

import math
from pathlib import Path

from ratbench.bench import style
from ratbench.bench.report_rows import MODE_TITLE, comparison_key, missing, noisy_mask
from ratbench.bench.sweep import MODES, format_size, short_dtype


def pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 7})
    return plt


def save(fig, fig_dir: Path, name: str, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    for ext in ("png", "pdf"):
        path = fig_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        written.append(str(path))
    import matplotlib.pyplot as plt

    plt.close(fig)


def size_ticks(ax, values) -> None:  # type: ignore[no-untyped-def]
    vals = sorted({int(v) for v in values})
    ax.set_xticks(vals)
    ax.set_xticklabels([format_size(v) for v in vals])
    ax.minorticks_off()


def log_ticks(vmin: float, vmax: float) -> list[float]:
    """Major ticks of a log axis from vmin to vmax: m x 10^k with m in 1, 2, 5, or, when that leaves fewer than
    three in view (a range of about a decade or less), in 1, 1.5, 2, 3, 4, 5, 7, then 1 to 9.5 in halves; else
    about four evenly spaced round numbers (a range of a few percent)."""
    lo, hi = sorted((vmin, vmax))
    if not (lo > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return []
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    for subs in ((1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0), tuple(i / 2 for i in range(2, 20))):
        ticks = [m * 10.0**k for k in range(k0 - 1, k1 + 1) for m in subs]
        if sum(lo <= t <= hi for t in ticks) >= 3:
            return ticks
    from matplotlib.ticker import MaxNLocator

    return [t for t in MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if t > 0]


def log_y(ax, suffix: str = "") -> None:  # type: ignore[no-untyped-def]
    """Log y axis labelled in plain numbers (not powers of ten) at 1, 2, 5 x 10^k, with more labels when the
    data span less than a decade (log_ticks), so that every panel has labelled ticks."""
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter

    class _Ticks(Locator):
        def __call__(self):  # type: ignore[no-untyped-def]
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):  # type: ignore[no-untyped-def]
            return log_ticks(vmin, vmax)

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(_Ticks())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}{suffix}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


#: figure legend entries for the marks drawn (only those a figure has are listed); failure marks take the colour
#: of their line, the legend shows them in grey
MARKS = {"spread": "p20-p80 range (bars)", "oom": "OOM", "failed": "error / wrong / skipped", "noisy": "noisy (hollow marker)",
         "base_oom": "ran; every peer OOM (no ratio)", "base_failed": "ran; no peer timed here (no ratio)"}


def mark_handle(mark: str):  # type: ignore[no-untyped-def]
    from matplotlib.lines import Line2D

    return {"spread": Line2D([], [], marker="|", color="gray", ls="none", ms=8, mew=1),
            "oom": Line2D([], [], marker="x", color="gray", ls="none", mew=2),
            "base_oom": Line2D([], [], marker="^", mfc="none", color="gray", ls="none", ms=7, mew=1.5),
            "failed": Line2D([], [], marker="v", color="gray", ls="none"),
            "noisy": Line2D([], [], marker="o", mfc="none", color="gray", ls="none"),
            "base_failed": Line2D([], [], marker="1", color="gray", ls="none", ms=8, mew=1.5)}[mark]


def fail_markers(ax, g, x_col: str, color, slot: int = 0) -> set[str]:  # type: ignore[no-untyped-def]
    """Failed cases at the top of the axes in the series' colour: OOM as an x, other failures as a triangle;
    ``slot`` (the series' place in the panel) lowers each series' marks a little, so that two lines failing at
    one x stay two marks and each reads as its own line's. Returns the marks drawn ('oom', 'failed')."""
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    y = 0.97 - 0.035 * (slot % 8)
    drawn = set()
    for _, r in g[g.status.isin(["oom", "error", "wrong", "skipped"])].iterrows():
        if r.status == "oom":
            ax.plot(r[x_col], y, marker="x", color=color, markersize=7, mew=2, transform=trans, clip_on=False)
            drawn.add("oom")
        else:
            ax.plot(r[x_col], y, marker="v", color=color, transform=trans, clip_on=False)
            drawn.add("failed")
    return drawn


def plot_points(ax, x, y, noisy, **kw) -> set[str]:  # type: ignore[no-untyped-def]
    """A line through (x, y) with filled markers, hollow where the row is noisy. Returns {'noisy'} when one
    was drawn."""
    noisy = [bool(n) for n in noisy]
    (line,) = ax.plot(list(x), list(y), markevery=[i for i, n in enumerate(noisy) if not n], **kw)
    if any(noisy):
        xs = [v for v, n in zip(x, noisy) if n]
        ys = [v for v, n in zip(y, noisy) if n]
        ax.plot(xs, ys, ls="none", marker=line.get_marker(), ms=line.get_markersize() + 0.5, mfc="white",
                mec=line.get_color(), mew=1.2, zorder=line.get_zorder() + 0.1)
        return {"noisy"}
    return set()


def error_bars(ax, x, y, lo, hi, color) -> set[str]:  # type: ignore[no-untyped-def]
    """p20-p80 error bars around each point (the rows' ms_p20 / ms_p80, or any other low / high pair); a point
    without both gets none."""
    import numpy as np

    x, y = np.asarray(list(x), float), np.asarray(list(y), float)
    lo = np.asarray([np.nan if missing(v) else v for v in lo], float)
    hi = np.asarray([np.nan if missing(v) else v for v in hi], float)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not keep.any():
        return set()
    x, y, lo, hi = x[keep], y[keep], lo[keep], hi[keep]
    yerr = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
    ax.errorbar(x, y, yerr=yerr, fmt="none", ecolor=color, elinewidth=0.9, capsize=2.5, capthick=0.9,
                label="_p20-p80")
    return {"spread"}


def plot_latency(df, fig_dir: Path, written: list[str], baseline: str | None) -> None:  # type: ignore[no-untyped-def]
    plt = pyplot()
    modes = [m for m in MODES if (df["mode"] == m).any()]
    if not modes:
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = series_styles(df)
    marks: set[str] = set()
    for ax, mode in zip(axes[0], modes):
        sub = df[df["mode"] == mode]
        for slot, (series, g) in enumerate(sub.groupby("series", sort=True)):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.status == "ok"]
            st = styles[series]
            marks |= plot_points(ax, ok.seq_len, ok.ms_median, noisy_mask(ok), marker=st["marker"], ls=st["ls"], ms=3.5,
                             color=st["color"], label=series, lw=2.2 if g.impl.iloc[0] == baseline else 1.4)
            marks |= error_bars(ax, ok.seq_len, ok.ms_median, ok.ms_p20, ok.ms_p80, st["color"])
            marks |= fail_markers(ax, g, "seq_len", st["color"], slot)
        ax.set_xscale("log", base=2)
        log_y(ax)
        size_ticks(ax, sub.seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
    figure_legend(fig, axes[0], marks)
    fig.suptitle(subtitle(df), fontsize=8)
    save(fig, fig_dir, "latency_vs_seq_len", written)


def peer_speedups(df):  # type: ignore[no-untyped-def]
    """Per row, the speed-up over the fastest peer of its own family at the same case (every Case field but
    the implementation: same shape, family parameters, compile setting): columns 'peer_speedup' (fastest
    timed peer's median / this median; NaN unless both are timed), 'peer_best' (that peer) and 'peer_status'
    ('ok' when a peer was timed there, 'oom' when every peer case there failed and one of them OOM,
    'failed' when every peer case failed otherwise, 'none' without a peer case). Peers: implementations that
    are not the project's own (bench.style.is_ours)."""
    df = df.copy()
    cols = [c for c in comparison_key(True) if c in df]
    key = lambda r: tuple(None if missing(r.get(c)) else r.get(c) for c in cols)
    peers: dict[tuple, list] = {}
    for _, r in df[~df.impl.map(style.is_ours)].iterrows():
        peers.setdefault((style.family_of(r.impl),) + key(r), []).append(r)
    speed, best, status = [], [], []
    for _, r in df.iterrows():
        found = peers.get((style.family_of(r.impl),) + key(r), [])
        timed = [p for p in found if p.status == "ok" and not missing(p.ms_median) and p.ms_median > 0]
        if timed:
            b = min(timed, key=lambda p: p.ms_median)
            best.append(b.impl)
            status.append("ok")
            speed.append(b.ms_median / r.ms_median if r.status == "ok" and not missing(r.ms_median)
                         and r.ms_median > 0 else float("nan"))
        else:
            best.append(None)
            status.append("none" if not found else "oom" if any(p.status == "oom" for p in found) else "failed")
            speed.append(float("nan"))
    df["peer_speedup"], df["peer_best"], df["peer_status"] = speed, best, status
    return df


def plot_speedup(df, fig_dir: Path, written: list[str], baseline: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Speed-up vs T within each family, over the fastest peer of that family at the same case (peer_speedups:
    ours against the best library a user could run instead; SWA against SWA peers, linear against linear,
    never across computations). ``baseline`` (the report's cross-family baseline) is not used here: the
    report's tables carry that comparison. A family without peers in the run has no line. Where this case ran
    but no peer did, a hollow up-triangle at the top of the axes in the line's colour (no ratio exists);
    where this case failed, its failure mark."""
    if df.empty:
        return
    df = peer_speedups(df)
    fams = {style.family_of(i) for i in df.impl if not style.is_ours(i)}
    df = df[df.impl.map(style.family_of).isin(fams)]
    modes = [m for m in MODES if ((df["mode"] == m) & df["peer_speedup"].notna()).any()]
    if not modes:  # (no peer timed, or model-level rows only)
        return
    plt = pyplot()
    import matplotlib.transforms as mtransforms

    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = series_styles(df)
    marks: set[str] = set()
    for ax, mode in zip(axes[0], modes):
        sub = df[df["mode"] == mode]
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        for slot, (series, g) in enumerate(sub.groupby("series", sort=True)):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.peer_speedup.notna()]
            lost = g[(g.status == "ok") & g.peer_status.isin(["oom", "failed"])]
            if ok.empty and lost.empty:
                continue  # not compared with a peer anywhere: no line, no legend entry
            st = styles[series]
            marks |= plot_points(ax, ok.seq_len, ok.peer_speedup, noisy_mask(ok), marker=st["marker"], ls=st["ls"],
                                 ms=3.5, color=st["color"], label=series)
            marks |= fail_markers(ax, g, "seq_len", st["color"], slot)
            y = 0.97 - 0.035 * (slot % 8)
            for _, r in lost.iterrows():  # ours ran, the peers did not: kept, as a mark (no ratio to draw)
                ax.plot(r.seq_len, y, marker="^", mfc="none", mec=st["color"], ms=7, mew=1.5, transform=trans,
                        clip_on=False)
                marks.add("base_oom" if r.peer_status == "oom" else "base_failed")
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        log_y(ax, "x")
        size_ticks(ax, sub.seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel("speed-up over the family's fastest peer (x)")
        ax.set_title(MODE_TITLE[mode])
    figure_legend(fig, axes[0], marks)
    fig.suptitle(subtitle(df) + "; each case over the fastest peer of its family at the same shape and compile "
                 "setting", fontsize=8)
    save(fig, fig_dir, "speedup_vs_seq_len", written)


def _line_groups(df, x_col: str) -> list[tuple[str, int, str, object]]:
    """Rows as the lines of a plot over ``x_col`` (chunk size or batch): one line per implementation and every
    other Case field (compiled apart from eager, each T, B, H, ...). Returns (mode, T, style label, rows)
    per line: colour by T, style by the rest; the style label names the implementation and each other
    field that varies in ``df`` (the same label in every panel)."""
    cols = [c for c in ["impl"] + comparison_key(True) if c != x_col and c in df]
    style_cols = [c for c in cols if c not in ("mode", "seq_len", "batch")]
    if x_col != "batch" and len(df) and (
            df.groupby(["mode", "seq_len"] + style_cols, dropna=False).batch.nunique() > 1).any():
        style_cols.append("batch")  # more than one batch at a T: B tells lines apart
    varying = [c for c in style_cols if df[c].astype(str).nunique() > 1]
    fmt = {"batch": lambda v: f"B={int(v)}", "heads": lambda v: f"H={int(v)}", "head_dim": lambda v: f"D={int(v)}",
           "dtype": short_dtype, "chunk_size": lambda v: f"L={int(v)}", "window": lambda v: f"W={int(v)}",
           "decay": lambda v: "decay" if v else "no decay", "compiled": lambda v: "compiled" if v else "eager"}
    out = []
    for key, g in df.groupby(cols, sort=True, dropna=False):
        vals = dict(zip(cols, key))
        parts = [str(vals["impl"])]
        if not missing(vals.get("kind")):
            parts.insert(0, str(vals["kind"]))
        for c in varying:
            if c in ("impl", "kind") or missing(vals[c]):
                continue
            parts.append(fmt[c](vals[c]) if c in fmt else f"{c}={vals[c]}")
        out.append((vals["mode"], int(vals["seq_len"]), " ".join(parts), g.sort_values(x_col)))
    return out


def _plot_lines(plt, axes, modes, lines, x_col: str) -> tuple[list, list[str], set[str]]:  # type: ignore[no-untyped-def]
    """Draw _line_groups' lines (colour: T, from light to dark; line style and marker: the style label) on one
    panel per mode. Returns legend handles and labels (the T colours, then the styles) and the marks drawn."""
    from matplotlib.lines import Line2D

    Ts = sorted({T for _, T, _, _ in lines})
    cmap = plt.get_cmap("viridis")
    color = {T: cmap(0.85 * (1 - i / max(1, len(Ts) - 1))) if len(Ts) > 1 else "tab:blue" for i, T in enumerate(Ts)}
    styles = sorted({lab for _, _, lab, _ in lines}, key=lambda lab: ("compiled" in lab.split(), lab))  # eager: solid
    style = {lab: (["-", "--", ":", "-."][i % 4], "osD^v"[i % 5]) for i, lab in enumerate(styles)}
    marks: set[str] = set()
    for ax, mode in zip(axes, modes):
        for m, T, lab, g in lines:
            if m != mode:
                continue
            ok = g[g.status == "ok"]
            ls, mk = style[lab]
            if not ok.empty:
                marks |= plot_points(ax, ok[x_col], ok.ms_median, noisy_mask(ok), marker=mk, ms=3.5, ls=ls, color=color[T])
            marks |= fail_markers(ax, g, x_col, color[T])
    handles = [Line2D([], [], color=color[T], lw=2) for T in Ts]
    labels = [f"T={format_size(T)}" for T in Ts]
    if len(styles) > 1 or styles[0] not in labels:
        handles += [Line2D([], [], color="0.3", ls=style[lab][0], marker=style[lab][1], ms=3.5) for lab in styles]
        labels += styles
    return handles, labels, marks


def plot_chunk_size(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    sub = df[df.chunk_size.notna()]
    if sub.empty or sub.chunk_size.nunique() < 2:
        return
    # modes with at least one measured point (a log axis with nothing on it cannot be drawn); model rows are
    # not a latency-vs-L series
    sub = sub[sub["level"] != "model"] if "level" in sub else sub
    sub = sub[sub["mode"].isin(MODES)]
    modes = [m for m in MODES if ((sub["mode"] == m) & (sub.status == "ok")).any()]
    if not modes:
        return
    plt = pyplot()
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    handles, labels, marks = _plot_lines(plt, axes[0], modes, _line_groups(sub, "chunk_size"), "chunk_size")
    for ax, mode in zip(axes[0], modes):
        ax.set_xscale("log", base=2)
        log_y(ax)
        size_ticks(ax, sub[sub["mode"] == mode].chunk_size)
        ax.set_xlabel("chunk size L (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
    figure_legend(fig, [], marks, handles=(handles, labels), ncol=8)
    fig.suptitle(subtitle(sub), fontsize=8)
    save(fig, fig_dir, "latency_vs_chunk_size", written)


def plot_decode_batch(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    sub = df[df["mode"] == "decode"]
    if sub.empty:
        return
    lines = [x for x in _line_groups(sub, "batch") if x[3].batch.nunique() >= 2]
    if not lines:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    handles, labels, marks = _plot_lines(plt, [ax], ["decode"], lines, "batch")
    ax.set_xscale("log", base=2)
    size_ticks(ax, [b for *_, g in lines for b in g.batch])
    log_y(ax)
    ax.set_xlabel("batch B (sequences decoded together)")
    ax.set_ylabel("decode step latency (ms)")
    ax.set_title("decode latency vs batch")
    figure_legend(fig, [], marks, handles=(handles, labels), ncol=3)
    save(fig, fig_dir, "decode_vs_batch", written)


def human_rate(value: float, unit: str) -> str:
    """A rate in the unit a reader expects: GB/s above 1000 as TB/s ('4.2 TB/s'), TFLOP/s as is ('787
    TFLOP/s', '9.9 TFLOP/s'); three significant digits at most, two under ten."""
    if unit == "GB/s" and value >= 1000:
        value, unit = value / 1000, "TB/s"
    text = f"{value:.2g}" if value < 10 else f"{value:.0f}"
    if "e" in text:  # 2 significant digits can print 1e+01 for 9.96
        text = f"{value:.1f}"
    return f"{text} {unit}"


def plot_roofline(df, meta: dict, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Achieved TFLOP/s against arithmetic intensity under the run's measured ceilings (matmul TFLOP/s, copy
    bandwidth), both labelled on the lines in human units; each point labelled by its T; colour =
    implementation (bench.style), marker = mode; the legend below the axes."""
    ok = df[(df.status == "ok") & df.flops.notna() & df.bytes.notna() & df.tflops.notna()]
    ceil = meta.get("ceilings")
    if ok.empty or not ceil:
        return
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 5.6))
    inten = ok.flops / ok.bytes
    lo, hi = max(inten.min() / 4, 1e-2), inten.max() * 4
    peak, bw = ceil["matmul_tflops"], ceil["copy_gbps"]
    knee = peak * 1e3 / bw  # intensity where the two ceilings meet
    lo, hi = min(lo, knee / 4), max(hi, knee * 4)
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    ax.plot(xs, np.minimum(peak, bw * xs / 1e3), color="black", lw=1.2, label="_ceiling")
    bw_text, peak_text = human_rate(bw, "GB/s"), human_rate(peak, "TFLOP/s")
    x_bw = math.sqrt(lo * knee) if knee > lo else lo
    ax.annotate(f"copy {bw_text}", (x_bw, bw * x_bw / 1e3), fontsize=8, ha="left", va="top",
                xytext=(6, -6), textcoords="offset points")
    ax.annotate(f"{ceil.get('matmul_dtype', '')} matmul {peak_text}".strip(), (math.sqrt(knee * hi), peak),
                fontsize=8, ha="center", va="bottom", xytext=(0, 3), textcoords="offset points")
    markers = {"train": "o", "prefill": "s", "decode": "^"}
    colors = series_colors(df)
    noisy = noisy_mask(ok)
    for (series, mode), g in ok.groupby(["series", "mode"], sort=True):
        nz = noisy[g.index]
        for hollow, part in ((False, g[~nz]), (True, g[nz])):
            if not part.empty:
                ax.scatter(part.flops / part.bytes, part.tflops, marker=markers.get(mode, "o"), s=22,
                           facecolors="none" if hollow else colors[series], edgecolors=colors[series], zorder=3)
        for _, r in g.iterrows():  # each point named by its T
            ax.annotate(format_size(int(r.seq_len)), (r.flops / r.bytes, r.tflops), fontsize=5.5,
                        color=colors[series], xytext=(3, 2), textcoords="offset points")
    # legend: colour = implementation (its variants share it), marker = mode
    for impl in sorted(ok.impl.unique()):
        ax.scatter([], [], marker="s", color=colors[ok[ok.impl == impl].series.iloc[0]], label=impl)
    for mode, mk in markers.items():
        if (ok["mode"] == mode).any():
            ax.scatter([], [], marker=mk, color="gray", label=mode)
    if noisy.any():
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="gray", label=MARKS["noisy"])
    ax.set_xscale("log")
    log_y(ax)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("arithmetic intensity (FLOP / minimum byte)")
    ax.set_ylabel("achieved TFLOP/s (cost model)")
    ax.set_title(f"roofline: ceilings {peak_text} {ceil.get('matmul_dtype', '')} matmul, {bw_text} copy "
                 "(measured); points labelled by T", fontsize=9)
    figure_legend(fig, [ax], ncol=5)
    save(fig, fig_dir, "roofline", written)


def plot_tflops_bars(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    """FlashAttention-style grouped bars: per mode, one group per T, one bar per series (colour:
    bench.style; peers hatched), height the achieved TFLOP/s (cost model) with its p20-p80 range (from the
    latency's p20 / p80) as an error bar and the value on top; a case that failed at a T has its mark
    (OOM x, error triangle) in its colour at the bottom of its slot."""
    sub = df[df["mode"].isin(MODES)]
    if "level" in sub:
        sub = sub[sub["level"] != "model"]
    timed = sub[(sub.status == "ok") & sub.tflops.notna()]
    modes = [m for m in MODES if (timed["mode"] == m).any()]
    if not modes:
        return
    import matplotlib.transforms as mtransforms
    import numpy as np

    plt = pyplot()
    styles = series_styles(df)
    widths = [max(4.5, 0.9 * sub[sub["mode"] == m].seq_len.nunique() * max(1, sub[sub["mode"] == m].series.nunique()) * 0.35)
              for m in modes]
    fig, axes = plt.subplots(1, len(modes), figsize=(min(sum(widths), 22), 4.0), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    marks: set[str] = set()
    for ax, mode in zip(axes[0], modes):
        m = sub[sub["mode"] == mode]
        series = [s for s, g in m.groupby("series", sort=True)
                  if not g.status.isin(["unavailable", "unsupported"]).all()]
        series = [s for s in series if (timed[(timed["mode"] == mode)].series == s).any()
                  or m[m.series == s].status.isin(["oom", "error", "wrong", "skipped"]).any()]
        Ts = sorted(m[m.series.isin(series)].seq_len.unique())
        n = max(1, len(series))
        w = 0.8 / n
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        top = float(timed[timed["mode"] == mode].tflops.max())
        for j, s in enumerate(series):
            st = styles[s]
            labelled = False
            for i, T in enumerate(Ts):
                rs = m[(m.series == s) & (m.seq_len == T)]
                if rs.empty:
                    continue
                r = rs.iloc[-1]
                x = i - 0.4 + w * (j + 0.5)
                if r.status == "ok" and not missing(r.tflops):
                    ax.bar(x, r.tflops, width=w * 0.92, color=st["color"], edgecolor=st["color"],
                           hatch=None if st["ours"] else "////", alpha=1.0 if st["ours"] else 0.55,
                           label="_" if labelled else s)
                    labelled = True
                    hi = r.tflops
                    if not (missing(r.ms_p20) or missing(r.ms_p80) or missing(r.ms_median)):
                        lo, hi = r.tflops * r.ms_median / r.ms_p80, r.tflops * r.ms_median / r.ms_p20
                        ax.errorbar([x], [r.tflops], yerr=np.array([[max(r.tflops - lo, 0)], [max(hi - r.tflops, 0)]]),
                                    fmt="none", ecolor="black", elinewidth=0.7, capsize=1.5)
                        marks.add("spread")
                    ax.text(x, max(hi, r.tflops) + 0.01 * top, f"{r.tflops:.0f}" if r.tflops >= 10 else f"{r.tflops:.2g}",
                            ha="center", va="bottom", fontsize=5, rotation=90 if n > 3 else 0)
                elif r.status in ("oom", "error", "wrong", "skipped"):
                    oom = r.status == "oom"
                    ax.plot(x, 0.03, marker="x" if oom else "v", color=st["color"], ms=6, mew=2 if oom else 1,
                            transform=trans, clip_on=False)
                    marks.add("oom" if oom else "failed")
        ax.set_xticks(range(len(Ts)))
        ax.set_xticklabels([format_size(int(T)) for T in Ts])
        ax.set_xlim(-0.5, len(Ts) - 0.5)
        ax.set_ylim(0, top * 1.2)
        ax.grid(axis="x", visible=False)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel("TFLOP/s (cost model)")
        ax.set_title(MODE_TITLE[mode])
    figure_legend(fig, axes[0], marks, ncol=5)
    fig.suptitle(subtitle(df) + "; ours solid, peers hatched", fontsize=8)
    save(fig, fig_dir, "tflops_bars", written)


def series_colors(df) -> dict:  # type: ignore[no-untyped-def]
    """One colour per implementation, fixed across runs (bench.style.impl_color: family hue, a shade per
    implementation); the variants of one implementation share it."""
    return {s: st["color"] for s, st in series_styles(df).items()}


def series_styles(df) -> dict:  # type: ignore[no-untyped-def]
    """Per series: the fixed colour of its implementation (bench.style), a solid line for our kernels and
    references and a dashed one for peers, and a marker per variant of the implementation."""
    impl_of = dict(zip(df.series, df.impl))
    out, seen = {}, {}
    for s in sorted(impl_of):
        impl = impl_of[s]
        i = seen.get(impl, 0)
        seen[impl] = i + 1
        out[s] = {"color": style.impl_color(impl), "ls": style.impl_linestyle(impl, i),
                  "marker": style.impl_marker(impl, i), "ours": style.is_ours(impl)}
    return out


def figure_legend(fig, axes, marks: set[str] = frozenset(), ncol: int = 4,  # type: ignore[no-untyped-def]
            handles: tuple[list, list[str]] | None = None) -> None:
    """One legend below the panels (never over the data): ``handles`` (handles, labels) or every labelled
    line of ``axes`` once, then the marks drawn (MARKS: OOM, failures, noisy points), and only those."""
    given = handles
    handles, labels = {}, []
    if given is not None:
        for h, lab in zip(*given):
            handles[lab] = h
            labels.append(lab)
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in handles:
                handles[lab] = h
                labels.append(lab)
    for mark, text in MARKS.items():
        if mark in marks:
            handles[text] = mark_handle(mark)
            labels.append(text)
    if not labels:
        return
    ncol = min(ncol, len(labels))
    fig.legend([handles[lab] for lab in labels], labels, loc="upper center", ncol=ncol,
               bbox_to_anchor=(0.5, 0.0), frameon=False)


def subtitle(df) -> str:  # type: ignore[no-untyped-def]
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
