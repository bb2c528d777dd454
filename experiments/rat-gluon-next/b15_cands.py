"""b15 (seventeenth session): bwd_ws_kernel's per-warpgroup bounds against the kernel before them. rat/gluon has b15
(RATTritonConfig.bwd_wg_mask, True by default); rat/gluon-b15off is rat/gluon with bwd_wg_mask=False, registered
beside it for one harness run:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-b15off ... --register
rat/gluon-b15off=b15_cands:B15Off`.

What b15 changes: each MMA warpgroup of bwd_ws_kernel owns 64 of the key block's 128 chunk ends. Before b15 both took
the block's bounds: the j < c(t) mask on every query tile below (j0 + 128) L, and the products on every tile of the
item. With b15 warpgroup w masks only below (j0 + 64 w + 64) L and, on the item's last tiles where no row sees any
of its keys (t0 + 63 < (j0 + 64 w + 1) L), runs no products of its own (zeros for its half of dS^T, then its half of
dq's share) in a loop of its own. At 4k, L 16 that is a third of warpgroup 1's tiles dead and half of both
warpgroups' masked tiles unmasked; at L 64, 4k (64 chunk ends, one block) warpgroup 1 is dead on every tile.

rat/gluon-seg32 (RATTritonConfig.bwd_seg=32): work items of 32 query tiles at every T. At 4k, L 16 the items are
64 and 32 tiles long (key blocks 0 and 1, seg 64); the last CTAs to start leave multiprocessors idle for up to a long
item at the end. Items of 32 tiles shorten that tail, for 50% more CTAs (a K / V block load and dK / dV atomics
each). Predicted: bwd_ws_kernel -1 to -4% at 4k, slower at 32k / 128k (4x the items of seg 128)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class B15Off(RATGluon):
    description = "rat/gluon with bwd_ws_kernel's key-block bounds for both warpgroups (bwd_wg_mask=False, b15_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_wg_mask=False)


class Seg32(RATGluon):
    description = "rat/gluon with bwd_ws_kernel's work items of 32 query tiles (bwd_seg=32, b15_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_seg=32)


def main() -> None:
    """Print the --register flags."""
    print("--register rat/gluon-b15off=b15_cands:B15Off  # bwd_wg_mask=False")
    print("--register rat/gluon-seg32=b15_cands:Seg32  # bwd_seg=32")


if __name__ == "__main__":
    main()
