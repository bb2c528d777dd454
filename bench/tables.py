"""The report's Markdown tables, from a DataFrame that bench.report_rows has labelled and compared:
per mode, implementation x sequence length (median ms, speed-up over the baseline case in brackets), the
speed-ups over a second baseline, the details of every timed case, and the cases not timed."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ratbench.bench.report_rows import STATUS_MARK, is_noisy, missing, natural, num, speedups
from ratbench.bench.sweep import MODES, format_size


def fmt_ms(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def fmt_bytes(x: object) -> str:
    f = num(x)
    if f is None:
        return ""
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if f >= div:
            return f"{f / div:.3g} {unit}"
    return f"{f:.0f} B"


def no_ratio(r) -> str:  # type: ignore[no-untyped-def]
    """What a speed-up cell says when there is no ratio: why the baseline gives no number."""
    st = r.get("base_status")
    if st == "none":
        return "— (no baseline case)"
    if st == "ambiguous":
        return f"— ({int(r.base_n)} baseline cases)"
    if st is not None and not missing(st) and st != "ok":
        return f"— (baseline {STATUS_MARK.get(st, st)})"
    return ""


# ----- metrics: the columns the tables show (``run_bench.py report --metrics``) --------------------------
def _pct(x: object) -> str:
    f = num(x)
    return "" if f is None else f"{f:.1f}"


def _tokens_per_s(r) -> float:  # type: ignore[no-untyped-def]
    return r.batch / (r.ms_median * 1e-3)  # decode: one new token per sequence per step


@dataclasses.dataclass(frozen=True)
class Metric:
    """One metric of a timed case: its column in the details tables (``header``, ``cell``: the Markdown
    text), the columns it exports (``columns``, from the row; ``value``: computed instead) and the modes
    it has (None: every mode)."""

    name: str
    header: str | None  # None: not a details column (speed-ups are in the per-mode tables)
    columns: tuple[str, ...]
    cell: Callable[[Any], str] | None = None
    value: Callable[[Any], object] | None = None
    modes: tuple[str, ...] | None = None


#: every metric, in the details tables' column order; the default selection is all of them
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("ms", "ms median [p20, p80]", ("ms_median", "ms_p20", "ms_p80"),
           lambda r: f"{fmt_ms(r.ms_median)} [{fmt_ms(r.ms_p20)}, {fmt_ms(r.ms_p80)}]"),
    Metric("tokens_per_s", "tokens/s", ("tokens_per_s",), lambda r: f"{_tokens_per_s(r):.4g}", _tokens_per_s,
           modes=("decode",)),
    Metric("n", "n", ("n_samples",), lambda r: str(int(r.n_samples))),
    Metric("timer", "timer / call", ("timer", "timed_call"),
           lambda r: str(r.timer) + ("" if missing(r.get("timed_call")) else f" / {r.timed_call}")),
    Metric("tflops", "TFLOP/s", ("tflops",), lambda r: f"{r.tflops:.3g}"),
    Metric("pct_peak", "% peak", ("pct_peak_flops",), lambda r: _pct(r.pct_peak_flops)),
    Metric("gbps", "GB/s", ("gbps",), lambda r: f"{r.gbps:.3g}"),
    Metric("pct_bw", "% BW", ("pct_peak_bw",), lambda r: _pct(r.pct_peak_bw)),
    Metric("peak_mem", "peak mem", ("peak_mem_bytes",), lambda r: fmt_bytes(r.peak_mem_bytes)),
    Metric("state_mem", "state/seq", ("state_bytes_per_seq",), lambda r: fmt_bytes(r.state_bytes_per_seq)),
    Metric("max_err", "max abs err", ("max_abs_err",),
           lambda r: "" if num(r.max_abs_err) is None else f"{num(r.max_abs_err):.2g}"),
    Metric("first_call_ms", "first call ms", ("first_call_ms",), lambda r: f"{r.first_call_ms:.0f}"),
    Metric("speedup", None, ("speedup", "base_series")),
)}


def select_metrics(text: str | None) -> tuple[str, ...]:
    """``--metrics ms,tflops,...`` as metric names in METRICS order (None: all). Raises ValueError, naming the
    valid metrics, for an unknown one or none."""
    if text is None:
        return tuple(METRICS)
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise ValueError(f"no metric given; valid: {', '.join(METRICS)}")
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(METRICS)}")
    return tuple(n for n in METRICS if n in names)


# ----- Markdown tables ----------------------------------------------------------------------------
#: what a trailing ~ on a cell means (the footnote of a table with a noisy cell)
NOISY_NOTE = "~ noisy: {spread} or machine loaded; re-run with more repeats or on an idle machine"


def noisy_note() -> str:
    from ratbench.bench import timing

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


def _series_groups(sub, baseline: str | None) -> dict[str | None, list[str]]:  # type: ignore[no-untyped-def]
    """Series of one mode by the baseline series their cases are compared with (None: with none, or with
    more than one); the baseline's own series form the groups."""
    groups: dict[str | None, list[str]] = {}
    if baseline is not None:
        for s in sorted(sub[sub.impl == baseline].series.unique(), key=natural):
            groups[s] = []
    for series in sorted(sub.series.unique(), key=natural):
        g = sub[sub.series == series]
        if g.status.isin(["unavailable", "unsupported"]).all():
            continue  # listed under 'Cases not timed'
        bases = {b for b in g.get("base_series", []) if isinstance(b, str)}
        key = next(iter(bases)) if len(bases) == 1 else None
        if key not in groups:
            key = None
        groups.setdefault(key, []).append(series)
    return {k: v for k, v in groups.items() if v}


