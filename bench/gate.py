"""The regression gate: re-measure a baseline's cases here, compare (bench.compare), decide.

Measurement (``measure``): exactly the baseline's ``ok`` cases, with the baseline's timing protocol
(its sweep spec: L2 flush, CUDA graphs, warm-up, accuracy check), in ``rounds`` interleaved rounds:
round r runs every case once (``samples_per_round`` timed calls each), round-robin, in the opposite
direction on odd rounds. Slow drifts of the machine (clocks, temperature, a neighbour's load) then
land on every case alike instead of on whichever case ran during them; the rounds' samples are pooled
into one row per case. Every round's row goes to ``rounds.jsonl``, the pooled rows to
``results.jsonl`` with a ``run.json`` beside it, so a gate run is itself a valid baseline.

Calibration (``calibrate``): the same code against a baseline N times (A/A). Each run is compared
with the baseline (noise plus any drift of the machine since the baseline was measured) and with the
session's first run (noise alone); a run with any regression is a false alarm. The smallest detectable slowdown of a
case follows from its A/A intervals: a uniform slowdown by a factor (1 + s) multiplies every sample,
hence the ratio and both ends of its interval, so an A/A run whose interval starts at ``lo`` flags
that slowdown exactly when lo * (1 + s) > 1 + t, i.e. s > (1 + t) / lo - 1. The detectable slowdown
reported is the smallest s flagged in at least 90% of the runs (per case; the worst case is the
gate's), for each candidate threshold t.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ratbench.bench import compare as CMP
from ratbench.bench import results as R
from ratbench.bench.sweep import Case, SweepSpec
from ratbench.bench.timing import noise_columns, quantile

log = logging.getLogger(__name__)

ROUNDS_FILE = R.ROUNDS


class GateError(RuntimeError):
    """The gate cannot run (exit 2): unreadable baseline, wrong device, nothing to measure."""


@dataclass(frozen=True)
class GateConfig:
    rounds: int = 5
    #: timed calls per case per round (default: the baseline spec's repeats spread over the rounds, >= 3)
    samples_per_round: int | None = None
    #: extra implementations, e.g. test-only or out-of-tree ones: ("name", "module:Class")
    register: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.samples_per_round is not None and self.samples_per_round < 1:
            raise ValueError(f"samples_per_round must be >= 1, got {self.samples_per_round}")


def register_impls(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> None:
    """Register each (name, "module:Class"); a name already registered is replaced (and logged): that
    is how a patched implementation is gated under the baseline's name."""
    from ratbench import impls
    from ratbench.impls import registry

    for name, target in pairs:
        if name in impls.names():
            old = registry.target_of(name)
            if old == target:
                continue
            log.warning("--register replaces %s (%s) with %s", name, old, target)
            impls.unregister(name)
        impls.register(name, target)


