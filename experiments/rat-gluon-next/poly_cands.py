"""rat/gluon's D 64 forward with another share of its softmax's exponentials on the FMA pipe (f6,
RATTritonConfig.fwd_exp_poly: one in 8 by default; 4 and 0 were emulated in the fifth session and never timed on a
GPU), registered beside rat/gluon for the harness's A/B (call_s29b.sh at eb6b2a2, call_s29c.sh): `PYTHONPATH=.:experiments/rat-gluon-next
python run_bench.py --impl rat/gluon,rat/gluon-ep4,rat/gluon-ep0 ... --register rat/gluon-ep4=poly_cands:Ep4
--register rat/gluon-ep0=poly_cands:Ep0`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _Poly(RATGluon):
    exp_poly = 8

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_exp_poly=self.exp_poly)


class Ep4(_Poly):
    description = "rat/gluon with one in 4 of the forward's exponentials by polynomial (head dim 64)"
    exp_poly = 4


class Ep0(_Poly):
    description = "rat/gluon with every forward exponential on the MUFU (head dim 64)"
    exp_poly = 0


CANDIDATES = {"rat/gluon-ep4": Ep4, "rat/gluon-ep0": Ep0}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=poly_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
