"""f20h (twentieth session): fwd_ws_kernel's persistent CTAs take the 128-row tiles of a group of heads side by side,
longest first across the group (RATTritonConfig.fwd_head_group), instead of one head at a time: rat/gluon-hg4, -hg8
and -hg16 against rat/gluon, registered beside it for one harness run (call_hg.sh): `PYTHONPATH=.:experiments/
rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-hg8 ... --register rat/gluon-hg8=hg_cands:HG8`.

Why (the count, host model in the class docstring of HG8): with each head's tiles longest first and the snake dealing
them out, a wave that crosses from one head into the next mixes the longest tiles of one head with the shortest of
the other. With per-tile costs of 2.8-3.7 us plus 1.57 us per key block (the eighteenth session's fit of the H200
profile) the most loaded CTA carries 1.0 / 2.4 / 1.4% more than the mean at 4k / 32k / 128k; with groups of 8 heads
1.0 / 0.7 / 0.14%, of 16 heads 0.8 / 0.4 / 0.05%. The cost: the chunk ends of the group's heads are read at the
same time (8 heads at 128k: 32 MB against the L2's 50). The group is a constexpr power of two (fwd_ws_kernel's HG),
so that the tile's head and row take one division per tile, by the row tiles per head, as in main."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _HeadGroup(RATGluon):
    group = 1

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_head_group=self.group)


class HG4(_HeadGroup):
    description = "rat/gluon with the forward's tiles dealt out 4 heads at a time (fwd_head_group=4, hg_cands.py)"
    group = 4


class HG8(_HeadGroup):
    description = "rat/gluon with the forward's tiles dealt out 8 heads at a time (fwd_head_group=8, hg_cands.py)"
    group = 8


class HG16(_HeadGroup):
    description = "rat/gluon with the forward's tiles dealt out 16 heads at a time (fwd_head_group=16, hg_cands.py)"
    group = 16
