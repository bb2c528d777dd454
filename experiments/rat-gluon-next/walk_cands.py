"""f21 (twentieth session): fwd_ws_kernel's CTAs step from tile to tile by adds and selects, with the snake's two
steps taken apart once per CTA on the host (forward.walk_table), instead of integer divisions per tile
(RATTritonConfig.fwd_walk): rat/gluon-walk against rat/gluon, registered beside it for one harness run
(call_walk.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-walk ...
--register rat/gluon-walk=walk_cands:Walk`.

Why (the count): in main's sm_90 SASS each consumer's tile loop holds three full 32-bit divisions by kernel
arguments (I2F.RP, MUFU.RCP, F2I and the fix-ups: the tile's place by NT, the next tile's tables' by NT, the
epilogue's head by H), and the loader's two; ptxas recomputes each reciprocal per tile. Call hg (1c72749, H100) added
two more per tile with a divisor that changes per tile and lost 25 us in the 4k prefill's forward (0.704 -> 0.729
ms): about 12 us per division per tile over the 124 tiles of a CTA. The 4k prefill is 12 us over its target on the
H200. Call walk (018b738) measured "always": the prefill's forward 22 us faster at 4k, the training forward 8-11%
slower (its launch spills 10 instructions with the walk): f21b walks in the prefill only (rat/gluon-walkp,
call_walk2.sh)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Walk(RATGluon):
    description = "rat/gluon with the forward's tiles stepped by adds (fwd_walk='always', f21; walk_cands.py)"
    walk = "always"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_walk=self.walk)


class WalkPrefill(Walk):
    description = ("rat/gluon with the prefill's tiles stepped by adds, the training forward as main's "
                   "(fwd_walk='prefill', f21b; walk_cands.py)")
    walk = "prefill"
