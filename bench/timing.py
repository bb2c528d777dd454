"""Timing: CUDA events (or CUDA-graph replay) on the GPU, a wall clock on the CPU.

Protocol for one case (``measure``):
1. the first call is timed on its own (wall clock, synchronised): it carries compilation and
   autotuning, which are reported separately (``first_call_ms``) and never mixed into the samples;
2. ``warmup`` more calls, whose mean sets the number of timed calls: as many as fit in the case's
   time budget, clamped to [min_repeats, repeats];
3. on CUDA, decode steps are captured once in a CUDA graph and replayed (a step is microseconds; the
   CPU launch cost would otherwise be what is measured); when capture fails the eager step is timed
   and the row says why;
4. each timed call: (untimed) ``reset()`` and, on CUDA, an L2 flush by overwriting a 256 MiB buffer;
   then a CUDA event pair around the call alone. Samples are per call, in milliseconds.
Statistics: median, 20th and 80th percentiles, the number of samples.
"""
from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

log = logging.getLogger(__name__)

L2_FLUSH_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class TimingPolicy:
    repeats: int = 50
    min_repeats: int = 3
    warmup: int = 1
    budget_s: float = 1.0
    flush_l2: bool = True
    cuda_graph: bool = True


@dataclass
class Timing:
    samples_ms: list[float]
    timer: str  # 'cuda-events', 'cuda-graph', 'wall-clock'
    first_call_ms: float | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.samples_ms)

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples_ms))

    @property
    def p20(self) -> float:
        return quantile(self.samples_ms, 0.2)

    @property
    def p80(self) -> float:
        return quantile(self.samples_ms, 0.8)


def quantile(xs: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), without numpy."""
    s = sorted(xs)
    if not s:
        raise ValueError("no samples")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


@contextlib.contextmanager
def nvtx_range(name: str, device: str) -> Iterator[None]:
    """An NVTX push/pop range named ``name`` on CUDA (Nsight Systems and Compute show each case by its key);
    nothing on other devices."""
    if device != "cuda":
        yield
        return
    torch.cuda.nvtx.range_push(name)
    try:
        yield
    finally:
        torch.cuda.nvtx.range_pop()


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def first_call(fn: Callable[[], object], reset: Callable[[], None], device: str) -> float:
    """Wall-clock milliseconds of one synchronised call (the one that compiles and autotunes)."""
    reset()
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - t0) * 1e3


class _L2Flusher:
    _buf: torch.Tensor | None = None

    @classmethod
    def flush(cls) -> None:
        if cls._buf is None:
            cls._buf = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")
        cls._buf.zero_()


def capture_graph(fn: Callable[[], object], reset: Callable[[], None]) -> Callable[[], None]:
    """Capture ``fn`` (after side-stream warm-up, as CUDA graphs require) and return the replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            reset()
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    reset()
    with torch.cuda.graph(graph):
        fn()
    torch.cuda.synchronize()

    def replay() -> None:  # the closure keeps the graph and the captured tensors (via fn) alive
        graph.replay()

    replay.captured = fn  # type: ignore[attr-defined]
    return replay


def measure(
    fn: Callable[[], object],
    reset: Callable[[], None],
    device: str,
    policy: TimingPolicy,
    *,
    graphable: bool = False,
    first_ms: float | None = None,
) -> Timing:
    """Time ``fn`` per the module's protocol. ``first_ms``: the first call was already made and timed."""
    if first_ms is None:
        first_ms = first_call(fn, reset, device)
    # warm-up, which also estimates the per-call time (incl. the flush, as the timed loop has it)
    t0 = time.perf_counter()
    for _ in range(max(1, policy.warmup)):
        reset()
        if device == "cuda" and policy.flush_l2:
            _L2Flusher.flush()
        fn()
    _sync(device)
    est_s = (time.perf_counter() - t0) / max(1, policy.warmup)
    n = int(policy.budget_s / max(est_s, 1e-6))
    n = max(policy.min_repeats, min(policy.repeats, n))

    if device != "cuda":
        samples = []
        for _ in range(n):
            reset()
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
        return Timing(samples, "wall-clock", first_ms)

    call: Callable[[], object] = fn
    timer, note = "cuda-events", None
    if graphable and policy.cuda_graph:
        try:
            call = capture_graph(fn, reset)
            timer = "cuda-graph"
        except Exception as exc:  # noqa: BLE001 - any capture failure means: time the eager call
            note = f"CUDA graph capture failed, eager step timed: {type(exc).__name__}: {str(exc)[:200]}"
            log.info(note)
            try:
                torch.cuda.synchronize()
            except Exception as sync_exc:  # noqa: BLE001 - a broken capture can poison the stream
                raise RuntimeError(f"{note}; the stream did not recover: {sync_exc}") from None
            call = fn
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        reset()
        if policy.flush_l2:
            _L2Flusher.flush()
        starts[i].record()
        call()
        ends[i].record()
    torch.cuda.synchronize()
    samples = [s.elapsed_time(e) for s, e in zip(starts, ends)]
    return Timing(samples, timer, first_ms, note)