def parse_register(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    out = []
    for it in items or []:
        name, sep, target = it.partition("=")
        if not sep or ":" not in target or "/" not in name:
            raise ValueError(f"--register takes NAME=MODULE:CLASS, e.g. full/mine=my_pkg.attn:MyFull, got {it!r}")
        out.append((name.strip(), target.strip()))
    return tuple(out)


def baseline_cases(rows: list[dict]) -> list[Case]:
    cases = [Case.from_dict(r) for r in rows if r.get("status") == "ok"]
    if not cases:
        raise GateError("the baseline has no case with status ok: nothing to re-measure")
    return cases


def _check_device(meta: dict) -> str:
    """The baseline's device type, after checking this machine has the same device."""
    import torch

    from ratbench.bench.device import describe

    dev = (meta.get("device") or {}).get("device")
    if dev not in ("cpu", "cuda"):
        raise GateError(f"the baseline's run.json names no device type (got {dev!r})")
    if dev == "cuda" and not torch.cuda.is_available():
        raise GateError("the baseline was measured on a CUDA GPU and no CUDA GPU is visible here")
    here, there = describe(dev).name, (meta.get("device") or {}).get("name")
    if here != there:
        raise GateError(f"device mismatch: the baseline was measured on {there!r}, this machine has {here!r}; "
                        "gate against a baseline from the same device model")
    return dev


def _pool(rows: list[R.Row]) -> R.Row:
    """One row from a case's rounds: the first failure if any round failed, else every sample pooled."""
    for r in rows:
        if r.status != "ok":
            return r
    out = copy.deepcopy(rows[0])
    samples = [s for r in rows for s in r.samples_ms]
    out.samples_ms = samples
    out.n_samples = len(samples)
    out.ms_median = float(statistics.median(samples))
    out.ms_p20, out.ms_p80 = quantile(samples, 0.2), quantile(samples, 0.8)
    out.wall_s = sum(r.wall_s or 0 for r in rows)
    worst = {c: max((getattr(r, c) for r in rows if getattr(r, c) is not None), default=None)
             for c in ("cpu_wait_frac", "load_avg")}  # the pooled samples' noise columns, the busiest round's load
    for col, v in noise_columns(samples, out.device, converged=None, **worst).items():
        setattr(out, col, v)
    for col in ("tflops", "gbps", "pct_peak_flops", "pct_peak_bw"):
        v = getattr(rows[0], col)
        if v is not None and rows[0].ms_median:
            setattr(out, col, v * rows[0].ms_median / out.ms_median)
    return out


def check_baseline(baseline: str | Path, cfg: GateConfig) -> tuple[dict, list[Case], str]:
    """The baseline's run.json, its ok cases and device type, after checking that they can be re-measured
    here (raises FileNotFoundError, CMP.MismatchError or GateError); registers ``cfg.register`` first."""
    rows, meta = CMP.load_run(baseline)
    if not meta.get("spec"):
        raise GateError(f"{baseline}: run.json has no sweep spec (the timing protocol to repeat)")
    register_impls(cfg.register)
    dev = _check_device(meta)
    cases = baseline_cases(rows)
    from ratbench import impls

    unknown = sorted({c.impl for c in cases} - set(impls.names()))
    if unknown:
        raise GateError(f"the baseline has cases of implementations not registered here: {', '.join(unknown)} "
                        "(a test-only or out-of-tree one needs --register NAME=MODULE:CLASS)")
    return meta, cases, dev


def measure(baseline: str | Path, out_dir: str | Path, cfg: GateConfig, *, command: str = "",
            progress: bool = False) -> Path:
    """Re-measure the baseline's ok cases into ``out_dir`` (run.json, rounds.jsonl, results.jsonl)."""
    from ratbench.bench import device as D
    from ratbench.bench import provenance as P
    from ratbench.bench.runner import Runner, raise_recompile_limit

    meta, cases, dev = check_baseline(baseline, cfg)
    spec = SweepSpec.from_dict(meta["spec"])
    spec.time_limit_s = None
    spec.max_call_s = 1e9  # every baseline case is measured: no series skips its longer lengths
    per = cfg.samples_per_round or max(3, math.ceil(spec.repeats / cfg.rounds))
    spec.repeats = spec.min_repeats = per
    spec.case_budget_s = 0.0  # exactly ``per`` samples a round, whatever the budget
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in (R.RESULTS, ROUNDS_FILE):
        if (out / name).exists() and (out / name).stat().st_size:
            raise FileExistsError(f"{out / name} already has rows: choose another --out")
    info = D.describe(dev)
    R.write_meta(out, {
        "command": command, "preset": None, "started_at": D.now_utc(), "git": P.git_revision(),
        "device": info.to_dict(), "ceilings": meta.get("ceilings"), "spec": spec.to_dict(), "n_cases": len(cases),
        "gate": {"baseline": str(baseline), "baseline_git": meta.get("git"), "rounds": cfg.rounds,
                 "samples_per_round": per, "order": "round-robin, direction alternating per round",
                 "register": [list(p) for p in cfg.register]},
    })
    raise_recompile_limit()
    nvml = D.Nvml.open(0) if dev == "cuda" else None
    runner = Runner(out / ROUNDS_FILE, spec, ceilings=D.Ceilings(**meta["ceilings"]) if meta.get("ceilings") else None,
                    nvml=nvml)
    per_case: dict[str, list[R.Row]] = {c.key: [] for c in cases}
    t0 = time.perf_counter()
    for r in range(cfg.rounds):
        order = cases if r % 2 == 0 else cases[::-1]
        for c in order:
            if per_case[c.key] and per_case[c.key][-1].status != "ok":
                continue  # a case that failed once is not re-run
            row = runner.run_case(c)
            R.append_row(out / ROUNDS_FILE, row)
            per_case[c.key].append(row)
            if runner.device_lost:  # no later case can run in this process (bench/runner.py)
                raise GateError(f"the device was lost in {runner.device_lost}; the rows so far are in "
                                f"{out / ROUNDS_FILE}")
        if progress:
            log.info("gate: round %d/%d done (%.0f s)", r + 1, cfg.rounds, time.perf_counter() - t0)
    (out / R.RESULTS).touch()
    for c in cases:
        R.append_row(out / R.RESULTS, _pool(per_case[c.key]))
    m = R.read_meta(out)
    m["finished_at"], m["measure_s"] = D.now_utc(), round(time.perf_counter() - t0, 3)
    R.write_meta(out, m)
    return out


def gate(baseline: str | Path, out_dir: str | Path, gcfg: GateConfig, ccfg: CMP.CompareConfig, *,
         command: str = "", progress: bool = False) -> CMP.Verdict:
    """Measure, compare with the baseline, write gate.md and gate.json; the verdict's exit code is the
    command's. Unusable situations (mismatch, device missing) come back as an 'unusable' verdict."""
    out = Path(out_dir)
    try:
        measure(baseline, out, gcfg, command=command, progress=progress)
        v = CMP.compare_runs(baseline, out, ccfg)
    except (GateError, CMP.MismatchError, FileNotFoundError) as exc:
        v = CMP.unusable(str(exc), base=str(baseline), new=str(out), cfg=ccfg)
    CMP.write_outputs(v, out, stem="gate", title="Perf gate")
    return v


# ----- calibration --------------------------------------------------------------------------------
THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20)
DETECT_RATE = 0.9


