"""The rows of a report as it compares them: series labels, the baseline, each row's baseline case and its
speed-up (the comparison key), and the small value helpers and labels that tables (bench.tables) and
figures (bench.figures) share. Pure functions of a results DataFrame (bench.results.load)."""
from __future__ import annotations

import dataclasses
import logging
import math
import re

from ratbench.bench.sweep import Case, short_dtype

log = logging.getLogger(__name__)

#: first of these with timed rows is the default baseline
BASELINE_PRIORITY = ("full/sdpa-flash", "full/sdpa-cudnn", "full/sdpa", "full/flash-attn", "full/fa4", "full/flex",
                     "full/sdpa-math", "full/reference")
#: Case fields that belong to one family (rat's chunk_size, swa's window, linear's decay) or name the mixer a
#: layer runs (kind): they must match between two implementations of one family, and are left out of the
#: comparison across families (full attention has no chunk size: each RAT chunk size is compared with the
#: one full-attention case of its shape)
FAMILY_FIELDS = ("chunk_size", "window", "decay", "family_params", "kind")
STATUS_MARK = {"oom": "OOM", "error": "error", "wrong": "wrong", "unsupported": "n/a", "unavailable": "n/a",
               "skipped": "skipped"}
MODE_TITLE = {"train": "train (forward + backward)", "prefill": "prefill (forward, no grad)",
              "decode": "decode (one step at T - 1)"}
#: a second baseline shown where it was measured: the strongest SDPA backend on Hopper
SECOND_BASELINE = "full/sdpa-cudnn"
#: one case's rows whose mean SM clocks differ by more than this share are named in the report: a sweep runs a
#: case's implementations one after the other, and on a power-capped GPU the later ones run hotter, at lower clocks
#: (bench/README.md, "A/B of implementations on a power-capped GPU")
CLOCK_SPREAD = 0.02


@dataclasses.dataclass(frozen=True)
class ClockSpread:
    """One case (a shape, across implementations) whose timed rows ran at different mean SM clocks."""
    case: str
    clocks: tuple[tuple[str, float], ...]  # (implementation, mean SM clock in MHz), in the order the rows started
    spread: float  # 1 - lowest / highest


def num(x: object) -> float | None:
    """A cell as a float; None for a missing value, NaN or text."""
    if x is None:
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def missing(x: object) -> bool:
    """No value: None or NaN (a missing field of a row, as pandas loads it)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def is_noisy(r) -> bool:  # type: ignore[no-untyped-def]
    """A row's 'noisy' flag (set by the harness when the timing's p20-p80 spread is wide or the machine was
    busy). Rows of older results files have no such field, or None / NaN there: not noisy."""
    v = r.get("noisy") if hasattr(r, "get") else getattr(r, "noisy", None)
    return bool(v == True)  # numpy / pandas booleans too; None and NaN are not True


def noisy_mask(df):  # type: ignore[no-untyped-def]
    """is_noisy of every row, as a boolean Series."""
    return df.apply(is_noisy, axis=1).astype(bool) if len(df) else df.index.to_series().astype(bool)


def natural(text: str) -> tuple:
    """Sort key that orders numbers inside names by value (L=16 before L=128, B=64 before B=512)."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", str(text)))


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
        if missing(v):
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
            bms, ms = num(b.ms_median), num(r.ms_median)
            if b.status == "ok" and r.status == "ok" and bms and ms:
                speed[i] = bms / ms
    df["speedup"] = speed
    df["base_series"] = bseries
    df["base_status"] = bstatus
    df["base_n"] = bn
    return df


def clock_spreads(df, rel: float = CLOCK_SPREAD) -> list[ClockSpread]:  # type: ignore[no-untyped-def]
    """The cases whose timed rows (status ok, with NVML's mean SM clock) ran more than ``rel`` apart in clock, the
    widest first. A case is the comparison key across families (every Case field but the implementation and the
    family's own ones), so every row a speed-up may set against another is in its group."""
    if "sm_clock_mhz_mean" not in df.columns:
        return []
    key = comparison_key(False)
    groups: dict[tuple, list] = {}
    for _, r in df[df.status == "ok"].iterrows():
        if num(r.get("sm_clock_mhz_mean")):
            groups.setdefault(_key_of(r, key), []).append(r)
    out = []
    for rows in groups.values():
        rows = sorted(rows, key=lambda r: "" if missing(r.get("started_at")) else str(r.get("started_at")))
        mhz = [num(r.get("sm_clock_mhz_mean")) or 0.0 for r in rows]
        if len(rows) < 2 or 1 - min(mhz) / max(mhz) <= rel:
            continue
        r0 = rows[0]
        out.append(ClockSpread(f"{r0['mode']} T={r0['seq_len']} B={r0['batch']}",  # (Series.mode is a method)
                               tuple((str(r["impl"]), m) for r, m in zip(rows, mhz)), 1 - min(mhz) / max(mhz)))
    return sorted(out, key=lambda c: -c.spread)
