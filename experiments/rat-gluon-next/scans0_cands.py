"""rat/gluon with the scans' launches before the twenty-ninth session (scan_kernel at 16 chunks side by side at every
shape, bwd_scan_kernel at 8 wherever the Gluon backward runs), registered beside rat/gluon for the harness's A/B of
`impls.rat.gluon.SCAN_NC` and `bscan_nc` (call_s29.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py
--impl rat/gluon,rat/gluon-scans0 ... --register rat/gluon-scans0=scans0_cands:Scans0`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Scans0(RATGluon):
    description = "rat/gluon with the scans' launches of GLUON_CONFIG / GLUON_BWD_CONFIG at every shape"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        if self.config is not None or None in (seq_len, chunk_size, head_dim):
            return base
        base = dataclasses.replace(base, scan_nc=GLUON_CONFIG.scan_nc)
        if base.backward != "gluon_ws":
            return base
        return dataclasses.replace(base, bscan_nc=GLUON_BWD_CONFIG.bscan_nc)


CANDIDATES = {"rat/gluon-scans0": Scans0}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=scans0_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
