"""rat/gluon's D 64 forward with three consumer warpgroups (f25, RATTritonConfig.fwd_wgs 3: 192-row query tiles,
FA3's tile at head dim 64, where the softmax's MUFU work per key block is about as long as the block's products and
two warpgroups cannot hide one's softmax under the other's products), registered beside rat/gluon for the harness's
gate rounds (call_s30.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl
rat/gluon,rat/gluon-wg3,rat/gluon-wg3e0 ... --register rat/gluon-wg3=wg3_cands:Wg3 --register
rat/gluon-wg3e0=wg3_cands:Wg3Ep0`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Wg3(RATGluon):
    description = "rat/gluon with three consumer warpgroups in the D 64 forward (192-row tiles; f23's keep two)"
    exp_poly: int | None = None  # None: rat/gluon's share of polynomial exponentials

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if self.exp_poly is None:
            return dataclasses.replace(base, fwd_wgs=3)
        return dataclasses.replace(base, fwd_wgs=3, fwd_exp_poly=self.exp_poly, fwd_exp_poly_train=None)


class Wg3Ep0(Wg3):
    description = "Wg3 with every exponential of the D 64 forward on the MUFU (training too)"
    exp_poly = 0


class Wg3Nx(Wg3):
    description = "Wg3 without f23's consumers (three warpgroups in the D 64 prefill at every T)"

    def _config(self, *a, **kw) -> RATTritonConfig:
        return dataclasses.replace(super()._config(*a, **kw), fwd_cross_tile=False)


CANDIDATES = {"rat/gluon-wg3": Wg3, "rat/gluon-wg3e0": Wg3Ep0, "rat/gluon-wg3nx": Wg3Nx}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=wg3_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
