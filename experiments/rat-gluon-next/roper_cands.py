"""f17 (eighteenth session): q rotated by a partition of fwd_ws_kernel of its own (_roper, two warps of the loader's
warpgroup that sat idle), from the rows of RoPE's cos and sin tables that TMA brings with q, a tile ahead of the
consumer warpgroups (RATTritonConfig.fwd_roper), against rat/gluon, registered beside it for one harness run:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-roper ... --register
rat/gluon-roper=roper_cands:Roper`.

Why: the forward's time per tile beyond its key blocks is about 2.8 us in the prefill and 3.7 us in training on the
H200 (call C's profile: 4k / 32k / 128k), 0.35 ms of the 4k prefill's 0.64 and 0.46 ms of the 32k training forward's
2.11; RoPE of q (cos / sin loads, the rotation, the store back and the fence) is the first part of that path."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Roper(RATGluon):
    description = "rat/gluon with RoPE(q) in a partition of its own (fwd_roper=True, roper_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_roper=True)


def main() -> None:
    """Print the --register flag."""
    print("--register rat/gluon-roper=roper_cands:Roper  # fwd_roper=True")


if __name__ == "__main__":
    main()
