"""Markdown tables and matplotlib figures, always regenerated from a results file (never from live
objects).

    write_report(run_dir)   ->  run_dir/report.md and run_dir/figures/*.png|pdf

Tables: implementation x sequence length per mode, median milliseconds with the speed-up over the
baseline case that differs from the cell's case in the implementation alone (comparison_key), one
table per baseline row; noisy cells end in ~. Then the details of every timed case.
Figures: latency vs T per mode side by side (the paper's Figure 3 layout), speed-up vs T, latency vs
chunk size, decode latency vs batch, and a roofline with the run's measured ceilings. Failed cases are
drawn as markers at the top of the axes (OOM: a red x, others a triangle), not left out; noisy points
are hollow; legends sit below the panels.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

from bench import results as R
from bench.sweep import MODES, Case, format_size, short_dtype

log = logging.getLogger(__name__)

#: first of these with timed rows is the default baseline
BASELINE_PRIORITY = ("full/sdpa-flash", "full/sdpa-cudnn", "full/sdpa", "full/flash-attn", "full/fa4", "full/flex",
                     "full/sdpa-math", "full/reference")
#: Case fields that belong to one family (rat's chunk_size, swa's window, linear's decay) or name the mixer a
#: layer runs (kind): they must match between two implementations of one family, and are left out of the
#: comparison across families (full attention has no chunk size: each RAT chunk size is compared with the
#: one full-attention case of its shape)
FAMILY_FIELDS = ("chunk_size", "window", "decay", "kind")
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
    """The implementation speed-ups are measured against: ``baseline`` if given (it must have rows), else
    the one of BASELINE_PRIORITY with the most timed rows, else the implementation with the most timed rows
    (ties: the first by name). A baseline chosen here always has timed rows; None when nothing was timed."""
    ok = df[df.status == "ok"]
    if baseline:
        if baseline not in set(df.impl):
            raise ValueError(f"baseline {baseline!r} has no rows in this results file; impls: "
                             f"{', '.join(sorted(set(df.impl)))}")
        if baseline not in set(ok.impl):
            log.warning("baseline %s has no timed rows: every speed-up cell says why", baseline)
        return baseline
    counts = ok.impl.value_counts().to_dict()
    candidates = [n for n in BASELINE_PRIORITY if n in counts]
    if candidates:  # the most complete of the preferred baselines (earlier in the list wins ties)
        return max(candidates, key=lambda n: (counts[n], -candidates.index(n)))
    return min(counts, key=lambda n: (-counts[n], n)) if counts else None


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


def comparison_key(same_family: bool = True) -> list[str]:
    """The columns a row and its baseline case share: every Case field but the implementation (a field added
    to Case joins the key by itself), less FAMILY_FIELDS when the two implementations are of different
    families. Rows carry every Case field (bench.results.Row.for_case)."""
    cols = [f.name for f in dataclasses.fields(Case) if f.name != "impl"]
    return cols if same_family else [c for c in cols if c not in FAMILY_FIELDS]


def _family(impl: str) -> str:
    return str(impl).split("/", 1)[0]


def _key_of(r, cols: list[str]) -> tuple:  # type: ignore[no-untyped-def]
    """A row's values on ``cols``, missing values (None, NaN) as None and whole floats as ints (a column with
    missing values is float in pandas), so that equal cases compare equal."""
    out = []
    for c in cols:
        v = r.get(c)
        if _missing(v):
            v = None
        elif isinstance(v, float) and v.is_integer():
            v = int(v)
        out.append(v)
    return tuple(out)


def speedups(df, baseline: str | None):  # type: ignore[no-untyped-def]
    """Per row, its baseline case: the one row of ``baseline`` that differs from it in the implementation
    alone (comparison_key). Adds the columns 'speedup' (baseline median / this median; NaN unless both are
    timed), 'base_series' (the baseline case's series, None without exactly one baseline case),
    'base_status' (the baseline case's status, 'none' when there is no such case, 'ambiguous' when a
    baseline of another family has several cases of this shape, e.g. two windows) and 'base_n' (how
    many baseline cases matched)."""
    df = df.copy()
    n = len(df)
    speed, bseries, bstatus, bn = [float("nan")] * n, [None] * n, [None] * n, [0] * n
    if baseline is not None:
        base = df[df.impl == baseline]
        same, cross = comparison_key(True), comparison_key(False)
        by_same: dict[tuple, list] = {}
        by_cross: dict[tuple, list] = {}
        for _, b in base.iterrows():
            by_same.setdefault(_key_of(b, same), []).append(b)
            by_cross.setdefault(_key_of(b, cross), []).append(b)
        for i, (_, r) in enumerate(df.iterrows()):
            if _family(r.impl) == _family(baseline):
                found = by_same.get(_key_of(r, same), [])
            else:
                found = by_cross.get(_key_of(r, cross), [])
            bn[i] = len(found)
            if len(found) != 1:
                bstatus[i] = "none" if not found else "ambiguous"
                continue
            b = found[0]
            bseries[i], bstatus[i] = b.get("series", b.label), b.status
            bms, ms = _num(b.ms_median), _num(r.ms_median)
            if b.status == "ok" and r.status == "ok" and bms and ms:
                speed[i] = bms / ms
    df["speedup"] = speed
    df["base_series"] = bseries
    df["base_status"] = bstatus
    df["base_n"] = bn
    return df


def _noisy(r) -> bool:  # type: ignore[no-untyped-def]
    """A row's 'noisy' flag (set by the harness when the timing's p20-p80 spread is wide or the machine was
    busy). Rows of older results files have no such field, or None / NaN there: not noisy."""
    v = r.get("noisy") if hasattr(r, "get") else getattr(r, "noisy", None)
    return bool(v == True)  # numpy / pandas booleans too; None and NaN are not True


def _noisy_mask(df):  # type: ignore[no-untyped-def]
    """_noisy of every row, as a boolean Series."""
    return df.apply(_noisy, axis=1).astype(bool) if len(df) else df.index.to_series().astype(bool)


def _no_ratio(r) -> str:  # type: ignore[no-untyped-def]
    """What a speed-up cell says when there is no ratio: why the baseline gives no number."""
    st = r.get("base_status")
    if st == "none":
        return "— (no baseline case)"
    if st == "ambiguous":
        return f"— ({int(r.base_n)} baseline cases)"
    if st is not None and not _missing(st) and st != "ok":
        return f"— (baseline {STATUS_MARK.get(st, st)})"
    return ""


# ----- Markdown -----------------------------------------------------------------------------------
#: what a trailing ~ on a cell means (the footnote of a table with a noisy cell)
NOISY_NOTE = "~ noisy: {spread} or machine loaded; re-run with more repeats or on an idle machine"


def _noisy_note() -> str:
    from bench import timing

    spread = getattr(timing, "SPREAD_MAX", None)  # the harness's threshold (bench.timing), where it has one
    return NOISY_NOTE.format(spread=f"p20-p80 spread over {spread:.0%} of the median" if isinstance(spread, float)
                             else "p20-p80 spread wide against the median")


@dataclasses.dataclass
class ModeTable:
    """One Markdown table of a mode: its baseline series (None: rows not compared with one), the table, and
    whether a cell is marked noisy."""

    baseline_series: str | None
    text: str
    noisy: bool = False


def _natural(text: str) -> tuple:
    """Sort key that orders numbers inside names by value (L=16 before L=128, B=64 before B=512)."""
    import re

    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)))


def _series_groups(sub, baseline: str | None) -> dict[str | None, list[str]]:  # type: ignore[no-untyped-def]
    """Series of one mode by the baseline series their cases are compared with (None: with none, or with
    more than one); the baseline's own series form the groups."""
    groups: dict[str | None, list[str]] = {}
    if baseline is not None:
        for s in sorted(sub[sub.impl == baseline].series.unique(), key=_natural):
            groups[s] = []
    for series in sorted(sub.series.unique(), key=_natural):
        g = sub[sub.series == series]
        if g.status.isin(["unavailable", "unsupported"]).all():
            continue  # listed under 'Cases not timed'
        bases = {b for b in g.get("base_series", []) if isinstance(b, str)}
        key = next(iter(bases)) if len(bases) == 1 else None
        if key not in groups:
            key = None
        groups.setdefault(key, []).append(series)
    return {k: v for k, v in groups.items() if v}


