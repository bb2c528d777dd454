"""pp (sixteenth session, branch pp): rat/gluon with the forward's two consumer warpgroups taking turns issuing their
products (RATTritonConfig.fwd_pingpong, FA3's ping-pong), registered beside rat/gluon for one harness run:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-pp ... --register
rat/gluon-pp=pp_cands:PingPong`.

Why: at head dim 64 a key block's softmax (8192 exponentials per warpgroup at 16 per clock per multiprocessor, the
rest on the FMA pipe) takes about as long as its two products, and the two warpgroups run in step, so both softmaxes
compete for the MUFU while the tensor cores idle, then both products queue (NOTES "Sixteenth session"). v2 measured
ping-pong at head dim 128 only, on a kernel four versions older (slower at 128k, -5% for the kernel at 32k)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class PingPong(RATGluon):
    description = "rat/gluon with the forward's consumer warpgroups taking turns (fwd_pingpong, pp_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_pingpong=True)


def main() -> None:
    """Print the --register flag (branch pp: RATTritonConfig has fwd_pingpong)."""
    print("--register rat/gluon-pp=pp_cands:PingPong  # fwd_pingpong=True")


if __name__ == "__main__":
    main()
