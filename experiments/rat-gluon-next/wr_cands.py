"""rat/gluon's dq writer variants, registered beside rat/gluon for one harness run: `PYTHONPATH=.:experiments/
rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-w256,rat/gluon-fw ... --register
rat/gluon-w256=wr_cands:W256 --register rat/gluon-fw=wr_cands:FirstWave`.
- W256: b7c's dq writer (and b7b's store-first accumulator) only up to WRITER_MAX_ENDS (256) chunk ends per sequence,
  the plain backward (pre pass zeros, dq shares reduced by the MMA warpgroups) beyond, at both head dims. rat/gluon
  itself takes the writer at head dim 128 at every T since ab_wregs.py (H100, twelfth session).
- FirstWave: rat/gluon with bwd_first_wave where it runs the writer: key block 0's items of every head launched
  before all other items (items.launch_order), so that the store-first flags lead the other items' waits by waves."""
from __future__ import annotations

import dataclasses
import math

import torch

from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, WRITER_MAX_ENDS, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class W256(RATGluon):
    description = "rat/gluon with the dq writer only up to 256 chunk ends (the route before the twelfth session)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if base.bwd_dq_writer and seq_len is not None and chunk_size is not None and \
                math.ceil(seq_len / chunk_size) > WRITER_MAX_ENDS:
            return GLUON_BWD_CONFIG
        return base


class FirstWave(RATGluon):
    description = "rat/gluon with key block 0's backward items of every head launched first (bwd_first_wave)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_first_wave=True) if base.bwd_dq_writer else base
