"""The report's Markdown tables, from a DataFrame that bench.report_rows has labelled and compared:
per mode, implementation x sequence length (median ms, speed-up over the baseline case in brackets), the
speed-ups over a second baseline, the details of every timed case, and the cases not timed."""
from __future__ import annotations

import dataclasses

from bench.report_rows import STATUS_MARK, is_noisy, missing, natural, num, speedups
from bench.sweep import format_size


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


#: what a trailing ~ on a cell means (the footnote of a table with a noisy cell)
NOISY_NOTE = "~ noisy: {spread} or machine loaded; re-run with more repeats or on an idle machine"


def noisy_note() -> str:
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
            f = num(x)
            return "" if f is None else f"{f:.1f}"

        err = num(r.max_abs_err)
        cells = [
            f"`{r.series}`", str(r.batch), format_size(int(r.seq_len)),
            f"{fmt_ms(r.ms_median)} [{fmt_ms(r.ms_p20)}, {fmt_ms(r.ms_p80)}]", str(int(r.n_samples)),
            str(r.timer) + ("" if missing(r.get("timed_call")) else f" / {r.timed_call}"),
            f"{r.tflops:.3g}", pct(r.pct_peak_flops), f"{r.gbps:.3g}", pct(r.pct_peak_bw),
            fmt_bytes(r.peak_mem_bytes), fmt_bytes(r.state_bytes_per_seq),
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
        text = "" if missing(reason) else str(reason).replace("|", "\\|").replace("\n", " ")
        Ts = ", ".join(f"{format_size(int(T))} (B={B})" for T, B in zip(g.seq_len, g.batch))
        lines.append(f"| `{series}` | {mode} | {status} | {Ts} | {text[:300]} |")
    return "\n".join(lines)
