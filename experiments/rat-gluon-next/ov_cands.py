"""rat/gluon with its scans on a second CUDA stream beside the attention kernels, by batch groups
(RATTritonConfig.stream_groups, impls/rat/gluon/streams.py), as implementations of their own for one harness run
beside rat/gluon: `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-ov4 ...
--register rat/gluon-ov4=ov_cands:Ov4` (all flags: `python experiments/rat-gluon-next/ov_cands.py`).
- Ov4: up to 4 groups, fwd_ws_kernel 16 multiprocessors short while scans are pending, side stream at the
  caller's priority; Ov4hi: the side stream at high priority; Ov2: up to 2 groups; Ov4r32: 32 short."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _Candidate(RATGluon):
    fields: ClassVar[dict] = {}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class Ov4(_Candidate):
    description = "rat/gluon, scans on a second stream, 4 batch groups (ov_cands.py)"
    fields: ClassVar[dict] = {"stream_groups": 4}


class Ov4hi(_Candidate):
    description = "rat/gluon, scans on a second stream at high priority, 4 batch groups (ov_cands.py)"
    fields: ClassVar[dict] = {"stream_groups": 4, "stream_priority": -1}


class Ov2(_Candidate):
    description = "rat/gluon, scans on a second stream, 2 batch groups (ov_cands.py)"
    fields: ClassVar[dict] = {"stream_groups": 2}


class Ov4r32(_Candidate):
    description = "rat/gluon, scans on a second stream, 4 batch groups, 32 multiprocessors left (ov_cands.py)"
    fields: ClassVar[dict] = {"stream_groups": 4, "stream_reserve": 32}


def main() -> None:
    """Print the --register flags, one per line, with each candidate's fields."""
    for cls in (Ov4, Ov4hi, Ov2, Ov4r32):
        print(f"--register rat/gluon-{cls.__name__.lower()}=ov_cands:{cls.__name__}  # {cls.fields}")


if __name__ == "__main__":
    main()
