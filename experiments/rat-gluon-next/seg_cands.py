"""bwd_ws_kernel's work items of 32 query tiles up to two key blocks (256 chunk ends per head; launch_backward's rule
since the seventeenth session) against the 64 before (rat/gluon-seg64, RATTritonConfig.bwd_seg=64), registered
beside rat/gluon for one harness run: `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl
rat/gluon,rat/gluon-seg64 ... --register rat/gluon-seg64=seg_cands:Seg64`.

At 4k, L 16 (two key blocks) key block 0's item of a head covers 64 tiles and key block 1's 32; with seg 32 key block
0's is cut in two that run side by side. Calls b15 and b16 (H100) measured it as rat/gluon-seg32: bwd_ws_kernel 1.23
against 1.29 ms and 1.25 against 1.28 / 1.31."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Seg64(RATGluon):
    description = "rat/gluon with bwd_ws_kernel's work items of 64 query tiles up to 2048 chunk ends (bwd_seg=64)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_seg=64)


def main() -> None:
    """Print the --register flag."""
    print("--register rat/gluon-seg64=seg_cands:Seg64  # bwd_seg=64")


if __name__ == "__main__":
    main()


class Plain(RATGluon):
    """rat/gluon's Gluon backward without the dq writer (the pre pass zeroes the accumulator, the MMA warpgroups add
    their shares by TMA reductions): GLUON_BWD_CONFIG where rat/gluon takes GLUON_WRITER_CONFIG."""
    description = "rat/gluon with the plain Gluon backward (bwd_dq_writer=False)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, bwd_dq_writer=False)
