"""b19 (twenty-first session): bwd_ws_kernel's grid ends on short items. Its CTAs take the rows of one table
(items.work_table: head, key block, first row, tiles), heads in turn; the last bwd_tail_heads heads are cut into items
of 32 query tiles instead of launch_backward's seg (128 from 2048 chunk ends per head on). Registered beside
rat/gluon for one call (call_b19.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl
rat/gluon,rat/gluon-tail2 ... --register rat/gluon-tail2=tail_cands:Tail2`.

Why (the count, NOTES.md "Twenty-first session"): at 32k, L 16 the backward's 2,560 items of seg 128 are mostly 128 tiles
(about 0.3 ms each on the H200) and each SM runs about 19 of them, so the SMs of the last wave finish up to one item
apart. A list-scheduling model (132 SMs, an item costs its tiles plus 3 tiles of overhead, CTAs in grid order)
puts the grid's end 3.0% after the mean SM's at 32k and 0.7% at 128k; with the last two heads in items of 32 tiles,
0.5% and 0.3%. The 32k training step is 230 us over its target on the H200 and its backward kernel about 5 ms: a
2.5% tail is about 120 us."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Tail2(RATGluon):
    description = "rat/gluon with the backward's last 2 heads in items of 32 tiles (bwd_tail_heads=2, b19; tail_cands.py)"
    heads = 2
    walk = "off"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_tail_heads=self.heads, fwd_walk=self.walk)


class Tail1(Tail2):
    description = "rat/gluon with the backward's last head in items of 32 tiles (bwd_tail_heads=1, b19; tail_cands.py)"
    heads = 1


class Tail4(Tail2):
    description = "rat/gluon with the backward's last 4 heads in items of 32 tiles (bwd_tail_heads=4, b19; tail_cands.py)"
    heads = 4


class WalkTail(Tail2):
    description = "rat/gluon with f21b (the prefill's tiles stepped by adds) and b19 (tail 2): the call's check"
    walk = "prefill"
