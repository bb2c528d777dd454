#!/usr/bin/env python
"""Compare the pytest-benchmark adapter's JSON with a harness run of the same cases, case by case.

    RATBENCH_BENCH_ARGS="$ARGS" python -m pytest tests/benchmarks -q --benchmark-json=bench.json
    python run_bench.py $ARGS --out harness-run --no-figures --no-progress
    python scripts/compare_benchmark_json.py bench.json harness-run --tolerance 0.05

Per case (matched by the harness key in ``extra_info['key']``): the pytest-benchmark median against the
harness row's ``ms_median``, ratio = pytest / harness, within when |ratio - 1| <= tolerance. Also checked:
that pytest-benchmark's samples are the samples of the harness row it recorded (the adapter times with the
harness's timer), the same timer per case (cuda-events, cuda-graph, wall-clock) and the same GPU.
Exit 0: every case of both within the tolerance; 1: a case outside it, or a case in only one of the two;
2: unusable input (a file missing or not of this kind, no case in common, different GPUs or timers).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROG = "compare_benchmark_json.py"


class Unusable(Exception):
    """Input that cannot be compared (exit 2)."""


@dataclass
class CaseComparison:
    key: str
    pytest_ms: float
    harness_ms: float
    pytest_timer: str | None
    harness_timer: str | None
    samples_match: bool

    @property
    def ratio(self) -> float:
        return self.pytest_ms / self.harness_ms


@dataclass
class Comparison:
    tolerance: float
    cases: list[CaseComparison] = field(default_factory=list)
    only_pytest: list[str] = field(default_factory=list)
    only_harness: list[str] = field(default_factory=list)
    pytest_gpu: str | None = None
    harness_gpu: str | None = None

    @property
    def outside(self) -> list[CaseComparison]:
        return [c for c in self.cases if abs(c.ratio - 1) > self.tolerance]

    @property
    def ok(self) -> bool:
        return not self.outside and not self.only_pytest and not self.only_harness

    def markdown(self) -> str:
        lines = [(f"pytest-benchmark vs harness, tolerance {self.tolerance:.1%}; GPU: {self.pytest_gpu or 'none'}"
                 f" / {self.harness_gpu or 'none'}"), "",
                 "| case | pytest-benchmark ms | harness ms | ratio | timer | stats = row samples | within |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        for c in self.cases:
            within = abs(c.ratio - 1) <= self.tolerance
            lines.append(f"| `{c.key}` | {c.pytest_ms:.4g} | {c.harness_ms:.4g} | {c.ratio:.3f} | {c.pytest_timer} | "
                         f"{'yes' if c.samples_match else 'NO'} | {'yes' if within else 'NO'} |")
        for k in self.only_pytest:
            lines.append(f"| `{k}` | (only in the pytest-benchmark JSON) | | | | | NO |")
        for k in self.only_harness:
            lines.append(f"| `{k}` | | (only in the harness run) | | | | NO |")
        n_out = len(self.outside) + len(self.only_pytest) + len(self.only_harness)
        lines += ["", f"{len(self.cases) - len(self.outside)} of {len(self.cases)} common cases within "
                      f"{self.tolerance:.1%}" + (f"; {n_out} problem(s)" if n_out else "")]
        return "\n".join(lines)


def load_benchmark_json(path: str | Path) -> tuple[dict[str, dict], dict]:
    """pytest-benchmark's JSON -> ({harness key: benchmark entry}, machine_info)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise Unusable(f"cannot read the pytest-benchmark JSON {path}: {exc}") from None
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise Unusable(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks')")
    entries = {}
    for b in data["benchmarks"]:
        key = (b.get("extra_info") or {}).get("key")
        if key:
            entries[key] = b
    return entries, data.get("machine_info") or {}


def load_harness(run: str | Path) -> tuple[dict[str, dict], dict]:
    """A harness run directory (or results file) -> ({key: last ok row}, run.json)."""
    from ratbench.bench.results import read_meta, read_rows

    path = Path(run)
    results = path / "results.jsonl" if path.is_dir() else path
    if not results.exists():
        raise Unusable(f"no harness results at {results}")
    rows: dict[str, dict] = {}
    for r in read_rows(results):
        rows[r["key"]] = r  # the last row of a case wins (resumed runs)
    return {k: r for k, r in rows.items() if r.get("status") == "ok"}, read_meta(path)


def compare(bench_json: str | Path, run: str | Path, tolerance: float = 0.05) -> Comparison:
    entries, machine = load_benchmark_json(bench_json)
    rows, meta = load_harness(run)
    harness_dev = meta.get("device") or {}
    comp = Comparison(tolerance, pytest_gpu=machine.get("gpu"),
                      harness_gpu=harness_dev.get("name") if harness_dev.get("device") == "cuda" else None)
    if comp.pytest_gpu != comp.harness_gpu:
        raise Unusable(f"different devices: pytest-benchmark on {comp.pytest_gpu or 'the CPU'}, the harness on "
                       f"{comp.harness_gpu or 'the CPU'}")
    common = sorted(set(entries) & set(rows))
    if not common:
        raise Unusable("no case in common (run both with the same run_bench.py flags: RATBENCH_BENCH_ARGS)")
    comp.only_pytest = sorted(set(entries) - set(rows))
    comp.only_harness = sorted(set(rows) - set(entries))
    for key in common:
        b, r = entries[key], rows[key]
        stats = b["stats"]
        rec = (b.get("extra_info") or {}).get("row") or {}
        data = stats.get("data")
        samples_match = data is not None and len(data) == len(rec.get("samples_ms") or []) and all(
            math.isclose(x * 1e3, y, rel_tol=1e-9, abs_tol=1e-9) for x, y in zip(data, rec["samples_ms"]))
        c = CaseComparison(key, stats["median"] * 1e3, r["ms_median"], b["extra_info"].get("timer"), r.get("timer"),
                           samples_match)
        if c.pytest_timer != c.harness_timer:
            raise Unusable(f"{key}: timed with {c.pytest_timer} by pytest-benchmark, {c.harness_timer} by the harness")
        comp.cases.append(c)
    return comp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("bench_json", help="pytest --benchmark-json output of tests/benchmarks, e.g. bench.json")
    ap.add_argument("harness_run", help="run_bench.py run directory (or its results.jsonl), e.g. reports/runs/x")
    ap.add_argument("--tolerance", type=float, default=0.05, help="largest |ratio - 1| (default 0.05), e.g. 0.03")
    args = ap.parse_args(argv)
    if not args.tolerance > 0:
        ap.error(f"--tolerance must be positive, got {args.tolerance}")
    try:
        comp = compare(args.bench_json, args.harness_run, args.tolerance)
    except Unusable as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print(comp.markdown())
    if not all(c.samples_match for c in comp.cases):
        print(f"{PROG}: pytest-benchmark's samples are not the harness row's for some cases", file=sys.stderr)
        return 1
    return 0 if comp.ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
