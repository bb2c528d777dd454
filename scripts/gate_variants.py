"""Real code changes for checking the regression gate on a GPU (scripts/gpu_gate.py).

Each class is rat/triton with one launch parameter made worse, registered in place of rat/triton by
``run_bench.py gate --register rat/triton=gate_variants:<Class>`` (PYTHONPATH=scripts), so the gate
sees the baseline's case keys run by changed code. How much slower each is gets measured by
scripts/gpu_gate.py (interleaved A/B with many samples) before the detection runs. Each CHANGE applies to
the default of the day: since session 4 that is dq first + the early dK/dV kernel at 3 stages, so the
variants' slowdowns measured in reports/gate-evidence-2026-11-29* (the earlier default) do not carry over.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from ratbench.impls.rat.triton import DEFAULT_CONFIG, SHORT_CONFIG, RATTriton


class _Variant(RATTriton):
    CHANGE: ClassVar[dict] = {}

    def __init__(self, config=None) -> None:  # type: ignore[no-untyped-def]
        super().__init__(config)

    def _cfg_for(self, n_chunks: int):  # type: ignore[no-untyped-def]
        base = DEFAULT_CONFIG if n_chunks >= 2048 else SHORT_CONFIG
        return dataclasses.replace(base, **self.CHANGE)

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float):  # type: ignore[no-untyped-def]
        self.config = self._cfg_for(q.shape[1] // chunk_size)
        return super()._forward(q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)


class RATDkvStages2(_Variant):
    """About a 4.5% slowdown of rat/train at 128k on the session-4 default: dK/dV at 2 stages took 19.6 ms against
    17.2 ms, train 43.97 against 42.07 ms by do_bench (reports/rat-triton/run10_tiles.*). (Before, RATDkvStages3 made
    the then-default 4 stages 3; 3 stages is the default now.)"""

    description = "gate check: rat/triton with the dK/dV kernel at 2 pipeline stages (default 3)"
    CHANGE: ClassVar[dict] = {"dkv_stages": 2}


class RATDqTile64(_Variant):
    description = "gate check: rat/triton with the dQ kernel at 64 query rows per program (default 128)"
    CHANGE: ClassVar[dict] = {"dq_bm": 64, "dq_bn": 64}


class RATScan8(_Variant):
    description = "gate check: rat/triton with 8 chunks side by side in the forward scan (default 16)"
    CHANGE: ClassVar[dict] = {"scan_nc": 8}


class RATDkvBM32(_Variant):
    """About a 5% slowdown of rat/train with the earlier default's dK/dV kernel: in the tune sweep of 2026-11-29
    (reports/rat-triton/run2_*, NOTES.md v4) dK/dV tiles (BN 128, BM 32) took 20.16 ms against 18.2 ms for
    (128, 64) at T = 128k, +1.9 ms of a ~42 ms step (+4.5%); the gate evidence measured +5.4% at 32k. On the
    session-4 default it changes the early dK/dV kernel (sm_90: 234 registers, no spills): not measured."""

    description = "gate check: rat/triton with the dK/dV kernel at 32 query rows per inner step (default 64)"
    CHANGE: ClassVar[dict] = {"dkv_bm": 32}


VARIANTS = ("RATDkvStages2", "RATDqTile64", "RATScan8", "RATDkvBM32")
