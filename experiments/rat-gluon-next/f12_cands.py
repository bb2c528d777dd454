"""f12 (f12.patch applied; not measured yet): rat/gluon with the forward scan inside the attention kernel
(impls/rat/gluon/fused.py, RATTritonConfig.fwd_fused), registered beside rat/gluon for one harness run:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-f12 ...
--register rat/gluon-f12=f12_cands:Fused` (and rat/gluon-f12g16=f12_cands:FusedGroup16).

Why (impls/rat/gluon/NOTES.md, "Thirteenth session"): scan_kernel and fwd_ws_kernel move 8 U in the prefill and 10 U
in the training forward (U = one 16-bit token tensor, 0.54 GB at 131,072 tokens, H 16, D 128); the fused kernel moves
5 U and 8 U. At 4k the prefill is memory: scans 0.655 + forward 0.643 ms on the H200 (call C's profile)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Fused(RATGluon):
    description = "rat/gluon with the forward scan inside the attention kernel (f12.patch, f12_cands.py)"
    group = 1

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_fused=True, fwd_fused_group=self.group)


class FusedGroup16(Fused):
    description = "f12 with 16 heads side by side in the tile order (fwd_fused_group 16)"
    group = 16


def main() -> None:
    """Print the --register flags (f12.patch applied: RATTritonConfig has fwd_fused)."""
    print("--register rat/gluon-f12=f12_cands:Fused  # fwd_fused=True")
    print("--register rat/gluon-f12g16=f12_cands:FusedGroup16  # fwd_fused=True, fwd_fused_group=16")


if __name__ == "__main__":
    main()
