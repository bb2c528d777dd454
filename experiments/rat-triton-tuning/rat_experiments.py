"""rat/triton with changed launch settings, to time beside the default in one harness run on a GPU before a
setting becomes a default (the project's rule: unmeasured fast paths stay opt-in).

RATTritonOverride: the default with the RATTritonConfig fields of the JSON object in $RATBENCH_RAT_OVERRIDE on the
long-sequence path (>= 2048 chunk ends; e.g. '{"dq_stages": 4}'), timed beside the default in one harness run:
    RATBENCH_RAT_OVERRIDE='{"dq_stages": 4}' PYTHONPATH=experiments/rat-triton-tuning python run_bench.py \
        --register rat/triton-o=rat_experiments:RATTritonOverride --device cuda --impl rat/triton,rat/triton-o ...
The harness checks it against the reference before timing it, like any implementation (``--accuracy fa-rule``
for the FlashAttention rule at the case's shape); ``run_bench.py profile`` with the same flags gives each
variant's stage times (what scripts/gpu_rat_overlap.py and gpu_rat_triton_tune.py measured with CUDA events,
removed after ba51d7e).

The kernel-variant classes this file held (RATTritonV8: fwd_pipe; RATTritonEarlyDP3, RATTritonDqFirstEDP3: the
steps to today's default; RATTritonExp2EDP3: exp2 on the FMA pipe; RATTritonFusedDqTma: dq by TMA bulk reductions)
were measured in harness runs (reports/rat-triton/run5_harness_v8, run6_harness, run7_harness_exp2,
run9_harness_tma); the variants that lost were removed from the kernels: impls/rat/NOTES.md, "Removed variants".
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import ClassVar

from ratbench.impls.rat.triton import DEFAULT_CONFIG, RATTriton, _cfg


class _Changed(RATTriton):
    """rat/triton with LONG applied to the config the default picks on the long path (>= 2048 chunk ends) and
    SHORT to any other config it picks (short sequences, fp32, the interpreter)."""

    LONG: ClassVar[dict] = {}
    SHORT: ClassVar[dict] = {}

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float):  # type: ignore[no-untyped-def]
        base = _cfg(None, q.shape[1] // chunk_size, q.dtype)  # the default's choice (interpreter, fp32, long, short)
        change = self.LONG if base is DEFAULT_CONFIG else self.SHORT
        self.config = dataclasses.replace(base, **change)
        return super()._forward(q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)


class RATTritonOverride(_Changed):
    description = "rat/triton with the config fields of $RATBENCH_RAT_OVERRIDE on the long path: an experiment"
    SHORT: ClassVar[dict] = {}

    @property
    def LONG(self) -> dict:  # type: ignore[override]
        raw = os.environ.get("RATBENCH_RAT_OVERRIDE", "{}")
        try:
            change = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"RATBENCH_RAT_OVERRIDE must be a JSON object of RATTritonConfig fields, got {raw!r}") from exc
        if not isinstance(change, dict):
            raise TypeError(f"RATBENCH_RAT_OVERRIDE must be a JSON object, got {raw!r}")
        return change
