"""rat/gluon with the backward scan's launch before the twenty-ninth session (8 chunks side by side at every shape where
the Gluon backward runs), registered beside rat/gluon for the harness's A/B of `impls.rat.gluon.bscan_nc`
(call_s29.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-bscan8 ...
--register rat/gluon-bscan8=bscan_cands:Bscan8`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Bscan8(RATGluon):
    description = "rat/gluon with bwd_scan_kernel at 8 chunks side by side wherever its Gluon backward runs"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if base.backward != "gluon_ws":
            return base
        return dataclasses.replace(base, bscan_nc=GLUON_BWD_CONFIG.bscan_nc)


CANDIDATES = {"rat/gluon-bscan8": Bscan8}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=bscan_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
