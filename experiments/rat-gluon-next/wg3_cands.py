"""f25 (three consumer warpgroups in the D 64 forward, RATTritonConfig.fwd_wgs) against rat/gluon, which takes them in
the prefill beyond f23 (impls.rat.gluon.prefill_wgs3_used): Wg3T with them in the training forward too, Wg2 without
them anywhere (the prefill as before f25), registered for the harness's gate rounds (call_s30c.sh):
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-wg3t ...
--register rat/gluon-wg3t=wg3_cands:Wg3T --register rat/gluon-wg2=wg3_cands:Wg2`. The first candidates (Wg3, Wg3Ep0,
Wg3Nx: calls s30 and s30b) are at acc6d72."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _Wgs(RATGluon):
    wgs = 2
    wgs_train: int | None = None

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        wgs = base.fwd_wgs if self.wgs is None else self.wgs
        return dataclasses.replace(base, fwd_wgs=wgs, fwd_wgs_train=self.wgs_train)


class Wg3T(_Wgs):
    description = "rat/gluon with three consumer warpgroups in the D 64 training forward too"
    wgs = None  # the prefill as rat/gluon's
    wgs_train = 3


class Wg2(_Wgs):
    description = "rat/gluon with two consumer warpgroups everywhere (the D 64 prefill as before f25)"
    wgs = 2
    wgs_train = None


CANDIDATES = {"rat/gluon-wg3t": Wg3T, "rat/gluon-wg2": Wg2}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=wg3_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