def mode_tables(df, mode: str, baseline: str | None) -> list[ModeTable]:  # type: ignore[no-untyped-def]
    """Implementation x sequence length: median ms and the speed-up over the baseline, one table per
    baseline series (e.g. eager and compiled, or one per chunk size when the baseline is a RAT
    implementation), each with exactly one '(baseline)' row; series with no single baseline case last."""
    sub = df[df["mode"] == mode]
    if sub.empty:
        return []
    if "base_series" not in sub:
        sub = speedups(sub, baseline)
    groups = _series_groups(sub, baseline)
    out = []
    for base_series, names in groups.items():
        text, noisy = _one_table(sub[sub.series.isin(names)], base_series, compared=baseline is not None)
        if text:
            out.append(ModeTable(base_series, text, noisy))
    return out


def _one_table(sub, base_series: str | None, compared: bool) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    Ts = sorted(sub.seq_len.unique())
    batches = {T: sorted(sub[sub.seq_len == T].batch.unique()) for T in Ts}
    head = ["implementation"] + [
        f"T={format_size(int(T))}" + (f" (B={batches[T][0]})" if len(batches[T]) == 1 else "") for T in Ts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    any_noisy = False
    for series in sorted(sub.series.unique(), key=_natural):
        g = sub[sub.series == series]
        is_base = series == base_series
        cells = [f"`{series}`" + (" (baseline)" if is_base else "")]
        for T in Ts:
            r = g[g.seq_len == T]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            if r.status == "ok":
                cell = _ms(r.ms_median)
                if _noisy(r):
                    cell += "~"
                    any_noisy = True
                sp = _num(r.get("speedup"))
                if compared and not is_base:
                    cell += f" ({sp:.3g}x)" if sp is not None else (" " + _no_ratio(r)).rstrip()
                cells.append(cell)
            else:
                cells.append(STATUS_MARK.get(r.status, r.status))
        lines.append("| " + " | ".join(cells) + " |")
    return ("\n".join(lines) if len(lines) > 2 else ""), any_noisy


def mode_table(df, mode: str, baseline: str | None) -> str:  # type: ignore[no-untyped-def]
    """The tables of mode_tables, each under a line naming its baseline (one string)."""
    return "\n\n".join(_captioned(t, baseline) for t in mode_tables(df, mode, baseline))


def _captioned(t: ModeTable, baseline: str | None) -> str:
    if t.baseline_series is not None:
        cap = f"Median milliseconds (speed-up over `{t.baseline_series}`, the baseline row of this table)."
    elif baseline is None:
        cap = "Median milliseconds (no baseline: nothing was timed)."
    else:
        cap = (f"Median milliseconds of rows with no one `{baseline}` row to compare with (in brackets: the "
               f"speed-up over the `{baseline}` case of that cell, or why there is none).")
    out = cap + "\n\n" + t.text
    if t.noisy:
        out += "\n\n" + _noisy_note()
    return out


def speedup_table(df, mode: str, baseline: str) -> str:  # type: ignore[no-untyped-def]
    """Implementation x sequence length: only the speed-up over a second baseline (each row over its own
    baseline case, as in mode_tables; an em dash with the reason where that case has no number)."""
    sub = df[(df["mode"] == mode) & (df.impl != baseline)]
    compared = {s for s, g in sub.groupby("series") if g.speedup.notna().any()}
    sub = sub[sub.series.isin(compared)]
    if sub.empty:
        return ""
    Ts = sorted(sub.seq_len.unique())
    head = ["implementation"] + [f"T={format_size(int(T))}" for T in Ts]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for series, g in sub.groupby("series", sort=True):
        cells = [f"`{series}`"]
        for T in Ts:
            r = g[g.seq_len == T]
            if r.empty:
                cells.append("")
                continue
            r = r.iloc[0]
            sp = _num(r.speedup)
            if r.status != "ok":
                cells.append(STATUS_MARK.get(r.status, r.status))
            else:
                cells.append(f"{sp:.3g}x" if sp is not None else _no_ratio(r))
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
    from bench.provenance import header_lines  # each session's machine, revision, versions; mixes warned

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


def _log_ticks(vmin: float, vmax: float) -> list[float]:
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


def _log_y(ax, suffix: str = "") -> None:  # type: ignore[no-untyped-def]
    """Log y axis labelled in plain numbers (not powers of ten) at 1, 2, 5 x 10^k, with more labels when the
    data span less than a decade (_log_ticks), so that every panel has labelled ticks."""
    from matplotlib.ticker import FuncFormatter, Locator, NullFormatter

    class _Ticks(Locator):
        def __call__(self):  # type: ignore[no-untyped-def]
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):  # type: ignore[no-untyped-def]
            return _log_ticks(vmin, vmax)

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(_Ticks())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}{suffix}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


