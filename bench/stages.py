"""Kernels of one profiled call, and their attribution to an implementation's named stages.

An implementation declares its stages as one class attribute, an ordered tuple of (stage name, regex over
kernel names), e.g. rat/triton's ``(("scans", r"scan\\w*_kernel"), ("forward", ...), ...)``
(``Implementation.profile_stages``). A kernel belongs to the FIRST stage whose pattern it matches
(``re.search``); a kernel that matches none goes to the stage ``other``, which a profile row names.

Kernels come from a torch.profiler (Kineto) Chrome trace (``kernels_from_trace``):
- CUDA: every GPU activity of the call (``cat`` kernel, gpu_memcpy, gpu_memset), grouped by name;
- CPU: every operator's SELF time (its time minus its children's, so nested aten ops are not counted
  twice); a Triton kernel run by the interpreter appears as a ``triton::<kernel name>`` range (bench.profile
  wraps each interpreted launch in one) and counts whole, its inner operators not again.
Times are microseconds in the trace and milliseconds here.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

#: the stage of kernels that match no declared pattern
OTHER = "other"
#: prefix of the record_function range around each Triton launch interpreted on the CPU
TRITON_RANGE = "triton::"
#: GPU activity categories of a Kineto trace that take device time
GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


@dataclass
class KernelStat:
    """One kernel (or CPU operator) of a profiled call: launches and total time."""

    name: str
    calls: int
    total_ms: float
    stage: str = OTHER

    @property
    def per_call_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass
class StageTime:
    name: str
    ms: float
    calls: int
    kernels: list[str] = field(default_factory=list)


def compile_patterns(stages: Sequence[tuple[str, str]]) -> list[tuple[str, re.Pattern]]:
    """The declared (stage, regex) pairs compiled; a bad declaration raises ValueError naming it."""
    out = []
    for item in stages:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise ValueError(f"a profile stage is a (name, regex) pair of strings, got {item!r}")
        name, pat = item
        if name == OTHER:
            raise ValueError(f"stage name {OTHER!r} is reserved for kernels that match no stage")
        try:
            out.append((name, re.compile(pat)))
        except re.error as exc:
            raise ValueError(f"stage {name!r}: bad kernel-name regex {pat!r}: {exc}") from None
    return out


def stage_of(name: str, patterns: Sequence[tuple[str, re.Pattern]]) -> str:
    for stage, pat in patterns:
        if pat.search(name):
            return stage
    return OTHER


def attribute(kernels: Iterable[KernelStat], stages: Sequence[tuple[str, str]]) -> list[StageTime]:
    """Sets each kernel's ``stage`` and returns the stages' times in declaration order (stages with no
    kernel in this call are left out), then ``other`` when some kernel matched nothing."""
    pats = compile_patterns(stages)
    acc: dict[str, StageTime] = {name: StageTime(name, 0.0, 0) for name, _ in pats}
    acc[OTHER] = StageTime(OTHER, 0.0, 0)
    for k in kernels:
        k.stage = stage_of(k.name, pats)
        st = acc[k.stage]
        st.ms += k.total_ms
        st.calls += k.calls
        st.kernels.append(k.name)
    return [st for st in acc.values() if st.calls]


def coverage(kernels: Iterable[KernelStat], median_ms: float | None) -> float | None:
    """Kernel time of one call over the harness's median of the same case (None without a median)."""
    if not median_ms or median_ms <= 0:
        return None
    return sum(k.total_ms for k in kernels) / median_ms


# ----- kernels from a Chrome trace ----------------------------------------------------------------
def kernels_from_trace(events: Sequence[dict], device: str) -> list[KernelStat]:
    """Kernels of a Kineto trace's ``traceEvents``, longest total first (see the module docstring)."""
    if device == "cuda":
        spans = [(e["name"], float(e.get("dur", 0.0))) for e in events
                 if e.get("ph") == "X" and e.get("cat") in GPU_CATEGORIES]
    else:
        spans = _cpu_self_times(events)
    acc: dict[str, KernelStat] = {}
    for name, dur_us in spans:
        k = acc.setdefault(name, KernelStat(name, 0, 0.0))
        k.calls += 1
        k.total_ms += dur_us / 1e3
    return sorted(acc.values(), key=lambda k: (-k.total_ms, k.name))


def _cpu_self_times(events: Sequence[dict]) -> list[tuple[str, float]]:
    """(name, self microseconds) of every CPU operator, per thread by interval nesting; a ``triton::``
    range counts whole and hides what runs inside it; other user ranges (the profile's own root range)
    only nest."""
    by_thread: dict[tuple, list[dict]] = {}
    for e in events:
        if e.get("ph") == "X" and e.get("cat") in ("cpu_op", "user_annotation"):
            by_thread.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    out: list[tuple[str, float]] = []
    for evs in by_thread.values():
        evs.sort(key=lambda e: (float(e["ts"]), -float(e.get("dur", 0.0))))
        # stack entries: [event, end, children's time, hidden (inside a triton range)]
        stack: list[list] = []
        done: list[list] = []
        for e in evs:
            ts, dur = float(e["ts"]), float(e.get("dur", 0.0))
            while stack and stack[-1][1] <= ts:
                done.append(stack.pop())
            hidden = bool(stack) and (stack[-1][3] or stack[-1][0]["name"].startswith(TRITON_RANGE))
            if stack:
                stack[-1][2] += dur
            stack.append([e, ts + dur, 0.0, hidden])
        done += stack
        for e, _end, child, hidden in done:
            if hidden:
                continue
            name, dur = e["name"], float(e.get("dur", 0.0))
            if name.startswith(TRITON_RANGE):
                out.append((name[len(TRITON_RANGE):], dur))
            elif e.get("cat") == "cpu_op":
                out.append((name, max(0.0, dur - child)))
    return out


def kernel_base_name(name: str) -> str:
    """The function name of a kernel as Nsight Compute's ``--kernel-name-base function`` sees it: no return
    type, namespaces, template arguments or parameters ("void ns::k<int>(P)" -> "k")."""
    s = name.strip()
    s = re.sub(r"^void\s+", "", s)
    depth, out = 0, []
    for ch in s:  # drop <...> and (...) at any depth
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    s = "".join(out).strip()
    return s.split("::")[-1].split()[-1] if s else name
