"""b14 (b14.patch applied; not measured yet): rat/gluon with the dq shares' staging ring at two slots
(bwd_dq_depth = 2), registered beside rat/gluon for one harness run: `PYTHONPATH=.:experiments/rat-gluon-next python
run_bench.py --impl rat/gluon,rat/gluon-d2 ... --register rat/gluon-d2=b14_cands:Depth2`.

Why: since the twelfth session rat/gluon runs the dq writer at head dim 128 at every T. Where a query tile sees many
key blocks (32k, 128k) the other blocks' items reach each tile together with key block 0's and their writer warp
waits on its store-first flag; with one staging buffer per MMA warpgroup the warpgroup then waits for the writer
before it can stage its next share. On an H100 (call C2) bwd_ws_kernel took 5.40 ms with the writer against 4.96
without at 32k. With two slots a warpgroup stages tile i + 1's share while the writer still waits on tile i's flag.
Shared memory 230,864 bytes of 232,448; spill instructions 25 -> 41 (triton 3.7.1), 24 -> 53 (3.6.0)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Depth2(RATGluon):
    description = "rat/gluon with two dq staging slots for the writer warp (b14.patch, b14_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_dq_depth=2) if base.bwd_dq_writer else base


def main() -> None:
    """Print the --register flag and the field it sets (b14.patch applied: RATTritonConfig has bwd_dq_depth)."""
    print("--register rat/gluon-d2=b14_cands:Depth2  # bwd_dq_depth=2 where rat/gluon runs the dq writer")


if __name__ == "__main__":
    main()