def detectable_slowdown(lows: list[float], threshold: float, rate: float = DETECT_RATE) -> float:
    """Smallest s such that a (1 + s) slowdown is flagged in >= ``rate`` of the runs with these A/A
    interval lower ends (a uniform slowdown scales the interval: flagged iff lo (1 + s) > 1 + t)."""
    need = sorted((1 + threshold) / lo - 1 for lo in lows)
    k = max(0, math.ceil(rate * len(need)) - 1)
    return max(0.0, need[k])


def calibration_summary(verdicts: list[CMP.Verdict], thresholds: tuple[float, ...] = THRESHOLDS) -> dict:
    """False alarms and detectable slowdowns per threshold, from A/A verdicts (recomputed per threshold
    from the stored ratios and intervals: the interval does not depend on the threshold)."""
    per_case: dict[str, list[CMP.CaseResult]] = {}
    for v in verdicts:
        for c in v.cases:
            if c.ratio is not None and c.status not in (CMP.MISSING, CMP.NEW):
                per_case.setdefault(c.key, []).append(c)
    rows = []
    for t in thresholds:
        alarm_runs = alarm_cases = improvement_runs = 0
        for v in verdicts:
            enough = [c for c in v.cases if c.ci_low is not None
                      and c.n_base >= v.config["min_samples"] and c.n_new >= v.config["min_samples"]]
            flagged = [c for c in enough if c.ci_low > 1 + t]
            alarm_runs += bool(flagged)
            alarm_cases += len(flagged)
            improvement_runs += any(c.ci_high < 1 / (1 + t) for c in enough)
        det = {k: detectable_slowdown([c.ci_low for c in cs], t) for k, cs in per_case.items()}
        rows.append({"threshold": t, "false_alarm_runs": alarm_runs, "runs": len(verdicts),
                     "false_alarm_rate": alarm_runs / max(1, len(verdicts)),
                     "false_alarm_cases": alarm_cases, "false_improvement_runs": improvement_runs,
                     "detectable_worst": max(det.values()) if det else None,
                     "detectable_median": float(np.median(list(det.values()))) if det else None,
                     "worst_case": max(det, key=det.get) if det else None})
    spread = {k: {"ratio_min": min(c.ratio for c in cs), "ratio_max": max(c.ratio for c in cs),
                  "ci_halfwidth_median": float(np.median([(c.ci_high - c.ci_low) / 2 for c in cs]))}
              for k, cs in per_case.items()}
    ok = [r for r in rows if r["false_alarm_runs"] == 0]
    return {"runs": len(verdicts), "thresholds": rows, "cases": spread,
            "suggested_threshold": ok[0]["threshold"] if ok else None}


