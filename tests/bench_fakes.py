"""Test-only implementations for the harness tests: each misbehaves in one known way.

They compute full attention with the reference's math, then: run out of memory or raise above a
sequence length (so the accuracy check on a small shape passes and the timed case fails), return a
wrong result, or have no decode path. Registered and unregistered by the tests' fixtures only.
"""
from __future__ import annotations

import time

import torch

from ratbench.impls.full.reference import FullReference

BIG_T = 64  # above this sequence length the failing fakes fail


class OomFull(FullReference):
    description = "test-only: out of memory above T=64"

    def _forward(self, q, k, v, *, causal, scale):
        if q.shape[1] > BIG_T:
            # the message torch's CPU allocator gives
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 1099511627776 bytes.")
        return super()._forward(q, k, v, causal=causal, scale=scale)


class CudaOomFull(FullReference):
    description = "test-only: torch.cuda.OutOfMemoryError above T=64"

    def _forward(self, q, k, v, *, causal, scale):
        if q.shape[1] > BIG_T:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1024.00 GiB")
        return super()._forward(q, k, v, causal=causal, scale=scale)


class BrokenFull(FullReference):
    description = "test-only: raises above T=64"

    def _forward(self, q, k, v, *, causal, scale):
        if q.shape[1] > BIG_T:
            raise ValueError("kernel exploded at this length")
        return super()._forward(q, k, v, causal=causal, scale=scale)


class WrongFull(FullReference):
    description = "test-only: off by 0.1"
    is_reference = False

    def _forward(self, q, k, v, *, causal, scale):
        return super()._forward(q, k, v, causal=causal, scale=scale) + 0.1


class NoDecodeFull(FullReference):
    description = "test-only: forward only"
    is_reference = False
    supports_decode = False


class GpuOnlyFull(FullReference):
    description = "test-only: CUDA only"
    devices = ("cuda",)


class SlowFull(FullReference):
    description = "test-only: 20 ms per call"
    is_reference = False

    def _forward(self, q, k, v, *, causal, scale):
        time.sleep(0.02)
        return super()._forward(q, k, v, causal=causal, scale=scale)


# the fakes are not references, whatever they inherit
for _cls in (OomFull, CudaOomFull, BrokenFull, WrongFull, NoDecodeFull, GpuOnlyFull, SlowFull):
    _cls.is_reference = False

FAKES = {
    "full/test-oom": "bench_fakes:OomFull",
    "full/test-cuda-oom": "bench_fakes:CudaOomFull",
    "full/test-broken": "bench_fakes:BrokenFull",
    "full/test-wrong": "bench_fakes:WrongFull",
    "full/test-nodecode": "bench_fakes:NoDecodeFull",
    "full/test-gpuonly": "bench_fakes:GpuOnlyFull",
    "full/test-slow": "bench_fakes:SlowFull",
}


class registered:
    """Context manager: the fakes are in the registry inside it and gone after (other tests that walk
    the registry never see them)."""

    def __enter__(self) -> list[str]:
        from ratbench import impls

        for name, target in FAKES.items():
            if name not in impls.names():
                impls.register(name, target)
        return list(FAKES)

    def __exit__(self, *exc: object) -> None:
        from ratbench.impls import registry

        for name in FAKES:
            registry._REGISTRY.pop(name, None)
            registry._CLASSES.pop(name, None)