def mode_tables(df, mode: str, baseline: str | None,  # type: ignore[no-untyped-def]
                speedup: bool = True) -> list[ModeTable]:
    """Implementation x sequence length: median ms and the speed-up over the baseline, one table per
    baseline series (e.g. eager and compiled, or one per chunk size when the baseline is a RAT
    implementation), each with exactly one '(baseline)' row; series with no single baseline case last.
    ``speedup=False``: the milliseconds alone."""
    sub = df[df["mode"] == mode]
    if sub.empty:
        return []
    if "base_series" not in sub:
        sub = speedups(sub, baseline)
    groups = _series_groups(sub, baseline)
    out = []
    for base_series, names in groups.items():
        text, noisy = _one_table(sub[sub.series.isin(names)], base_series, compared=baseline is not None and speedup)
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
    for series in sorted(sub.series.unique(), key=natural):
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
                cell = fmt_ms(r.ms_median)
                if is_noisy(r):
                    cell += "~"
                    any_noisy = True
                sp = num(r.get("speedup"))
                if compared and not is_base:
                    cell += f" ({sp:.3g}x)" if sp is not None else (" " + no_ratio(r)).rstrip()
                cells.append(cell)
            else:
                cells.append(STATUS_MARK.get(r.status, r.status))
        lines.append("| " + " | ".join(cells) + " |")
    return ("\n".join(lines) if len(lines) > 2 else ""), any_noisy


def mode_table(df, mode: str, baseline: str | None,  # type: ignore[no-untyped-def]
               metrics: Sequence[str] = tuple(METRICS)) -> str:
    """The per-mode tables (one string), as ``metrics`` selects: with ``ms``, mode_tables (with the speed-ups
    in brackets when ``speedup`` is selected too), each under a line naming its baseline; with ``speedup``
    alone, speedup_table over the baseline; with neither, none."""
    if "ms" in metrics:
        speedup = "speedup" in metrics
        return "\n\n".join(_captioned(t, baseline, speedup) for t in mode_tables(df, mode, baseline, speedup))
    if "speedup" in metrics and baseline is not None:
        t = speedup_table(df, mode, baseline)
        if t:
            return (f"Speed-up over `{baseline}`, each case over its `{baseline}` case (same shape, dtype, level, "
                    "compile setting):\n\n" + t)
    return ""