def _calibration_table(s: dict, title: str) -> list[str]:
    lines = [f"#### {title}: {s['runs']} comparisons", "",
             ("| threshold | false-alarm runs | false-alarm rate | runs with a false improvement | smallest "
              "slowdown caught in 90% of runs (worst case) | (median case) | worst case |"),
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in s["thresholds"]:
        dw = "-" if r["detectable_worst"] is None else f"{r['detectable_worst']:.1%}"
        dm = "-" if r["detectable_median"] is None else f"{r['detectable_median']:.1%}"
        lines.append(f"| {r['threshold']:.1%} | {r['false_alarm_runs']}/{r['runs']} | {r['false_alarm_rate']:.0%} | "
                     f"{r['false_improvement_runs']}/{r['runs']} | {dw} | {dm} | {r['worst_case'] or '-'} |")
    sug = s["suggested_threshold"]
    lines += ["", f"Smallest threshold without a false alarm: {'none' if sug is None else f'{sug:.1%}'}.", "",
              "| case | A/A ratio min | A/A ratio max | median CI half-width |", "| --- | --- | --- | --- |"]
    for k, c in sorted(s["cases"].items()):
        lines.append(f"| {k} | {c['ratio_min']:.4f} | {c['ratio_max']:.4f} | {c['ci_halfwidth_median']:.4f} |")
    return lines + [""]


def calibration_markdown(s: dict, config: str) -> str:
    lines = [f"### Gate calibration: {s['runs']} A/A gate runs", "", config, ""]
    lines += _calibration_table(s, "Against the baseline (what the gate sees: noise plus drift since the baseline)")
    if s.get("session") and s["session"]["runs"]:
        lines += _calibration_table(s["session"], "Within this session (each run against the first: noise only)")
    return "\n".join(lines) + "\n"


def calibrate(baseline: str | Path, out_dir: str | Path, n: int, gcfg: GateConfig, ccfg: CMP.CompareConfig, *,
              command: str = "", progress: bool = False) -> dict:
    """``n`` A/A gate runs against ``baseline`` (same code): calibration.md / calibration.json."""
    if n < 1:
        raise ValueError(f"calibration needs at least 1 run, got {n}")
    out = Path(out_dir)
    verdicts = []
    t0 = time.perf_counter()
    for i in range(n):
        v = gate(baseline, out / f"aa{i:02d}", gcfg, ccfg, command=command, progress=progress)
        if v.verdict == CMP.UNUSABLE_VERDICT:
            raise GateError(f"A/A run {i}: {v.reason}")
        verdicts.append(v)
        if progress:
            log.info("calibrate: run %d/%d: %s (%s)", i + 1, n, v.verdict, v.reason)
    s = calibration_summary(verdicts)
    s["seconds_per_run"] = (time.perf_counter() - t0) / n
    # the same runs against the first one: what the noise alone does, without the drift since the baseline
    s["session"] = calibration_summary([CMP.compare_runs(out / "aa00", out / f"aa{i:02d}", ccfg) for i in range(1, n)])
    s["config"] = {"gate": dataclasses.asdict(gcfg), "compare": dataclasses.asdict(ccfg), "baseline": str(baseline)}
    desc = (f"Baseline `{baseline}`; {gcfg.rounds} rounds per run; {ccfg.confidence:.0%} bootstrap interval; "
            f"{s['seconds_per_run']:.1f} s per gate run.")
    (out / "calibration.md").write_text(calibration_markdown(s, desc), encoding="utf-8")
    (out / "calibration.json").write_text(json.dumps(s, indent=2) + "\n", encoding="utf-8")
    return s
