"""Opt-in rat/triton variants to time beside the default in one harness run on a GPU, before any of them
becomes a default (the project's rule: unmeasured fast paths stay opt-in).

    PYTHONPATH=scripts python run_bench.py --register rat/triton-v8=rat_experiments:RATTritonV8 \
        --device cuda --impl rat/triton,rat/triton-v8 --mode train,prefill --seq-len 4k,32k,128k --tokens 128k

RATTritonV8: impls/rat/NOTES.md v8 on the long-sequence path (>= 2048 chunks: the default config there):
the pipelined forward (fwd_pipe, 128 x 64 tiles) and the dK/dV kernel issuing dP^T before its exponentials
(dkv_early_dp); every other config the default would pick (short sequences, fp32, the interpreter) gets only
dkv_early_dp. The harness checks it against the
reference before timing it, like any implementation.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from impls.rat.triton import DEFAULT_CONFIG, RATTriton, _cfg


class RATTritonV8(RATTriton):
    description = "rat/triton with the v8 overlap switches (fwd_pipe at 128 x 64, dkv_early_dp): an experiment"
    LONG: ClassVar[dict] = {"fwd_pipe": True, "fwd_bn": 64, "dkv_early_dp": True}
    SHORT: ClassVar[dict] = {"dkv_early_dp": True}

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float):  # type: ignore[no-untyped-def]
        base = _cfg(None, q.shape[1] // chunk_size, q.dtype)  # the default's choice (interpreter, fp32, long, short)
        change = self.LONG if base is DEFAULT_CONFIG else self.SHORT
        self.config = dataclasses.replace(base, **change)
        return super()._forward(q, k, v, f, chunk_size=chunk_size, rope=rope, scale=scale)
