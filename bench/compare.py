"""Compare two runs case by case: is NEW slower than BASE, beyond noise and beyond a threshold?

Statistic (per case, matched by the stable case ``key``):
    ratio = median(NEW samples) / median(BASE samples), with a percentile bootstrap confidence
    interval: both sample sets are resampled with replacement (``n_boot`` = 2000 times, a fixed seed
    derived from the case key, so a verdict is reproducible), the ratio of the two resampled medians
    is taken each time, and the interval is its (1 - c) / 2 and (1 + c) / 2 quantiles (c = 0.95 by
    default). The median and a bootstrap are used, not a mean and a t-interval, because GPU timings
    are skewed (a slow first sample, clock changes, the odd preempted call) and the median is what
    the reports show. A rank test (Mann-Whitney) would flag a shift of any size once the samples are
    many, but says nothing about how large it is; the interval of the ratio does both.

Rule (threshold t, default 0.05):
    regression    the whole interval lies above 1 + t            (lo > 1 + t)
    improvement   the whole interval lies below 1 / (1 + t)      (hi < 1 / (1 + t))
    inconclusive  the point ratio is beyond a bound but the interval reaches back over it, or a side
                  has fewer than ``min_samples`` samples: reported, never failing
    unchanged     everything else
A case present in BASE but not timed in NEW is ``missing`` (``broken`` when NEW has a row whose status
is error, oom or wrong; ``unusable`` when NEW could not run it: unavailable, unsupported, skipped);
a case only in NEW is ``new``. Cases that were not ``ok`` in BASE are not compared.

Refusals: two runs on different device types, different GPU or CPU models, GPU architectures, or a
different timing protocol (L2 flush, CUDA graphs, the timer or the timed call of a case) are not
comparable: ``MismatchError`` (the commands exit 2). Different software versions are allowed (a
version bump is a change a gate should judge) and listed in the summary.

Exit codes of the commands: 0 pass, 1 regression (or broken case, or, with ``fail_on_improvement``,
an improvement: the baseline is stale), 2 unusable (mismatch, or baseline cases that could not run).
"""
from __future__ import annotations

import json
import logging
import math
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ratbench.bench import results as R

log = logging.getLogger(__name__)

REGRESSION, IMPROVEMENT, UNCHANGED, INCONCLUSIVE = "regression", "improvement", "unchanged", "inconclusive"
MISSING, BROKEN, UNUSABLE, NEW = "missing", "broken", "unusable", "new"
#: row statuses that mean the code under test failed (vs. this machine cannot run the case)
FAILED_STATUSES = ("error", "oom", "wrong")

PASS, FAIL, UNUSABLE_VERDICT = "pass", "fail", "unusable"
EXIT_CODES = {PASS: 0, FAIL: 1, UNUSABLE_VERDICT: 2}


class MismatchError(ValueError):
    """The two runs were measured on different devices or with different timing protocols."""


@dataclass(frozen=True)
class CompareConfig:
    threshold: float = 0.05
    confidence: float = 0.95
    n_boot: int = 2000
    min_samples: int = 5
    seed: int = 0
    fail_on_improvement: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.threshold < 1:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if self.n_boot < 100:
            raise ValueError(f"n_boot must be >= 100, got {self.n_boot}")
        if self.min_samples < 2:
            raise ValueError(f"min_samples must be >= 2, got {self.min_samples}")


@dataclass
class CaseResult:
    key: str
    label: str
    mode: str
    batch: int | None
    seq_len: int | None
    status: str
    base_ms: float | None = None
    new_ms: float | None = None
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_base: int = 0
    n_new: int = 0
    note: str | None = None


@dataclass
class Verdict:
    verdict: str
    exit_code: int
    reason: str
    config: dict
    base: str
    new: str
    method: str
    counts: dict[str, int] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    version_notes: list[str] = field(default_factory=list)
    device: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# ----- statistics ---------------------------------------------------------------------------------
def case_seed(key: str, seed: int = 0) -> int:
    return (zlib.crc32(key.encode()) ^ seed) & 0xFFFFFFFF


