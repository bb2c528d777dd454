"""Opt-in rat/triton variants to time beside the default in one harness run on a GPU, before any of them
becomes a default (the project's rule: unmeasured fast paths stay opt-in).

    PYTHONPATH=scripts python run_bench.py --register rat/triton-v8=rat_experiments:RATTritonV8 \
        --device cuda --impl rat/triton,rat/triton-v8 --mode train,prefill --seq-len 4k,32k,128k --tokens 128k

RATTritonV8: impls/rat/NOTES.md v8 on the long-sequence path (>= 2048 chunks: the default config there):
the pipelined forward (fwd_pipe, 128 x 64 tiles) and the dK/dV kernel issuing dP^T before its exponentials
(dkv_early_dp); every other config the default would pick (short sequences, fp32, the interpreter) gets only
dkv_early_dp. The harness checks it against the
reference before timing it, like any implementation. Measured on the H200 (session 3): train 43.7 ms against
the default's 43.1 at T = 128k, prefill equal (reports/rat-triton/run5_harness_v8): not a default.

RATTritonEarlyDP3: dkv_early_dp with the dK/dV kernel at 3 pipeline stages (4 by default), the one v8 variant
that measured faster (dK/dV 17.15 vs 17.76 ms, train 42.14 vs 43.24 ms by do_bench at 128k;
reports/rat-triton/run5_overlap_v8.*); to confirm in a harness run:
    PYTHONPATH=scripts python run_bench.py --register rat/triton-edp3=rat_experiments:RATTritonEarlyDP3 \
        --device cuda --impl rat/triton,rat/triton-edp3 --mode train --seq-len 4k,32k,128k --tokens 128k

RATTritonDqFirstEDP3: RATTritonEarlyDP3 plus dq_first (impls/rat/NOTES.md v10: bwd_dq_pre_kernel runs first and
writes Delta and RoPE(q) itself, bwd_pre is skipped; 7 instead of 10 token passes before dK/dV). Not measured;
after scripts/gpu_rat_overlap.py has checked and timed it, in one harness run beside the other two:
    PYTHONPATH=scripts python run_bench.py --register rat/triton-edp3=rat_experiments:RATTritonEarlyDP3 \
        --register rat/triton-dqf=rat_experiments:RATTritonDqFirstEDP3 --device cuda \
        --impl rat/triton,rat/triton-edp3,rat/triton-dqf --mode train --seq-len 4k,32k,128k --tokens 128k

RATTritonExp2EDP3: RATTritonEarlyDP3 plus exp2 on the FMA pipe for 1/16 of the forward's softmax exponentials
(exp2_poly_fwd = 0.0625, the fraction the triton 3.6 SASS favours; impls/rat/NOTES.md v9), on the long-sequence path (>= 2048 chunk ends) only: short
sequences and fp32 (float32 inputs would carry the polynomial's 7.5e-5 relative error) get RATTritonEarlyDP3's
config. Not measured; after scripts/gpu_rat_overlap.py has checked and timed "exp2 fwd 0.0625" (use the fraction that measured best there):
    PYTHONPATH=scripts python run_bench.py --register rat/triton-edp3=rat_experiments:RATTritonEarlyDP3 \
        --register rat/triton-x2=rat_experiments:RATTritonExp2EDP3 --device cuda \
        --impl rat/triton,rat/triton-edp3,rat/triton-x2 --mode train,prefill --seq-len 4k,32k,128k --tokens 128k

RATTritonFusedDqTma: impls/rat/NOTES.md v11: dq inside the dK/dV kernel (5 products instead of 7), its tiles added
to a float32 accumulator by TMA bulk reductions (fused_dq_tma; dq_first off: bwd_pre runs, the backward scan
finishes dq), with dkv_early_dp at 3 dK/dV stages, for 16-bit inputs at every length (fp32 keeps the default's
config). Not measured; after scripts/gpu_rat_overlap.py has checked and timed the "fused_dq_tma ..." variants (set
LONG / SHORT to the one that measured best):
    PYTHONPATH=scripts python run_bench.py --register rat/triton-tma=rat_experiments:RATTritonFusedDqTma \
        --device cuda --impl rat/triton,rat/triton-tma --mode train --seq-len 4k,32k,128k --tokens 128k

Measured since (impls/rat/NOTES.md "Session 4 runs", v11 measured): DqFirstEDP3 became the 16-bit default (the
rest of the classes above are relative to the default of their day); Exp2EDP3 and FusedDqTma gave no gain at 128k.

RATTritonOverride: the default with the RatTritonConfig fields of the JSON object in $RATBENCH_RAT_OVERRIDE on the
long-sequence path (>= 2048 chunk ends; e.g. '{"dq_stages": 4}'), for confirming a tile setting that
scripts/gpu_rat_overlap.py timed fastest at 128k, in the same device command:
    RATBENCH_RAT_OVERRIDE='{"dq_stages": 4}' PYTHONPATH=scripts python run_bench.py \
        --register rat/triton-o=rat_experiments:RATTritonOverride --device cuda --impl rat/triton,rat/triton-o ...
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import ClassVar

from impls.rat.triton import DEFAULT_CONFIG, FP32_CONFIG, RATTriton, _cfg


class RATTritonV8(RATTriton):
    description = "rat/triton with the v8 overlap switches (fwd_pipe at 128 x 64, dkv_early_dp): an experiment"
    LONG: ClassVar[dict] = {"fwd_pipe": True, "fwd_bn": 64, "dkv_early_dp": True}
    SHORT: ClassVar[dict] = {"dkv_early_dp": True}

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float):  # type: ignore[no-untyped-def]
        base = _cfg(None, q.shape[1] // chunk_size, q.dtype)  # the default's choice (interpreter, fp32, long, short)
        change = self.LONG if base is DEFAULT_CONFIG else self.SHORT
        self.config = dataclasses.replace(base, **change)
        return super()._forward(q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)


class RATTritonEarlyDP3(RATTritonV8):
    description = "rat/triton with dkv_early_dp and 3 dK/dV pipeline stages: an experiment"
    LONG: ClassVar[dict] = {"dkv_early_dp": True, "dkv_stages": 3}
    SHORT: ClassVar[dict] = {"dkv_early_dp": True, "dkv_stages": 3}


class RATTritonDqFirstEDP3(RATTritonV8):
    description = "rat/triton with dq_first, dkv_early_dp and 3 dK/dV pipeline stages: an experiment"
    LONG: ClassVar[dict] = {"dq_first": True, "dkv_early_dp": True, "dkv_stages": 3}
    SHORT: ClassVar[dict] = {"dq_first": True, "dkv_early_dp": True, "dkv_stages": 3}


class RATTritonExp2EDP3(RATTritonV8):
    description = "rat/triton with 1/16 of the forward's exp2 on the FMA pipe, dkv_early_dp, 3 dK/dV stages: an experiment"
    LONG: ClassVar[dict] = {"exp2_poly_fwd": 0.0625, "dkv_early_dp": True, "dkv_stages": 3}
    SHORT: ClassVar[dict] = {"dkv_early_dp": True, "dkv_stages": 3}


class RATTritonFusedDqTma(RATTritonV8):
    description = "rat/triton with dq fused into dK/dV by TMA bulk reductions (fused_dq_tma), dkv_early_dp, 3 stages: an experiment"
    LONG: ClassVar[dict] = {"fused_dq_tma": True, "dq_first": False, "dkv_early_dp": True, "dkv_stages": 3}
    SHORT: ClassVar[dict] = {"fused_dq_tma": True, "dq_first": False, "dkv_early_dp": True, "dkv_stages": 3}

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float):  # type: ignore[no-untyped-def]
        base = _cfg(None, q.shape[1] // chunk_size, q.dtype)
        if base is FP32_CONFIG:  # float32 inputs: the default's config (the TMA kernel is not compiled for tf32x3)
            self.config = base
            return RATTriton._forward(self, q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)
        return super()._forward(q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)


class RATTritonOverride(RATTritonV8):
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
