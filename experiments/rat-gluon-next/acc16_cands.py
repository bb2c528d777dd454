"""b25, rat/gluon's dq accumulator in 16 bits beyond two key blocks (thirty-fourth session), registered for its
measurement (call_b25.sh): `--register rat/gluon-acc16=acc16_cands:Acc16All`.

Beyond b17's 256 chunk ends per sequence, wherever the backward scan finishes dq, the accumulator is in the inputs'
16-bit dtype (RATTritonConfig.bwd_dq_acc16_max_ends unbounded, bwd_dq_acc16_plain): with the dq writer (head dim
128) bwd_ws_kernel's shares staged and reduced in 16 bits; without it (head dim 64, plain and b22's owners) the pre
pass's zeros too. The backward scan reads 1 U instead of 2. Acc16All keeps the backward scan's launch of today's rule
for the float32 accumulator (8 chunks side by side at head dim 128, 16 at 64); Acc16AllNc4 takes b17's 4 at head dim
128 (BSCAN_NC[(128, True)], measured at 4k only).
acc16_precision.py has the CPU count of what it does to dq's error against the FlashAttention rule."""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import ACC16_MAX_ENDS, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig

UNBOUNDED = 1 << 30


class Acc16All(RATGluon):
    description = "rat/gluon with dq's accumulator in 16 bits at every T (b25)"
    #: the backward scan's chunks side by side by head dim, where not today's rule's
    bscan_nc: ClassVar[dict[int, int]] = {}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if cfg.backward != "gluon_ws" or seq_len is None or math.ceil(seq_len / chunk_size) <= ACC16_MAX_ENDS:
            return cfg  # b17's range, or rat/triton's backward: rat/gluon's own
        cfg = dataclasses.replace(cfg, bwd_dq_acc16_max_ends=UNBOUNDED, bwd_dq_acc16_plain=True)
        return dataclasses.replace(cfg, bscan_nc=self.bscan_nc.get(head_dim, cfg.bscan_nc))


class Acc16AllNc4(Acc16All):
    description = "b25 with the backward scan at 4 chunks side by side at head dim 128 (b17's launch)"
    bscan_nc: ClassVar[dict[int, int]] = {128: 4}


class Acc16Plain(Acc16All):
    """b25 without the dq writer at head dim 128 too: the pre pass's zeros (in 16 bits) and every share's TMA
    reduction, where the writer's kernel cost about what the float32 zeros cost (seventeenth session, call plain on an
    H100: bwd_ws_kernel 5.31 / 4.97 ms with / without the writer at 32k, the pre pass 0.372 / 0.741; steps equal)."""

    description = "b25 with the plain backward (no dq writer, zeros in 16 bits) at head dim 128"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(cfg, bwd_dq_writer=False) if cfg.bwd_dq_acc16_plain else cfg


CANDIDATES = {"rat/gluon-acc16": Acc16All, "rat/gluon-acc16nc4": Acc16AllNc4, "rat/gluon-acc16plain": Acc16Plain}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=acc16_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
