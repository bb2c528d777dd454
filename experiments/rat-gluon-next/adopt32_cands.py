"""rat/gluon as it was before the thirty-second session's adoptions (f26 in the training forward off; b21 + b22 in
the D 64 backward only up to 2048 chunk ends), registered for the adoption's check against today's rat/gluon
(call_s32d.sh): `--register rat/gluon-s31=adopt32_cands:Before32`."""
from __future__ import annotations

import dataclasses
import math

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Before32(RATGluon):
    description = "rat/gluon at the thirty-first session's routes (f26 off, b21 + b22 up to 2048 chunk ends)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        cfg = dataclasses.replace(cfg, fwd_cross_tile_train=False)
        if seq_len is not None and chunk_size is not None and math.ceil(seq_len / chunk_size) > 2048:
            cfg = dataclasses.replace(cfg, bwd_kv_regs=False, bwd_dq_owner=False)
        return cfg


CANDIDATES = {"rat/gluon-s31": Before32}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=adopt32_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
