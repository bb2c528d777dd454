"""f26 (f23's overlapped tile boundary in the training forward, RATTritonConfig.fwd_cross_tile_train) against
rat/gluon, registered for the harness's gate rounds (call_s32b.sh): `PYTHONPATH=.:experiments/rat-gluon-next python
run_bench.py --impl rat/gluon,rat/gluon-xtt ... --register rat/gluon-xtt=xtt_cands:XtTrain`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import XT_STAGES, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class XtTrain(RATGluon):
    description = "rat/gluon with f23's tile boundary overlapped in the training forward too (f26)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if base.forward != "gluon_ws":
            return base
        # the prefill keeps its own ring depth where f23 runs there; else the training forward takes f23's at that
        # head dim (three entries fit at 64 only)
        stages = base.fwd_xt_stages if base.fwd_cross_tile else XT_STAGES.get(head_dim or 0, 2)
        return dataclasses.replace(base, fwd_cross_tile_train=True, fwd_xt_stages=stages)