#: figure legend entries for the marks drawn (only those a figure has are listed)
MARKS = {"oom": "OOM", "failed": "error / wrong / skipped", "noisy": "noisy (hollow marker)",
         "base_failed": "no speed-up: baseline case failed"}


def _mark_handle(mark: str):  # type: ignore[no-untyped-def]
    from matplotlib.lines import Line2D

    return {"oom": Line2D([], [], marker="x", color="red", ls="none", mew=2),
            "failed": Line2D([], [], marker="v", color="gray", ls="none"),
            "noisy": Line2D([], [], marker="o", mfc="none", color="gray", ls="none"),
            "base_failed": Line2D([], [], marker="1", color="gray", ls="none", ms=8, mew=1.5)}[mark]


def _fail_markers(ax, g, x_col: str, color) -> set[str]:  # type: ignore[no-untyped-def]
    """Failed cases at the top of the axes: OOM as a red x, others as a triangle in the series' colour.
    Returns the marks drawn ('oom', 'failed')."""
    import matplotlib.transforms as mtransforms

    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    drawn = set()
    for _, r in g[g.status.isin(["oom", "error", "wrong", "skipped"])].iterrows():
        if r.status == "oom":
            ax.plot(r[x_col], 0.96, marker="x", color="red", markersize=8, mew=2, transform=trans, clip_on=False)
            drawn.add("oom")
        else:
            ax.plot(r[x_col], 0.96, marker="v", color=color, transform=trans, clip_on=False)
            drawn.add("failed")
    return drawn


