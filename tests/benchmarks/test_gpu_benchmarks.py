"""ratbench cases timed through pytest-benchmark (GPU only; skipped without CUDA).

Teams that already gate on pytest-benchmark can plug ratbench in:

    pytest tests/benchmarks --benchmark-only --benchmark-autosave            # store a baseline (.benchmarks/)
    pytest tests/benchmarks --benchmark-only --benchmark-compare --benchmark-compare-fail=median:5%

Each test is one harness case (bench.sweep.Case, its ``key`` in ``extra_info``), prepared by
bench.cases exactly as ``run_bench.py`` prepares it; every round is one call, with the harness's
protocol: untimed ``reset()`` and L2 flush in pytest-benchmark's ``setup``, then the call followed by
``torch.cuda.synchronize()`` (pytest-benchmark's clock is the host's, so the synchronisation makes
it time the GPU work); decode steps are replayed from a CUDA graph. The grid is small by default and
set by environment variables (comma lists, run_bench.py grammar):
    RATBENCH_BENCH_IMPLS  (default rat/triton,linear/triton,full/sdpa-cudnn)
    RATBENCH_BENCH_MODES  (default train,prefill,decode)
    RATBENCH_BENCH_SEQ    (default 4k,32k)          RATBENCH_BENCH_TOKENS (default 128k)
    RATBENCH_BENCH_ROUNDS (default 30)
The native gate (``run_bench.py gate``) is the better instrument: interleaved rounds, a confidence
interval rather than a fixed percentage on one number, device and protocol checks (bench/README.md).
"""
from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytest_benchmark")
if not torch.cuda.is_available():
    pytest.skip("GPU benchmarks need a CUDA GPU", allow_module_level=True)

import impls
from bench import cases as C
from bench import timing
from bench.sweep import SweepSpec, expand, parse_modes, parse_size, parse_sizes


def _grid() -> list:
    spec = SweepSpec(
        impls=os.environ.get("RATBENCH_BENCH_IMPLS", "rat/triton,linear/triton,full/sdpa-cudnn").split(","),
        modes=parse_modes(os.environ.get("RATBENCH_BENCH_MODES", "train,prefill,decode")),
        seq_lens=parse_sizes(os.environ.get("RATBENCH_BENCH_SEQ", "4k,32k")),
        tokens=parse_size(os.environ.get("RATBENCH_BENCH_TOKENS", "128k")), decode_batches=[64],
        chunk_sizes=[16], windows=[1024], heads=[16], head_dims=[128], dtype="bfloat16", device="cuda")
    return expand(spec)


CASES = _grid()
ROUNDS = int(os.environ.get("RATBENCH_BENCH_ROUNDS", "30"))


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_case(benchmark, case) -> None:  # type: ignore[no-untyped-def]
    cls = impls.load_class(case.impl)
    reason = cls.unavailable_reason("cuda") or C.case_problem(case)
    impl = impls.get(case.impl)
    reason = reason or impl.unsupported_reason(mode=case.mode, device="cuda", dtype=C.torch_dtype(case.dtype),
                                               head_dim=case.head_dim, seq_len=case.seq_len, batch=case.batch,
                                               heads=case.heads, **case.params)
    if reason:
        pytest.skip(reason)
    prep = C.prepare(impl, case)
    call = timing.capture_graph(prep.fn, prep.reset) if prep.graphable else prep.fn
    prep.reset()
    call()  # compile / autotune outside the rounds
    torch.cuda.synchronize()

    def setup() -> None:
        prep.reset()
        timing._L2Flusher.flush()
        torch.cuda.synchronize()

    def run() -> None:
        call()
        torch.cuda.synchronize()

    benchmark.extra_info.update(key=case.key, timed_call=prep.call, timer="host clock + cuda synchronize")
    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=2)
