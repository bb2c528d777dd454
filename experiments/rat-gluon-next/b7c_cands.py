"""b7c.patch's backward versions as implementations of their own, for one harness run beside rat/gluon (needs
experiments/rat-gluon-next/b7c.patch applied): rat/gluon with the fields below replaced. Registered from the command
line, `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-b7c ...
--register rat/gluon-b7c=b7c_cands:B7c` (all flags: `python experiments/rat-gluon-next/b7c_cands.py`).
- B7c: b7b's store-first dq accumulator with the flags handled by a dq writer warp (the eighth session's H100: 11%
  faster than main's backward at 4k train, 5% / 14% slower at 32k / 128k; NOTES.md "Eighth session");
- B7b: the store-first accumulator without the writer warp;
- Writer: the writer warp alone (the pre pass zeroes the accumulator, as main).
call_d.sh measures them between 4k and 32k, where the crossover that a rule by T would need lies."""
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


class B7c(_Candidate):
    description = "rat/gluon with b7b's store-first dq and a dq writer warp (b7c.patch, b7c_cands.py)"
    fields: ClassVar[dict] = {"bwd_store_first": True, "bwd_dq_writer": True}


class B7b(_Candidate):
    description = "rat/gluon with b7b's store-first dq (b7c.patch, b7c_cands.py)"
    fields: ClassVar[dict] = {"bwd_store_first": True}


class Writer(_Candidate):
    description = "rat/gluon with a dq writer warp, the accumulator zeroed as main's (b7c.patch, b7c_cands.py)"
    fields: ClassVar[dict] = {"bwd_dq_writer": True}


def main() -> None:
    """Print the --register flags, one per line, with each candidate's fields."""
    for name, cls in (("b7c", B7c), ("b7b", B7b), ("writer", Writer)):
        print(f"--register rat/gluon-{name}=b7c_cands:{cls.__name__}  # {cls.fields}")


if __name__ == "__main__":
    main()