def _captioned(t: ModeTable, baseline: str | None, speedup: bool = True) -> str:
    if not speedup:
        cap = "Median milliseconds."
    elif t.baseline_series is not None:
        cap = f"Median milliseconds (speed-up over `{t.baseline_series}`, the baseline row of this table)."
    elif baseline is None:
        cap = "Median milliseconds (no baseline: nothing was timed)."
    else:
        cap = (f"Median milliseconds of rows with no one `{baseline}` row to compare with (in brackets: the "
               f"speed-up over the `{baseline}` case of that cell, or why there is none).")
    out = cap + "\n\n" + t.text
    if t.noisy:
        out += "\n\n" + noisy_note()
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
            sp = num(r.speedup)
            if r.status != "ok":
                cells.append(STATUS_MARK.get(r.status, r.status))
            else:
                cells.append(f"{sp:.3g}x" if sp is not None else no_ratio(r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def detail_metrics(mode: str, metrics: Sequence[str] = tuple(METRICS)) -> list[Metric]:
    """The metrics of a details table of ``mode``: those selected that are details columns in that mode."""
    return [METRICS[n] for n in metrics
            if METRICS[n].header is not None and (METRICS[n].modes is None or mode in METRICS[n].modes)]


def detail_table(df, mode: str, metrics: Sequence[str] = tuple(METRICS)) -> str:  # type: ignore[no-untyped-def]
    """Every timed case of ``mode``: implementation, B, T, then a column per selected metric."""
    sub = df[(df["mode"] == mode) & (df.status == "ok")].sort_values(["series", "seq_len", "batch"])
    if sub.empty:
        return ""
    cols = detail_metrics(mode, metrics)
    head = ["implementation", "B", "T"] + [m.header for m in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in sub.iterrows():
        cells = [f"`{r.series}`", str(r.batch), format_size(int(r.seq_len))] + [m.cell(r) for m in cols]
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
        text = "" if missing(reason) else str(reason).replace("|", "\\|").replace("\n", " ")
        Ts = ", ".join(f"{format_size(int(T))} (B={B})" for T, B in zip(g.seq_len, g.batch))
        lines.append(f"| `{series}` | {mode} | {status} | {Ts} | {text[:300]} |")
    return "\n".join(lines)


# ----- the tables as data (``run_bench.py report --format csv,json,parquet``) ----------------------------
#: the columns that say which case a row of table_frame is, before the metrics' columns
ID_COLUMNS = ("table", "mode", "implementation", "impl", "batch", "seq_len", "status")


def _plain(v: object) -> object:
    """A cell as a plain Python value: NaN -> None, numpy scalars -> int / float / bool / str."""
    if missing(v):
        return None
    return v.item() if hasattr(v, "item") else v


def table_frame(df, metrics: Sequence[str] = tuple(METRICS)):  # type: ignore[no-untyped-def]  # -> DataFrame
    """The report's tables as one long table: one row per case of a details table (``table`` =
    ``details: <mode>``, in that table's order; the per-mode tables are these rows' ``ms_median`` and
    ``speedup`` over T) and one per case of 'Cases not timed' (``table`` = ``not timed``, its ``reason``
    given). Columns: ID_COLUMNS, the selected metrics' columns (METRICS order; numbers as measured, not
    rounded; bytes in bytes; ``base_series``: the baseline case of ``speedup``), then ``reason``."""
    import pandas as pd

    cols = [c for n in metrics for c in METRICS[n].columns]
    records = []

    def record(table: str, r) -> dict:  # type: ignore[no-untyped-def]
        rec = {"table": table, "mode": r["mode"], "implementation": r.series, "impl": r.impl,
               "batch": r.batch, "seq_len": r.seq_len, "status": r.status}
        for n in metrics:
            m = METRICS[n]
            for c in m.columns:
                applies = m.modes is None or r["mode"] in m.modes
                rec[c] = (m.value(r) if m.value else r.get(c)) if applies and r.status == "ok" else None
        rec["reason"] = None if r.status == "ok" else r.get("reason")
        return {k: _plain(v) for k, v in rec.items()}

    for mode in MODES:
        sub = df[(df["mode"] == mode) & (df.status == "ok")].sort_values(["series", "seq_len", "batch"])
        records += [record(f"details: {mode}", r) for _, r in sub.iterrows()]
    bad = df[df.status != "ok"].sort_values(["series", "mode", "status", "seq_len", "batch"])
    records += [record("not timed", r) for _, r in bad.iterrows()]
    frame = pd.DataFrame.from_records(records, columns=[*ID_COLUMNS, *cols, "reason"])
    for c in ("batch", "seq_len", "n_samples", "peak_mem_bytes", "state_bytes_per_seq"):  # counts stay integers
        if c in frame and frame[c].dropna().map(lambda v: float(v).is_integer()).all():
            frame[c] = frame[c].astype("Int64")
    return frame
