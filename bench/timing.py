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
   then a CUDA event pair around the call alone. Samples are per call, in milliseconds;
5. on the CPU with ``target_ci_rel`` set (adaptive repeats), the number of calls is not fixed up front:
   calls go on until the 95% confidence interval of the median (order statistics) is narrower than
   ``target_ci_rel`` x the median (``converged``), or the budget is spent, or ``repeats`` is reached.
Statistics: median, 20th and 80th percentiles, the number of samples, the relative spread
(p80 - p20) / median, the median's interval, and on Linux CPUs the time the process's threads spent
runnable but waiting for a CPU during the median timed call, relative to its duration (``cpu_wait_frac``:
time other processes took).
``noise`` turns those into the ``noisy`` flag with the thresholds below (bench/README.md, "Noise").
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Self

import torch

log = logging.getLogger(__name__)

L2_FLUSH_BYTES = 256 * 1024 * 1024

#: a row is noisy when its p20-p80 width exceeds this fraction of the median. Measured: calls that were
#: never preempted on the 2-core CPU box spread 0.04-0.10 (decode, 200 calls each, 1 thread); the H200
#: runs in reports/ spread 0.01 median, 0.144 at most (cuDNN decode at 4k, a 0.5 ms CUDA-graph replay)
SPREAD_MAX = 0.2
#: ... or when the median timed call lost more than this fraction of its duration to the process's threads
#: waiting for a CPU (run queue; CPU, Linux): another process had the cores during most calls, so the
#: median itself is stretched (a preempted call now and then only makes an outlier, which the median
#: ignores). Measured: see bench/README.md, "Noise"
WAIT_MAX = 0.1
#: ... or when the 1-minute load average per CPU was above this at the end of the timed calls (CPU): more
#: runnable threads than cores, so other processes shared the caches and memory bus even in calls that
#: never waited (this box at a load of 7 on 2 cores: 0.068 vs 0.105 ms for one decode step in two runs a
#: minute apart, each with a spread under 20% and no wait). A 1-thread run on an idle machine adds 1 /
#: the number of CPUs; the average lags by about a minute, so a run right after a busy spell is flagged too
LOAD_MAX = 1.0
#: the adaptive repeats' confidence level for the median's interval
CI_CONFIDENCE = 0.95


@dataclass(frozen=True)
class TimingPolicy:
    repeats: int = 50
    min_repeats: int = 3
    warmup: int = 1
    budget_s: float = 1.0
    flush_l2: bool = True
    cuda_graph: bool = True
    #: CPU only: stop timing once the median's 95% interval is narrower than this fraction of the median
    #: (None: as many calls as the warm-up estimate fits in the budget, the GPU's rule)
    target_ci_rel: float | None = None


@dataclass
class Timing:
    samples_ms: list[float]
    timer: str  # 'cuda-events', 'cuda-graph', 'wall-clock'
    first_call_ms: float | None = None
    note: str | None = None
    extra: dict = field(default_factory=dict)
    #: adaptive repeats (CPU with ``target_ci_rel``): whether the median's interval got that narrow
    converged: bool | None = None
    #: the median timed call's run-queue wait / its duration (thread-seconds waiting for a CPU per second of
    #: the call; CPU, Linux), see WAIT_MAX
    cpu_wait_frac: float | None = None
    #: 1-minute load average per CPU at the end of the timed calls
    load_avg: float | None = None

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

    @property
    def rel_spread(self) -> float:
        return rel_spread(self.samples_ms)

    def noise(self, device: str) -> dict[str, object]:
        """The row's noise columns: ms_rel_spread, ms_ci_rel, converged, cpu_wait_frac, load_avg, noisy,
        noise_reason."""
        return noise_columns(self.samples_ms, device, converged=self.converged, cpu_wait_frac=self.cpu_wait_frac,
                             load_avg=self.load_avg)


def quantile(xs: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default), without numpy."""
    s = sorted(xs)
    if not s:
        raise ValueError("no samples")
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def rel_spread(xs: list[float]) -> float:
    """(p80 - p20) / median: the width of the middle 60% of the samples, relative to the median."""
    med = float(statistics.median(xs))
    return (quantile(xs, 0.8) - quantile(xs, 0.2)) / med if med > 0 else 0.0


@functools.lru_cache(maxsize=4096)
def _median_ci_rank(n: int, confidence: float) -> int | None:
    """The largest k with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2: [x_(k), x_(n+1-k)] (1-based
    order statistics) covers the median with at least ``confidence``. None when no such k >= 1 exists."""
    alpha = (1.0 - confidence) / 2
    if n > 1000:  # normal approximation (exact sums get slow; the difference is under one rank)
        k = math.floor(n / 2 - statistics.NormalDist().inv_cdf(1 - alpha) * math.sqrt(n) / 2)
        return k if k >= 1 else None
    total, term, cdf, k = 2 ** n, 1, 0, 0  # term = C(n, k)
    while k < n:
        cdf += term  # P(X <= k) * 2^n
        if cdf > alpha * total:
            break
        k += 1
        term = term * (n - k + 1) // k
    return k if k >= 1 else None  # P(X <= k - 1) <= alpha


def median_ci(xs: list[float], confidence: float = CI_CONFIDENCE) -> tuple[float, float] | None:
    """A distribution-free interval for the median (order statistics: no assumption on the shape of the
    samples, deterministic); None with too few samples (95%: fewer than 6)."""
    k = _median_ci_rank(len(xs), confidence)
    if k is None:
        return None
    s = sorted(xs)
    return float(s[k - 1]), float(s[len(s) - k])


def ci_rel(xs: list[float], confidence: float = CI_CONFIDENCE) -> float | None:
    """Width of the median's interval relative to the median (None: too few samples for one)."""
    k = _median_ci_rank(len(xs), confidence)
    if k is None:
        return None
    s = sorted(xs)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return float((s[n - k] - s[k - 1]) / med) if med > 0 else None