def median_ratio_ci(base: list[float] | np.ndarray, new: list[float] | np.ndarray, *, confidence: float = 0.95,
                    n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """median(new) / median(base) and its percentile-bootstrap interval (both sides resampled)."""
    b = np.asarray(base, dtype=np.float64)
    n = np.asarray(new, dtype=np.float64)
    if b.size == 0 or n.size == 0:
        raise ValueError("both sample sets need at least one sample")
    if np.any(b <= 0) or np.any(n <= 0) or not (np.all(np.isfinite(b)) and np.all(np.isfinite(n))):
        raise ValueError("samples must be positive finite times")
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, b.size, (n_boot, b.size))], axis=1)
    mn = np.median(n[rng.integers(0, n.size, (n_boot, n.size))], axis=1)
    ratios = mn / mb
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(ratios, [alpha, 1 - alpha])
    return float(np.median(n) / np.median(b)), float(lo), float(hi)


def classify(ratio: float, lo: float, hi: float, threshold: float) -> str:
    up, down = 1 + threshold, 1 / (1 + threshold)
    if lo > up:
        return REGRESSION
    if hi < down:
        return IMPROVEMENT
    if ratio > up or ratio < down:
        return INCONCLUSIVE
    return UNCHANGED


def compare_case(base_row: dict, new_row: dict, cfg: CompareConfig) -> CaseResult:
    key = base_row["key"]
    res = CaseResult(key=key, label=base_row.get("label") or base_row.get("impl") or key, mode=base_row.get("mode", ""),
                     batch=base_row.get("batch"), seq_len=base_row.get("seq_len"), status=UNCHANGED)
    bs, ns = base_row.get("samples_ms") or [], new_row.get("samples_ms") or []
    res.n_base, res.n_new = len(bs), len(ns)
    if not bs or not ns:
        res.status, res.note = INCONCLUSIVE, "no stored samples"
        return res
    res.base_ms, res.new_ms = float(np.median(bs)), float(np.median(ns))
    ratio, lo, hi = median_ratio_ci(bs, ns, confidence=cfg.confidence, n_boot=cfg.n_boot,
                                    seed=case_seed(key, cfg.seed))
    res.ratio, res.ci_low, res.ci_high = ratio, lo, hi
    if min(len(bs), len(ns)) < cfg.min_samples:
        res.status = INCONCLUSIVE
        res.note = f"fewer than {cfg.min_samples} samples (base {len(bs)}, new {len(ns)})"
        return res
    res.status = classify(ratio, lo, hi, cfg.threshold)
    if res.status == INCONCLUSIVE:
        res.note = "the interval reaches back over the threshold: more samples or rounds would decide"
    return res


