"""ratbench from Python: register your own attention, sweep it beside the peers of its family, get a
DataFrame and the usual report. The command line (run_bench.py / ``ratbench``) is built on the same pieces.

    from ratbench.bench import api

    def my_attention(q, k, v, *, causal, scale):          # (B, T, H, D) in, (B, T, H, D) out
        ...
    api.register_callable("full/mine", my_attention)
    result = api.sweep(impls="full/mine,full/sdpa-math", modes="train,prefill,decode", seq_lens="128,256",
                       batches=2, heads=2, head_dims=32, device="cpu", out="runs/mine")
    result.df            # one row per case (bench.results.Row's columns), result.report: report.md

``register_callable`` wraps a plain function through its family's declaration (full attention: forward is
the function, prefill fills a KV cache and calls it causally, a decode step calls it with one query over
the cache, non-causally: impls/full/callable.py). Any other
implementation (a class deriving from a family base, ``impls/<family>/base.py``) is registered with
``register(name, cls_or_target)``. ``sweep`` takes the fields of bench.sweep.SweepSpec (lists may be given
as run_bench.py writes them: "128,256", "4k..32k", or one value) over a preset; the run directory holds
results.jsonl, run.json and report.md exactly as a ``run`` does, so ``run_bench.py report`` / ``resume`` /
``gate`` work on it.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ratbench.bench import exit_codes
from ratbench.bench.presets import preset
from ratbench.bench.sweep import FIELD_PARSERS, SweepError, SweepSpec, parse_bools

log = logging.getLogger(__name__)

@dataclass
class SweepResult:
    """What ``sweep`` returns: the run directory, its rows as a DataFrame (one per case, the last row of
    each), report.md (None with ``report=False``) and the exit code ``run`` would give (bench.exit_codes)."""

    run_dir: Path
    df: object  # pandas.DataFrame
    report: Path | None
    exit_code: int


def register(name: str, impl: type | str) -> None:
    """Register implementation ``name`` ("<family>/<impl>"): a class deriving from the family's base
    (impls/<family>/base.py) or a "module:Class" target. A name registered before is replaced."""
    from ratbench import impls
    from ratbench.impls import registry

    if isinstance(impl, str):
        target = impl
    else:
        target = f"{impl.__module__}:{impl.__qualname__}"
    registry.unregister(name)
    impls.register(name, target)
    if not isinstance(impl, str):
        registry.bind_class(name, impl)


def register_callable(name: str, fn: Callable[..., torch.Tensor], *, description: str = "",
                      devices: tuple[str, ...] = ("cpu", "cuda")) -> None:
    """Register a plain function as implementation ``name`` ("<family>/<impl>"), wrapped by the family's
    declaration (``FamilySpec.wrap_callable``; full attention: ``fn(q, k, v, *, causal, scale) -> out`` on
    (B, T, H, D), impls/full/callable.py). It is checked against the family's float64 reference before
    it is timed, like every implementation."""
    import importlib

    from ratbench import impls

    family, _, _ = name.partition("/")
    spec = impls.family(family)
    if spec.wrap_callable is None:
        raise ValueError(f"family {family!r} declares no wrapper for plain functions (FamilySpec.wrap_callable); "
                         f"derive a class from its base and use register()")
    module, _, func = spec.wrap_callable.partition(":")
    cls = getattr(importlib.import_module(module), func)(
        fn, description or f"{getattr(fn, '__qualname__', 'callable')} (ratbench.bench.api.register_callable)", devices)
    cls.__qualname__ = cls.__name__ = f"Callable_{name.replace('/', '_').replace('-', '_')}"
    register(name, cls)


def make_spec(preset_name: str = "default", device: str = "auto", **fields: object) -> SweepSpec:
    """A preset's SweepSpec for ``device`` ("auto": cuda when visible) with ``fields`` overridden.
    Unknown field names and unreadable values raise SweepError (a ValueError)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = preset(preset_name, device)
    names = {f.name for f in dataclasses.fields(SweepSpec)}
    bad = sorted(set(fields) - names)
    if bad:
        raise SweepError(f"unknown sweep field(s) {', '.join(bad)}; fields are {', '.join(sorted(names))}")
    for key, value in fields.items():
        parse = FIELD_PARSERS.get(key)
        if parse is not None and value is not None:
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, bool) and parse is parse_bools:
                value = [value]
            elif isinstance(value, str | int) and not isinstance(value, bool):
                value = parse(str(value))  # as the command line writes it: "128,256", "4k..32k", 2
        setattr(spec, key, value)
    if "batches" in fields and fields["batches"] is not None:
        spec.tokens = None
    return spec


def sweep(spec: SweepSpec | None = None, *, out: str | Path | None = None, preset_name: str = "default",
          device: str = "auto", baseline: str | None = None, report: bool = True, figures: bool = True,
          **fields: object) -> SweepResult:
    """Run a sweep (``spec``, or ``make_spec(preset_name, device, **fields)``) into ``out`` (default:
    reports/runs/<UTC stamp>-api) and write its report. Returns the rows as a DataFrame."""
    from ratbench.bench import report as report_mod
    from ratbench.bench import runner
    from ratbench.bench.results import load

    if spec is None:
        spec = make_spec(preset_name, device, **fields)
    elif fields:
        raise ValueError("give either a SweepSpec or sweep fields, not both")
    run_dir = Path(out) if out else Path("reports") / "runs" / (time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-api")
    r, cases, _ = runner.start(spec, run_dir, command=f"ratbench.bench.api.sweep(out={str(run_dir)!r})", preset=preset_name)
    rows = r.run(cases, time_limit_s=spec.time_limit_s)
    runner.finish(run_dir, rows)
    code = exit_codes.verdict(rows, r.left)
    path = None
    if report:
        drawable = figures and any(row.status not in exit_codes.NOT_RUN_STATUSES for row in rows)
        path = report_mod.write_report(run_dir, baseline=baseline, figures=drawable)
    return SweepResult(run_dir=run_dir, df=load(run_dir), report=path, exit_code=code)
