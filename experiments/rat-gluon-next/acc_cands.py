"""b17 (seventeenth session): dq's accumulator in the inputs' 16-bit dtype where bwd_ws_kernel's dq writer runs and a
sequence has at most 256 chunk ends (two key blocks: a query tile gets a store and at most one addition;
RATTritonConfig.bwd_dq_acc16, True by default) against the float32 accumulator (rat/gluon-acc32), registered beside
rat/gluon for one harness run: `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl
rat/gluon,rat/gluon-acc32 ... --register rat/gluon-acc32=acc_cands:Acc32`.

Why: call S17's Nsight Compute of the 4k backward kernel (H100, 4149e1a) has it at 83% of the L2's throughput and 60%
of DRAM's, with the MMA warpgroups waiting on the writer's staging buffer; each tile's dq share is 32 KB of float32
stored or reduced through L2, as much as its q and dO loads together. 16-bit shares halve that, and the backward scan
reads 1 U of accumulator instead of 2 (U = one 16-bit token tensor, 0.128 ms at the H200's copy rate)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Acc32(RATGluon):
    description = "rat/gluon with the float32 dq accumulator everywhere (bwd_dq_acc16=False, acc_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_dq_acc16=False)


def main() -> None:
    """Print the --register flag."""
    print("--register rat/gluon-acc32=acc_cands:Acc32  # bwd_dq_acc16=False")


if __name__ == "__main__":
    main()