class RunQueueWait:
    """Seconds the threads of this process spent runnable but waiting for a CPU (Linux schedstat's second
    field, summed over the threads alive when it was opened), cheap enough to read around every timed call
    (one pread per thread). ``read()`` is None where schedstat cannot be read or a thread has ended."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        try:
            for tid in os.listdir("/proc/self/task"):
                try:
                    self._fds.append(os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY))
                except OSError:
                    continue  # a thread that just ended
        except OSError:
            pass

    def read(self) -> float | None:
        if not self._fds:
            return None
        try:
            return sum(int(os.pread(fd, 128, 0).split()[1]) for fd in self._fds) / 1e9
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_per_cpu() -> float | None:
    """The 1-minute load average divided by the number of CPUs (None where the OS has none)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (OSError, AttributeError):
        return None


def noise_columns(samples_ms: list[float], device: str, *, converged: bool | None = None,
                  cpu_wait_frac: float | None = None, load_avg: float | None = None) -> dict[str, object]:
    """Row columns saying how far a row's numbers can be trusted, and ``noisy`` when they cannot: the
    spread is past SPREAD_MAX, or (CPU) the median call waited for a CPU past WAIT_MAX, or the load average
    per CPU was past LOAD_MAX. On CUDA the spread alone decides."""
    if not samples_ms:
        return {}
    spread = rel_spread(samples_ms)
    reasons = []
    if spread > SPREAD_MAX:
        reasons.append(f"p20-p80 spread {spread:.0%} of the median (> {SPREAD_MAX:.0%})")
    if device == "cpu":
        if cpu_wait_frac is not None and cpu_wait_frac > WAIT_MAX:
            reasons.append(f"the median call waited {cpu_wait_frac:.0%} of its time for a CPU (> {WAIT_MAX:.0%}): "
                           "the machine was busy")
        if load_avg is not None and load_avg > LOAD_MAX:
            reasons.append(f"load average {load_avg:.2f} per CPU (> {LOAD_MAX:g}): the machine was busy")
    return {"ms_rel_spread": _r6(spread), "ms_ci_rel": _r6(ci_rel(samples_ms)), "converged": converged,
            "cpu_wait_frac": _r6(cpu_wait_frac), "load_avg": _r6(load_avg), "noisy": bool(reasons),
            "noise_reason": "; ".join(reasons) or None}


def _r6(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


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


def capture_graph(fn: Callable[[], object], pool: object | None = None) -> tuple[torch.cuda.CUDAGraph, object]:
    """Capture one call of ``fn()`` as a CUDA graph (in memory pool ``pool``; None: a pool of its own): its
    kernels are recorded, not run; the Python in ``fn`` runs once. Returns the graph and fn's (static)
    output. Warm-up (compilation, autotuning) is the caller's, before the capture. The one definition
    for the harness (``graph_replay``) and the models (decode-step graphs in models/lm.py, models/cases.py)."""
    graph = torch.cuda.CUDAGraph()
    prev = torch.cuda.current_stream()
    try:
        with torch.cuda.graph(graph, pool=pool):
            out = fn()
    except BaseException:
        # a failed capture raises from capture_end before torch.cuda.graph restores the stream
        torch.cuda.set_stream(prev)
        raise
    return graph, out


def graph_replay(fn: Callable[[], object], reset: Callable[[], None]) -> Callable[[], None]:
    """Capture ``fn`` (after side-stream warm-up, as CUDA graphs require) and return the replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            reset()
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    reset()
    graph, out = capture_graph(fn)
    del out
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
        return _measure_cpu(fn, reset, policy, n, first_ms)

    call: Callable[[], object] = fn
    timer, note = "cuda-events", None
    if graphable and policy.cuda_graph:
        try:
            call = graph_replay(fn, reset)
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
    return Timing(samples, timer, first_ms, note, load_avg=load_per_cpu())


def _measure_cpu(fn: Callable[[], object], reset: Callable[[], None], policy: TimingPolicy, n: int,
                 first_ms: float | None) -> Timing:
    """Wall clock around each call: ``n`` calls, or with ``policy.target_ci_rel`` (adaptive) at least
    ``min_repeats`` and then until the median's interval is tight, the budget is spent or ``repeats``
    calls were made. Around each call (outside the timed span) the process's run-queue wait is read: the
    median call's wait / duration is the load evidence (``cpu_wait_frac``)."""
    adaptive = policy.target_ci_rel is not None and policy.repeats > policy.min_repeats
    samples: list[float] = []
    stolen: list[float] = []  # per call: run-queue wait / wall time
    converged: bool | None = False if adaptive else None
    with RunQueueWait() as rq:
        start = time.perf_counter()
        while True:
            reset()
            w0 = rq.read()
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            w1 = rq.read()
            samples.append(dt * 1e3)
            if w0 is not None and w1 is not None and dt > 0:
                stolen.append((w1 - w0) / dt)
            k = len(samples)
            if not adaptive:
                if k >= n:
                    break
                continue
            if k >= policy.repeats:
                break
            if k < policy.min_repeats:
                continue
            width = ci_rel(samples)
            if width is not None and width <= policy.target_ci_rel:  # type: ignore[operator]
                converged = True
                break
            if time.perf_counter() - start >= policy.budget_s:
                break
    if adaptive and not converged:
        width = ci_rel(samples)
        converged = width is not None and width <= policy.target_ci_rel  # type: ignore[operator]
    wait = float(statistics.median(stolen)) if len(stolen) == len(samples) else None
    return Timing(samples, "wall-clock", first_ms, converged=converged, cpu_wait_frac=wait, load_avg=load_per_cpu())
