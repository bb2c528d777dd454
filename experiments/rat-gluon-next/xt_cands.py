"""rat/gluon without f23 (its prefill consumers with the tile boundary overlapped: impls/rat/gluon/xt.py, taken where
`cross_tile_used`), registered beside rat/gluon for the call that measures the adoption (call_s27e.sh):
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-noxt ... --register
rat/gluon-noxt=xt_cands:NoCrossTile`. The candidates measured before the adoption (f23's variants and f24, the masked
key block first on its own) are in git at 0d856c3 (this file and call_s27*.sh there)."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class NoCrossTile(RATGluon):
    description = "rat/gluon with main's prefill consumers at every shape (f23 off)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_cross_tile=False, fwd_xt_stages=2)


CANDIDATES = {"rat/gluon-noxt": NoCrossTile}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=xt_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
