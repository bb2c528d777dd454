"""Rows, the JSON Lines results file, run metadata, loading into pandas, and resume.

A run directory holds:
    results.jsonl   one row per finished case, appended (and fsync'ed) as each case finishes
    run.json        run metadata: command, git revision, versions, device, measured ceilings, sweep spec, and
                    ``sessions``: one bench.provenance.Provenance per session (the start and every resume:
                    run id, git revision and dirty flag, versions, GPU name / UUID / driver, host), which
                    each row names in its ``run_id`` column
    report.md, figures/   regenerated from the two files above by bench.report
    profile.jsonl   (``run_bench.py profile`` only) one row per profiled case, ``row_type`` "profile": the
                    kernel / stage breakdown of one call in ``details`` (bench/profile.py); results.jsonl then
                    holds the same cases' timing rows, so every reader of results files sees timing rows only
A crash or Ctrl-C loses at most the case that was running; ``finished_keys`` lets a resumed run skip
every case that already has a row.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ratbench.bench.sweep import Case, format_family_params

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
META = "run.json"
PROFILE = "profile.jsonl"
#: a gate run's every round's rows (run_bench.py gate), beside its pooled results.jsonl
ROUNDS = "rounds.jsonl"

#: every status a row can have
STATUSES = ("ok", "oom", "error", "wrong", "unsupported", "unavailable", "skipped")


@dataclass
class Row:
    """One case's outcome. Timing columns are None unless status == 'ok'."""

    key: str
    family: str
    impl: str
    label: str
    mode: str
    level: str
    batch: int
    seq_len: int
    heads: int
    head_dim: int
    chunk_size: int | None
    window: int | None
    decay: bool | None
    dtype: str
    device: str
    status: str
    #: why: the error, the unsupported / unavailable / skipped reason, or what the accuracy check found
    reason: str | None = None
    ms_median: float | None = None
    ms_p20: float | None = None
    ms_p80: float | None = None
    n_samples: int | None = None
    samples_ms: list[float] = field(default_factory=list)
    timer: str | None = None
    timer_note: str | None = None
    #: how far the timing can be trusted (bench.timing.noise_columns, bench/README.md "Noise"):
    #: (p80 - p20) / median; the median's 95% interval width / median (None under 6 samples); adaptive
    #: repeats (CPU): whether that interval got narrower than the target before the budget ended;
    #: thread-seconds waiting for a CPU per timed second (CPU, Linux); 1-minute load average per CPU;
    #: noisy (rows of older runs lack these columns: read them as not noisy) and why
    ms_rel_spread: float | None = None
    ms_ci_rel: float | None = None
    converged: bool | None = None
    cpu_wait_frac: float | None = None
    load_avg: float | None = None
    noisy: bool | None = None
    noise_reason: str | None = None
    #: what one timed call ran: 'forward+backward', 'prefill' (also writes the decode state), 'forward', 'step'
    timed_call: str | None = None
    #: the first call (compilation, autotuning), timed apart from the samples
    first_call_ms: float | None = None
    flops: float | None = None
    bytes: float | None = None
    tflops: float | None = None
    gbps: float | None = None
    pct_peak_flops: float | None = None
    pct_peak_bw: float | None = None
    peak_mem_bytes: int | None = None
    mem_before_bytes: int | None = None
    state_bytes_per_seq: int | None = None
    fill_ms: float | None = None
    accuracy: str | None = None  # 'pass', 'wrong', 'unchecked'
    max_abs_err: float | None = None
    grad_max_abs_err: float | None = None
    accuracy_tol: float | None = None
    #: NVML, sampled during the timed loop (CUDA with nvidia-ml-py only); energy includes the L2 flushes
    power_w_mean: float | None = None
    power_w_max: float | None = None
    temp_c_max: float | None = None
    sm_clock_mhz_min: float | None = None
    sm_clock_mhz_mean: float | None = None
    throttle: str | None = None
    energy_j: float | None = None
    started_at: str | None = None
    wall_s: float | None = None
    rank: int | None = None
    #: the session that measured this row: run.json's ``sessions`` has its git revision, dirty flag, versions and
    #: machine (bench/provenance.py; rows of older runs and of torchrun ranks lack it: matched by time)
    run_id: str | None = None
    #: layer / model level (bench.levels): mixer kind (model: the mixer, e.g. rat-swa), torch.compile'd layer,
    #: model's generated tokens and depth; generated tokens per second (layer decode: batch / step time; model:
    #: batch * new tokens / (prefill + decode) time), allocated decode-cache bytes, and level-specific details
    kind: str | None = None
    compiled: bool | None = None
    new_tokens: int | None = None
    n_layers: int | None = None
    tokens_per_s: float | None = None
    cache_bytes: int | None = None
    details: dict | None = None
    #: None (and absent in older files): a timing row; "profile": a kernel breakdown (PROFILE, bench/profile.py)
    row_type: str | None = None
    #: parameters of a family registered from outside (impls.register_family) that have no column above, as
    #: in keys and labels: "sharpness=2" (bench.sweep.format_family_params); None for the built-in families
    family_params: str | None = None

    @classmethod
    def for_case(cls, case: Case, status: str, **kw: object) -> Row:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return cls(key=case.key, family=case.family, impl=case.impl, label=case.label, mode=case.mode,
                   level=case.level, batch=case.batch, seq_len=case.seq_len, heads=case.heads,
                   head_dim=case.head_dim, chunk_size=case.chunk_size, window=case.window, decay=case.decay,
                   dtype=case.dtype, device=case.device, status=status, kind=case.kind, compiled=case.compiled,
                   new_tokens=case.new_tokens, n_layers=case.n_layers,
                   family_params=format_family_params(case.family_params) or None, **kw)  # type: ignore[arg-type]

    def case(self) -> Case:
        return Case.from_dict(asdict(self))

    def to_json(self) -> str:
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}
        return json.dumps(d, separators=(",", ":"))


