"""b12's backward scan (RATTritonConfig.bscan_form: bwd_scan_form_kernel forms each chunk's kt, vt from k, v, f in
registers instead of reading the forward's per-token states, 2 U less) as implementations of their own, for one
harness run beside rat/gluon: rat/gluon with the fields below. Registered from the command line,
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-form48 ...
--register rat/gluon-form48=form_cands:Form48` (all flags: `python experiments/rat-gluon-next/form_cands.py`).
Names: form<chunks per program><warps>."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.config import RATTritonConfig
from ratbench.impls.rat.gluon import RATGluon


class _Candidate(RATGluon):
    fields: ClassVar[dict] = {}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class Form48(_Candidate):
    description = "rat/gluon, backward scan forming kt, vt: 4 chunks, 8 warps (form_cands.py)"
    fields: ClassVar[dict] = {"bscan_form": True, "bscan_form_nc": 4, "bscan_form_warps": 8}


class Form44(_Candidate):
    description = "rat/gluon, backward scan forming kt, vt: 4 chunks, 4 warps (form_cands.py)"
    fields: ClassVar[dict] = {"bscan_form": True, "bscan_form_nc": 4, "bscan_form_warps": 4}


class Form24(_Candidate):
    description = "rat/gluon, backward scan forming kt, vt: 2 chunks, 4 warps (form_cands.py)"
    fields: ClassVar[dict] = {"bscan_form": True, "bscan_form_nc": 2, "bscan_form_warps": 4}


class Form88(_Candidate):
    description = "rat/gluon, backward scan forming kt, vt: 8 chunks, 8 warps (form_cands.py)"
    fields: ClassVar[dict] = {"bscan_form": True, "bscan_form_nc": 8, "bscan_form_warps": 8}


CANDIDATES = {"form48": Form48, "form44": Form44, "form24": Form24, "form88": Form88}


def main() -> None:
    """Print the --register flags, one per line, with each candidate's fields."""
    for name, cls in CANDIDATES.items():
        print(f"--register rat/gluon-{name}=form_cands:{cls.__name__}  # {cls.fields}")


if __name__ == "__main__":
    main()
