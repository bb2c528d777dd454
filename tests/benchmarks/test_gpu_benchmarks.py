"""ratbench cases through pytest-benchmark, measured by the harness (GPU by default; skipped without CUDA).

Teams that already gate on pytest-benchmark can plug ratbench in:

    pytest tests/benchmarks --benchmark-json=bench.json                      # one JSON with every case
    pytest tests/benchmarks --benchmark-only --benchmark-autosave            # store a baseline (.benchmarks/)
    pytest tests/benchmarks --benchmark-only --benchmark-compare --benchmark-compare-fail=median:5%

Each test is one harness case, measured by ``bench.runner.Runner.run_case`` exactly as ``run_bench.py`` measures
it (accuracy check, first call apart, CUDA events after an L2 flush, decode steps by CUDA-graph replay; wall
clock on the CPU); pytest-benchmark's stats are those samples (harness_adapter.HarnessSamples), and the row
is in ``extra_info['row']``. The grid is run_bench.py flags in RATBENCH_BENCH_ARGS (default
harness_adapter.DEFAULT_ARGS), so ``python run_bench.py $ARGS`` measures the same cases
(``scripts/compare_benchmark_json.py`` compares the two). Without a GPU the module is skipped unless the flags
say ``--device cpu``. TRITON_INTERPRET must not be set on a GPU (tests/conftest.py sets it only when no GPU is
visible; the CPU test modules set it for themselves, so run tests/benchmarks in a pytest process of its own).
The native gate (``run_bench.py gate``) is the better instrument for a pass/fail verdict: interleaved rounds, a
confidence interval rather than a fixed percentage on one number, device and protocol checks (bench/README.md).
"""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytest_benchmark")

import harness_adapter as A

if A.device_requested() != "cpu" and not torch.cuda.is_available():
    pytest.skip("GPU benchmarks need a CUDA GPU (RATBENCH_BENCH_ARGS='... --device cpu' runs them on the CPU)",
                allow_module_level=True)
try:
    SPEC, ARGS = A.build()
except A.UsageError as exc:
    raise pytest.UsageError(str(exc)) from None

from ratbench.bench.sweep import expand

CASES = expand(SPEC)
CLOCK = A.HarnessSamples()
_HARNESS: list[A.Harness] = []


def harness() -> A.Harness:
    if not _HARNESS:
        _HARNESS.append(A.Harness(SPEC, ARGS))
    return _HARNESS[0]


@pytest.mark.benchmark(timer=CLOCK, disable_gc=False, warmup=False)
@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_case(benchmark, case) -> None:  # type: ignore[no-untyped-def]
    if case.device == "cuda" and os.environ.get("TRITON_INTERPRET") == "1":
        pytest.fail("TRITON_INTERPRET=1 on a GPU would time Triton's interpreter: run tests/benchmarks in a pytest "
                    "process of its own (the CPU test modules set it) and without TRITON_INTERPRET in the environment")
    row = harness().run(case)
    if row.status in ("skipped", "unsupported", "unavailable"):
        pytest.skip(f"{row.status}: {row.reason}")
    if row.status != "ok":
        pytest.fail(f"{case.key}: {row.status}: {row.reason}")
    benchmark.extra_info.update(key=case.key, timer=row.timer, timed_call=row.timed_call,
                                first_call_ms=row.first_call_ms, row=A.row_dict(row))
    CLOCK.load(row.samples_ms)
    benchmark.pedantic(lambda: None, rounds=len(row.samples_ms), iterations=1, warmup_rounds=0)
    assert CLOCK.left == 0, "pytest-benchmark did not take every harness sample"