def _points(ax, x, y, noisy, **kw) -> set[str]:  # type: ignore[no-untyped-def]
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


def plot_latency(df, fig_dir: Path, written: list[str], baseline: str | None) -> None:  # type: ignore[no-untyped-def]
    plt = _plt()
    modes = [m for m in MODES if (df["mode"] == m).any()]
    if not modes:
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = _styles(df)
    marks: set[str] = set()
    for ax, mode in zip(axes[0], modes):
        sub = df[df["mode"] == mode]
        for series, g in sub.groupby("series", sort=True):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.status == "ok"]
            st = styles[series]
            marks |= _points(ax, ok.seq_len, ok.ms_median, _noisy_mask(ok), marker=st["marker"], ls=st["ls"], ms=3.5,
                             color=st["color"], label=series, lw=2.2 if g.impl.iloc[0] == baseline else 1.4)
            if not ok.empty:
                ax.fill_between(ok.seq_len, ok.ms_p20, ok.ms_p80, color=st["color"], alpha=0.15, lw=0)
            marks |= _fail_markers(ax, g, "seq_len", st["color"])
        ax.set_xscale("log", base=2)
        _log_y(ax)
        _size_ticks(ax, sub.seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
    _legend(fig, axes[0], marks)
    fig.suptitle(_subtitle(df), fontsize=8)
    _save(fig, fig_dir, "latency_vs_seq_len", written)


def plot_speedup(df, fig_dir: Path, written: list[str], baseline: str | None) -> None:  # type: ignore[no-untyped-def]
    """Speed-up over the baseline vs T: each point over its own baseline case (speedups); where that case
    failed, a mark at the top instead of a point."""
    if baseline is None or df["speedup"].notna().sum() == 0:
        return
    plt = _plt()
    modes = [m for m in MODES if ((df["mode"] == m) & df["speedup"].notna()).any()]
    if not modes:  # (model-level rows only: no train / prefill / decode mode)
        return
    import matplotlib.transforms as mtransforms

    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    styles = _styles(df)
    marks: set[str] = set()
    for ax, mode in zip(axes[0], modes):
        sub = df[(df["mode"] == mode) & (df.impl != baseline)]
        trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
        for series, g in sub.groupby("series", sort=True):
            if g.status.isin(["unavailable", "unsupported"]).all():
                continue
            g = g.sort_values("seq_len")
            ok = g[g.speedup.notna()]
            if ok.empty and not (g.status != "ok").any():
                continue  # not compared with the baseline anywhere: no line, no legend entry
            st = styles[series]
            marks |= _points(ax, ok.seq_len, ok.speedup, _noisy_mask(ok), marker=st["marker"], ls=st["ls"], ms=3.5,
                             color=st["color"], label=series)
            marks |= _fail_markers(ax, g, "seq_len", st["color"])
            lost = g[(g.status == "ok") & g.base_status.isin([k for k in STATUS_MARK if k != "ok"])]
            for T in lost.seq_len:
                ax.plot(T, 0.88, marker="1", color=st["color"], ms=8, mew=1.5, transform=trans, clip_on=False)
                marks.add("base_failed")
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xscale("log", base=2)
        _log_y(ax, "x")
        _size_ticks(ax, df[df["mode"] == mode].seq_len)
        ax.set_xlabel("sequence length T (tokens)")
        ax.set_ylabel(f"speed-up over {baseline} (x)")
        ax.set_title(MODE_TITLE[mode])
    _legend(fig, axes[0], marks)
    fig.suptitle(_subtitle(df) + "; each case over its own baseline case (same shape, compile setting)", fontsize=8)
    _save(fig, fig_dir, "speedup_vs_seq_len", written)


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
        if not _missing(vals.get("kind")):
            parts.insert(0, str(vals["kind"]))
        for c in varying:
            if c in ("impl", "kind") or _missing(vals[c]):
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
                marks |= _points(ax, ok[x_col], ok.ms_median, _noisy_mask(ok), marker=mk, ms=3.5, ls=ls, color=color[T])
            marks |= _fail_markers(ax, g, x_col, color[T])
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
    plt = _plt()
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes), 3.6), squeeze=False)
    handles, labels, marks = _plot_lines(plt, axes[0], modes, _line_groups(sub, "chunk_size"), "chunk_size")
    for ax, mode in zip(axes[0], modes):
        ax.set_xscale("log", base=2)
        _log_y(ax)
        _size_ticks(ax, sub[sub["mode"] == mode].chunk_size)
        ax.set_xlabel("chunk size L (tokens)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(MODE_TITLE[mode])
    _legend(fig, [], marks, handles=(handles, labels), ncol=8)
    fig.suptitle(_subtitle(sub), fontsize=8)
    _save(fig, fig_dir, "latency_vs_chunk_size", written)


def plot_decode_batch(df, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    sub = df[df["mode"] == "decode"]
    if sub.empty:
        return
    lines = [x for x in _line_groups(sub, "batch") if x[3].batch.nunique() >= 2]
    if not lines:
        return
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    handles, labels, marks = _plot_lines(plt, [ax], ["decode"], lines, "batch")
    ax.set_xscale("log", base=2)
    _size_ticks(ax, [b for *_, g in lines for b in g.batch])
    _log_y(ax)
    ax.set_xlabel("batch B (sequences decoded together)")
    ax.set_ylabel("decode step latency (ms)")
    ax.set_title("decode latency vs batch")
    _legend(fig, [], marks, handles=(handles, labels), ncol=3)
    _save(fig, fig_dir, "decode_vs_batch", written)


def plot_roofline(df, meta: dict, fig_dir: Path, written: list[str]) -> None:  # type: ignore[no-untyped-def]
    ok = df[(df.status == "ok") & df.flops.notna() & df.bytes.notna()]
    ceil = meta.get("ceilings")
    if ok.empty or not ceil:
        return
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    inten = ok.flops / ok.bytes
    lo, hi = max(inten.min() / 4, 1e-2), inten.max() * 4
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    peak, bw = ceil["matmul_tflops"], ceil["copy_gbps"]
    ax.plot(xs, np.minimum(peak, bw * xs / 1e3), color="black", lw=1.2,
            label=f"ceiling: {peak:.3g} TFLOP/s {ceil['matmul_dtype']} matmul, {bw:.4g} GB/s copy")
    markers = {"train": "o", "prefill": "s", "decode": "^"}
    colors = _colors(df)
    noisy = _noisy_mask(ok)
    for (series, mode), g in ok.groupby(["series", "mode"], sort=True):
        nz = noisy[g.index]
        for hollow, part in ((False, g[~nz]), (True, g[nz])):
            if not part.empty:
                ax.scatter(part.flops / part.bytes, part.tflops, marker=markers.get(mode, "o"), s=18,
                           facecolors="none" if hollow else colors[series], edgecolors=colors[series])
    # legend: colour = implementation (its variants share it), marker = mode
    for impl in sorted(ok.impl.unique()):
        ax.scatter([], [], marker="s", color=colors[ok[ok.impl == impl].series.iloc[0]], label=impl)
    for mode, mk in markers.items():
        if (ok["mode"] == mode).any():
            ax.scatter([], [], marker=mk, color="gray", label=mode)
    if noisy.any():
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="gray", label=MARKS["noisy"])
    ax.set_xscale("log")
    _log_y(ax)
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


def _legend(fig, axes, marks: set[str] = frozenset(), ncol: int = 4,  # type: ignore[no-untyped-def]
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
            handles[text] = _mark_handle(mark)
            labels.append(text)
    if not labels:
        return
    ncol = min(ncol, len(labels))
    fig.legend([handles[lab] for lab in labels], labels, loc="upper center", ncol=ncol,
               bbox_to_anchor=(0.5, 0.0), frameon=False)


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
            parts += [f"{MODE_TITLE[mode]}:", t, ""]
    return "\n".join(parts)