ROW_COLUMNS = [f.name for f in fields(Row)]


def append_row(path: str | Path, row: Row) -> None:
    """Append one row and make it durable before returning."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(row.to_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_rows(path: str | Path) -> list[dict]:
    """All rows of a results file (a directory means its results.jsonl). A truncated last line (a crash
    while writing) is skipped with a warning."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    rows = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s:%d is not a complete JSON row; skipped", path, i)
    return rows


def finished_keys(path: str | Path, retry: Collection[str] = ()) -> set[str]:
    """Keys of cases that already have a row (a resumed sweep skips them), leaving out those whose last
    row has a status in ``retry`` (``resume --retry error``: they run again, and the new row wins)."""
    p = Path(path)
    if (p.is_dir() and not (p / RESULTS).exists()) or (not p.is_dir() and not p.exists()):
        return set()
    last = {r["key"]: r.get("status") for r in read_rows(p)}
    return {k for k, status in last.items() if status not in retry}


def last_rows(path: str | Path, keys: Collection[str]) -> tuple[list[dict], int]:
    """The last row of each case in ``keys`` (a sweep's cases) found in a results file or run directory,
    in the order of ``keys``, and how many of those cases have no row yet (what ``resume`` would run)."""
    p = Path(path)
    last: dict[str, dict] = {}
    if (p / RESULTS).exists() if p.is_dir() else p.exists():
        last = {r["key"]: r for r in read_rows(p) if "key" in r}
    ks = list(dict.fromkeys(keys))
    rows = [last[k] for k in ks if k in last]
    return rows, len(ks) - len(rows)


def load(path: str | Path):  # -> pandas.DataFrame
    """A results file (or run directory) as a pandas DataFrame with every Row column; when a case was
    measured more than once (resumed runs), the last row wins."""
    import pandas as pd

    rows = read_rows(path)
    df = pd.DataFrame(rows, columns=ROW_COLUMNS if not rows else None)
    for col in ROW_COLUMNS:
        if col not in df.columns:
            df[col] = None
    if len(df):
        df = df.drop_duplicates("key", keep="last").reset_index(drop=True)
    df["noisy"] = df["noisy"].map(is_noisy).astype(bool)  # rows of older runs: not noisy
    return df[ROW_COLUMNS + [c for c in df.columns if c not in ROW_COLUMNS]]


def is_noisy(value: object) -> bool:
    """A row's ``noisy`` cell (or a row dict / Row) as a bool: missing (older runs), None or NaN is not noisy."""
    if isinstance(value, dict):
        value = value.get("noisy")
    elif isinstance(value, Row):
        value = value.noisy
    return bool(value == True)  # numpy and pandas booleans too; None and NaN are not True


def noise_summary(rows: list[Row] | list[dict], ceilings: dict | None = None) -> str | None:
    """One console warning when any timed row (or the run's measured ceilings, from run.json) is noisy: how
    many, why, and the remedy; None when every number can be trusted."""
    from ratbench.bench.timing import SPREAD_MAX

    ok = [r if isinstance(r, dict) else asdict(r) for r in rows]
    ok = [r for r in ok if r.get("status") == "ok"]
    noisy = [r for r in ok if is_noisy(r)]
    ceil_noisy = bool(ceilings) and is_noisy(ceilings)
    if not noisy and not ceil_noisy:
        return None
    reasons = [r.get("noise_reason") or "" for r in noisy]
    busy = sum("busy" in x for x in reasons)
    spread = sum("spread" in x for x in reasons)
    why = ", ".join(x for x in (f"{busy} timed while the machine was busy" if busy else "",
                                f"{spread} with a p20-p80 spread over {SPREAD_MAX:.0%} of the median" if spread else "")
                    if x)
    what = [f"{len(noisy)} of {len(ok)} timed rows are noisy ({why})"] if noisy else []
    if ceil_noisy:
        what.append("the measured ceilings are noisy (run.json: ceilings.noise_reason)")
    cpu = any(r.get("device") == "cpu" for r in (noisy or ok))
    remedy = ("run again on an idle machine (nothing else running), with --threads 1 (the CPU presets' default) "
              "and a larger --budget (e.g. --budget 2)" if cpu
              else "run again with nothing else on the GPU and its host, and a larger --budget")
    return (f"warning: {' and '.join(what)}: flagged `noisy` in results.jsonl / run.json and marked in the report; "
            f"those numbers are not measurements to rely on. Remedy: {remedy}")


# ----- run metadata -------------------------------------------------------------------------------
def write_meta(run_dir: str | Path, meta: dict) -> None:
    path = Path(run_dir) / META
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_meta(run_dir: str | Path) -> dict:
    p = Path(run_dir)
    path = p / META if p.is_dir() else p.parent / META
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))
