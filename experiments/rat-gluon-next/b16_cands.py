"""b16 (seventeenth session): bwd_ws_kernel's dq writer setting a tile's store-first flags once the next tile's stores
are issued (RATTritonConfig.bwd_flag_lag, True by default), against the writer before it, which waited for each
tile's writes to reach global memory before its next tile. rat/gluon-b16off is rat/gluon with bwd_flag_lag=False;
rat/gluon-seg32 has b16 and work items of 32 query tiles (bwd_seg=32). Registered beside rat/gluon for one run:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-b16off ... --register
rat/gluon-b16off=b16_cands:B16Off --register rat/gluon-seg32=b16_cands:Seg32`.

Why: call b15 (H100, c65ec14) found bwd_ws_kernel at 4k no faster when one MMA warpgroup ran no products at all (L 64,
4k: 0.939 against 0.931 ms), so at 4k the kernel is not bound by its products; items of 32 tiles (seg 32), which split
key block 0's 64-tile item into two that run side by side, were 4.7% faster (1.23 against 1.29 ms). Key block 0's
items store their dq shares first and every other item waits for their flags; the writer of a store-first item
waited, per tile, for its two stores to be written to global memory (cp.async.bulk.wait_group 0) before it took the
next tile, so one write latency per tile bounded key block 0's items, and through the flags the others."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _Variant(RATGluon):
    fields: ClassVar[dict] = {}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class B16Off(_Variant):
    description = "rat/gluon with the dq writer flagging each tile once its writes are done (bwd_flag_lag=False)"
    fields: ClassVar[dict] = {"bwd_flag_lag": False}


class Seg32(_Variant):
    description = "rat/gluon with bwd_ws_kernel's work items of 32 query tiles (bwd_seg=32)"
    fields: ClassVar[dict] = {"bwd_seg": 32}


def main() -> None:
    """Print the --register flags."""
    print("--register rat/gluon-b16off=b16_cands:B16Off --register rat/gluon-seg32=b16_cands:Seg32")


if __name__ == "__main__":
    main()