# ----- loading and compatibility ------------------------------------------------------------------
def load_run(path: str | Path) -> tuple[list[dict], dict]:
    """Rows (last row per key wins, as in ``results.load``) and run.json of a run dir or results file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_dir() and not (p / R.RESULTS).exists():
        raise FileNotFoundError(f"{p} has no {R.RESULTS}")
    rows: dict[str, dict] = {}
    for r in R.read_rows(p):
        rows[r["key"]] = r
    meta = R.read_meta(p)
    if not meta:
        raise MismatchError(f"{p}: no run.json next to the results: the device and timing protocol cannot be checked")
    return list(rows.values()), meta


def _protocol(meta: dict) -> dict:
    spec = meta.get("spec") or {}
    dev = meta.get("device") or {}
    return {"device type": dev.get("device"), "device name": dev.get("name"),
            "GPU architecture": dev.get("capability"),
            "L2 flush": spec.get("flush_l2") if dev.get("device") == "cuda" else None,
            "CUDA graphs": spec.get("cuda_graphs") if dev.get("device") == "cuda" else None}


def check_compatible(base_meta: dict, new_meta: dict, base_rows: list[dict] | None = None,
                     new_rows: list[dict] | None = None) -> list[str]:
    """Raise MismatchError when the runs are not comparable; return notes on version differences."""
    pb, pn = _protocol(base_meta), _protocol(new_meta)
    bad = [f"{k}: base {pb[k]!r} vs new {pn[k]!r}" for k in pb if pb[k] != pn[k]]
    if base_rows is not None and new_rows is not None:
        nb = {r["key"]: r for r in new_rows}
        for r in base_rows:
            o = nb.get(r["key"])
            if r.get("status") != "ok" or o is None or o.get("status") != "ok":
                continue
            for col in ("timer", "timed_call"):
                if r.get(col) != o.get(col):
                    bad.append(f"{r['key']}: {col} base {r.get(col)!r} vs new {o.get(col)!r}")
    if bad:
        raise MismatchError("the runs are not comparable (" + "; ".join(bad[:10])
                            + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
                            + "): measure the baseline on the same kind of device with the same protocol")
    notes = []
    db, dn = base_meta.get("device") or {}, new_meta.get("device") or {}
    for k in ("torch", "triton", "cuda", "cudnn", "python"):
        if db.get(k) != dn.get(k):
            notes.append(f"{k} {db.get(k)} -> {dn.get(k)}")
    drv_b, drv_n = (db.get("nvml") or {}).get("driver"), (dn.get("nvml") or {}).get("driver")
    if drv_b != drv_n:
        notes.append(f"driver {drv_b} -> {drv_n}")
    return notes


# ----- the comparison -----------------------------------------------------------------------------
def compare_rows(base_rows: list[dict], new_rows: list[dict], cfg: CompareConfig) -> list[CaseResult]:
    new_by = {r["key"]: r for r in new_rows}
    out: list[CaseResult] = []
    base_ok = [r for r in base_rows if r.get("status") == "ok"]
    for b in base_ok:
        n = new_by.get(b["key"])
        if n is None:
            out.append(CaseResult(b["key"], b.get("label") or b["key"], b.get("mode", ""), b.get("batch"),
                                  b.get("seq_len"), MISSING, base_ms=b.get("ms_median"), n_base=len(b.get("samples_ms") or [])))
            continue
        if n.get("status") != "ok":
            st = BROKEN if n.get("status") in FAILED_STATUSES else UNUSABLE
            out.append(CaseResult(b["key"], b.get("label") or b["key"], b.get("mode", ""), b.get("batch"),
                                  b.get("seq_len"), st, base_ms=b.get("ms_median"),
                                  note=f"new status {n.get('status')}: {(n.get('reason') or '')[:300]}"))
            continue
        out.append(compare_case(b, n, cfg))
    base_keys = {r["key"] for r in base_rows}
    for n in new_rows:
        if n["key"] not in base_keys and n.get("status") == "ok":
            out.append(CaseResult(n["key"], n.get("label") or n["key"], n.get("mode", ""), n.get("batch"),
                                  n.get("seq_len"), NEW, new_ms=n.get("ms_median"), n_new=len(n.get("samples_ms") or [])))
    return out


METHOD = ("ratio of medians NEW/BASE; {c:.0%} percentile-bootstrap interval ({b} resamples of both sides, "
          "seed from the case key); regression when the whole interval is above 1 + {t:g}")


def decide(cases: list[CaseResult], cfg: CompareConfig) -> tuple[str, str]:
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.status] = counts.get(c.status, 0) + 1
    if counts.get(UNUSABLE):
        return UNUSABLE_VERDICT, f"{counts[UNUSABLE]} baseline case(s) could not run here"
    if not any(c.status not in (MISSING, NEW) for c in cases):
        return UNUSABLE_VERDICT, "no case was measured in both runs"
    why = []
    if counts.get(REGRESSION):
        why.append(f"{counts[REGRESSION]} regression(s)")
    if counts.get(BROKEN):
        why.append(f"{counts[BROKEN]} case(s) broken (error, oom or wrong result)")
    if cfg.fail_on_improvement and counts.get(IMPROVEMENT):
        why.append(f"{counts[IMPROVEMENT]} improvement(s) beyond the threshold: refresh the baseline")
    if why:
        return FAIL, "; ".join(why)
    return PASS, "no case slower beyond the threshold"


def compare_runs(base: str | Path, new: str | Path, cfg: CompareConfig | None = None) -> Verdict:
    """Load, check compatibility (MismatchError), compare every case and decide."""
    cfg = cfg or CompareConfig()
    base_rows, base_meta = load_run(base)
    new_rows, new_meta = load_run(new)
    notes = check_compatible(base_meta, new_meta, base_rows, new_rows)
    return verdict_for(base_rows, new_rows, cfg, base=str(base), new=str(new), notes=notes,
                       device=(new_meta.get("device") or {}).get("name"))


def verdict_for(base_rows: list[dict], new_rows: list[dict], cfg: CompareConfig, *, base: str, new: str,
                notes: list[str] | None = None, device: str | None = None) -> Verdict:
    cases = compare_rows(base_rows, new_rows, cfg)
    order = {REGRESSION: 0, BROKEN: 1, UNUSABLE: 2, IMPROVEMENT: 3, INCONCLUSIVE: 4, MISSING: 5, NEW: 6, UNCHANGED: 7}
    cases.sort(key=lambda c: (order[c.status], -(c.ratio or 0) if c.status != IMPROVEMENT else (c.ratio or 0), c.key))
    verdict, reason = decide(cases, cfg)
    counts: dict[str, int] = {}
    for c in cases:
        counts[c.status] = counts.get(c.status, 0) + 1
    return Verdict(verdict=verdict, exit_code=EXIT_CODES[verdict], reason=reason, config=asdict(cfg), base=base,
                   new=new, method=METHOD.format(c=cfg.confidence, b=cfg.n_boot, t=cfg.threshold), counts=counts,
                   cases=cases, version_notes=notes or [], device=device)


# ----- output -------------------------------------------------------------------------------------
def _fmt_ms(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.4g}"


def _fmt_ratio(c: CaseResult) -> str:
    if c.ratio is None:
        return "-"
    return f"{c.ratio:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]"


def _case_line(c: CaseResult) -> str:
    change = "-" if c.ratio is None else f"{(c.ratio - 1) * 100:+.1f}%"
    return (f"| {c.status} | {c.label} | {c.mode} | {c.batch} | {c.seq_len} | {_fmt_ms(c.base_ms)} | "
            f"{_fmt_ms(c.new_ms)} | {change} | {_fmt_ratio(c)} | {c.n_base}/{c.n_new} | {c.note or ''} |")


HEADER = ("| status | case | mode | B | T | base ms | new ms | change | ratio [CI] | samples b/n | note |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def to_markdown(v: Verdict, title: str = "Perf gate") -> str:
    cfg = v.config
    lines = [f"### {title}: {v.verdict.upper()}", "",
             f"{v.reason}. " + ", ".join(f"{n} {k}" for k, n in sorted(v.counts.items())) + ".", "",
             f"Threshold {cfg['threshold']:.0%}; {v.method}."]
    if v.device:
        lines.append(f"Device: {v.device}.")
    if v.version_notes:
        lines.append("Versions differ: " + ", ".join(v.version_notes) + ".")
    lines += ["", f"Base: `{v.base}`  New: `{v.new}`", ""]
    flagged = [c for c in v.cases if c.status not in (UNCHANGED,)]
    if flagged:
        lines += [HEADER] + [_case_line(c) for c in flagged] + [""]
    rest = [c for c in v.cases if c.status == UNCHANGED]
    if rest:
        lines += [f"<details><summary>{len(rest)} unchanged case(s)</summary>", "", HEADER]
        lines += [_case_line(c) for c in rest] + ["", "</details>", ""]
    return "\n".join(lines)


def write_outputs(v: Verdict, out_dir: str | Path, stem: str = "compare", title: str = "Perf gate"
                  ) -> tuple[Path, Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"{stem}.md", out / f"{stem}.json"
    md.write_text(to_markdown(v, title) + "\n", encoding="utf-8")
    js.write_text(json.dumps(v.to_dict(), indent=2) + "\n", encoding="utf-8")
    return md, js


def unusable(reason: str, *, base: str, new: str, cfg: CompareConfig) -> Verdict:
    return Verdict(verdict=UNUSABLE_VERDICT, exit_code=2, reason=reason, config=asdict(cfg), base=base, new=new,
                   method=METHOD.format(c=cfg.confidence, b=cfg.n_boot, t=cfg.threshold))
