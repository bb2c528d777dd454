"""f23 and f24 (twenty-seventh session), registered beside rat/gluon for one call (call_s27.sh):
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-xt ... --register
rat/gluon-xt=xt_cands:CrossTile`.

f24 (RATTritonConfig.fwd_masked_first): the loader brings a tile's last key block, its only masked one where 128 is a
multiple of L, first; the consumer masks that first block and runs the others in one loop without a mask. main's
consumer has three copies of the softmax (block 0 masked by a runtime test, an unmasked loop, a masked loop: f7);
f24 has two, so fwd_ws_kernel's prefill launch at head dim 128 has 5,040 SASS instructions against 6,408 (sm_90,
triton 3.7.1), the training launch likewise, with the same work per block.
f23 (RATTritonConfig.fwd_cross_tile, prefill only, with f24's order): impls/rat/gluon/xt.py, each consumer warpgroup
issues the previous tile's last P V before this tile's RoPE of q, and runs the previous tile's epilogue under this
tile's first S (in the SASS: the carried P V's HGMMA, then RoPE's shared loads, FMAs and stores with no wait between;
the first S's HGMMA, its wait for the P V, then the epilogue's stores and TMA store before the wait for S). 5,840
instructions, no spills, the wgmma pipelined (10 of 80 HGMMA close a group), 229,768 bytes of shared memory (three
q buffers).
The count (NOTES.md "Twenty-seventh session"): the forward's per-tile cost is about 2.9 us against 1.5 us per key
block (H200 fit to 4k and 32k prefill); the overlap hides up to one P V and one S of the boundary (about 0.6 us per
tile at 1.75 GHz), so at most -11% of the 4k prefill's forward (124 tiles per CTA)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class CrossTile(RATGluon):
    description = "rat/gluon with f23: the prefill's tile boundary under the next tile's RoPE and first S (and f24)"
    fields: ClassVar[dict] = {"fwd_cross_tile": 2}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class MaskedFirst(CrossTile):
    description = "rat/gluon with f24: a tile's masked key block first, the others in one unmasked loop"
    fields: ClassVar[dict] = {"fwd_masked_first": True}


class CrossEpilogue(CrossTile):
    description = "rat/gluon with f23b: the prefill's epilogue under the next tile's first S (and f24)"
    fields: ClassVar[dict] = {"fwd_cross_tile": 1}


class Stages3(CrossTile):
    description = "rat/gluon with a ring of three K / V entries (head dim 64: it fits there only)"
    fields: ClassVar[dict] = {"fwd_stages": 3}


class CrossTile3(CrossTile):
    description = "rat/gluon with f23 and a ring of three entries (head dim 64)"
    fields: ClassVar[dict] = {"fwd_cross_tile": 2, "fwd_stages": 3}


class CrossTileNoAhead(CrossTile):
    description = "rat/gluon with f23, RoPE's tables loaded at each tile's start (under the carried P V)"
    fields: ClassVar[dict] = {"fwd_cross_tile": 4}


class CrossEpilogueNoAhead(CrossTile):
    description = "rat/gluon with f23b, RoPE's tables loaded at each tile's start"
    fields: ClassVar[dict] = {"fwd_cross_tile": 3}


class CrossTileNoAhead3(CrossTile):
    description = "rat/gluon with f23, RoPE's tables at each tile's start, three ring entries (head dim 64)"
    fields: ClassVar[dict] = {"fwd_cross_tile": 4, "fwd_stages": 3}


CANDIDATES = {"rat/gluon-xtn": CrossTileNoAhead, "rat/gluon-xen": CrossEpilogueNoAhead,
              "rat/gluon-xtn3": CrossTileNoAhead3, "rat/gluon-xt": CrossTile, "rat/gluon-mf": MaskedFirst, "rat/gluon-xe": CrossEpilogue,
              "rat/gluon-s3": Stages3, "rat/gluon-xt3": CrossTile3}


def main() -> None:
    """Each candidate's `--register` argument and the config fields it sets (what the calls' REG lines name)."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=xt_cands:{cls.__name__}  {cls.fields}  {cls.description}")


if __name__ == "__main__":
    main()
