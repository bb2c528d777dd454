"""b25, rat/gluon's dq accumulator in 16 bits beyond two key blocks (thirty-fourth session), registered for its
measurement (call_b25.sh): `--register rat/gluon-acc16=acc16_cands:Acc16All`.

Where rat/gluon runs the dq writer (head dim 128 at every T; head dim 64 up to 256 chunk ends, where b17 has the
16-bit accumulator already), the accumulator is in the inputs' 16-bit dtype at every T
(RATTritonConfig.bwd_dq_acc16_max_ends unbounded): bwd_ws_kernel's shares staged and reduced in 16 bits, the backward
scan reading 1 U instead of 2. Acc16All keeps the backward scan's launch of today's rule for the float32 accumulator
(8 chunks side by side at head dim 128); Acc16AllNc4 takes b17's 4 (BSCAN_NC[(128, True)], measured at 4k only).
acc16_precision.py has the CPU count of what it does to dq's error against the FlashAttention rule."""
from __future__ import annotations

import dataclasses
import math

import torch

from ratbench.impls.rat.gluon import ACC16_MAX_ENDS, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig

UNBOUNDED = 1 << 30


class Acc16All(RATGluon):
    description = "rat/gluon with dq's accumulator in 16 bits at every T where the dq writer runs (b25)"
    bscan_nc: int | None = None

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if not cfg.bwd_dq_writer or seq_len is None or math.ceil(seq_len / chunk_size) <= ACC16_MAX_ENDS:
            return cfg  # b17's range (or no writer): rat/gluon's own
        cfg = dataclasses.replace(cfg, bwd_dq_acc16_max_ends=UNBOUNDED)
        return cfg if self.bscan_nc is None else dataclasses.replace(cfg, bscan_nc=self.bscan_nc)


class Acc16AllNc4(Acc16All):
    description = "b25 with the backward scan at 4 chunks side by side (b17's launch)"
    bscan_nc = 4


CANDIDATES = {"rat/gluon-acc16": Acc16All, "rat/gluon-acc16nc4": Acc16AllNc4}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=acc16_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
