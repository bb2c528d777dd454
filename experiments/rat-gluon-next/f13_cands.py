"""f13 (branch f13: f12's fused.py back, with each tile's own chunk ends read from its self entry, and a per-head
tile order; not measured yet): rat/gluon with the forward scan inside the attention kernel (impls/rat/gluon/fused.py,
RATTritonConfig.fwd_fused), registered beside rat/gluon for one harness run: `PYTHONPATH=.:experiments/rat-gluon-next
python run_bench.py --impl rat/gluon,rat/gluon-f13,rat/gluon-f13h ... --register rat/gluon-f13=f13_cands:Fused
--register rat/gluon-f13h=f13_cands:FusedHeads`.

Why f13 after f12 (call O: f12 slower everywhere, prefill 4k 2.24 against 1.31 ms): every f12 tile's last key block
held its own chunk ends, so the loader waited for the tile's own scan, its flag's release and a load back from L2
before the tile's last product, and in f12's order the earlier tiles of a head ran at the same time on other CTAs.
f13 takes the own chunk ends from the self entry in shared memory (one more 64 x 128 block per warpgroup), and
FusedHeads gives each CTA whole heads, tiles in order, so no tile waits for another CTA (B*H >= 2 x SMs: 4k).

Why (impls/rat/gluon/NOTES.md, "Thirteenth session"): scan_kernel and fwd_ws_kernel move 8 U in the prefill and 10 U
in the training forward (U = one 16-bit token tensor, 0.54 GB at 131,072 tokens, H 16, D 128); the fused kernel moves
5 U and 8 U. At 4k the prefill is memory: scans 0.655 + forward 0.643 ms on the H200 (call C's profile)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Fused(RATGluon):
    description = "rat/gluon with the forward scan inside the attention kernel (f13, f13_cands.py)"
    group = 1
    stages = 0  # 0: rat/gluon's fwd_stages

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        cfg = dataclasses.replace(base, fwd_fused=True, fwd_fused_group=self.group)
        return dataclasses.replace(cfg, fwd_stages=self.stages) if self.stages else cfg


class FusedHeads(Fused):
    description = "f13 with whole heads per CTA, each head's tiles in order (fwd_fused_group 0)"
    group = 0


class FusedS4(Fused):
    description = "f13 with a ring of 4 entries (fwd_stages 4; head dim 64: shared memory for the next tile's loads)"
    stages = 4


class FusedHeadsS4(FusedHeads):
    description = "f13h with a ring of 4 entries (fwd_stages 4; head dim 64)"
    stages = 4


def main() -> None:
    """Print the --register flags (branch f13: RATTritonConfig has fwd_fused)."""
    print("--register rat/gluon-f13=f13_cands:Fused  # fwd_fused=True")
    print("--register rat/gluon-f13h=f13_cands:FusedHeads  # fwd_fused=True, fwd_fused_group=0")


if __name__ == "__main__":
    main()
