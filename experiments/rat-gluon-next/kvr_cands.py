"""b21 (K_w and V_w in registers in the D 64 backward, RATTritonConfig.bwd_kv_regs), b22 (with it, the warpgroups
taking turns at a query tile's whole dq share, bwd_dq_owner) and b23 (the same at head dim 128 in two halves) against
rat/gluon, registered for the harness's gate
rounds (call_s31.sh, call_s31b.sh): `PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl
rat/gluon,rat/gluon-kvr ... --register rat/gluon-kvr=kvr_cands:KvRegs`."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class KvRegs(RATGluon):
    description = "rat/gluon with K and V in registers in the D 64 backward (b21)"
    owner = False

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        on = head_dim == 64 and base.backward == "gluon_ws"
        return dataclasses.replace(base, bwd_kv_regs=on, bwd_dq_owner=on and self.owner)


class Owner(KvRegs):
    description = "rat/gluon with b21 and the D 64 backward's dq shares by owners (b22)"
    owner = True


class Owner3(Owner):
    description = "rat/gluon with b21, b22 and three ring entries in the D 64 backward"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(cfg, bwd_ws_stages=3 if cfg.bwd_dq_owner else cfg.bwd_ws_stages)


class Owner128(RATGluon):
    description = "rat/gluon with the D 128 backward's dq shares by owners, two halves each (b23)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        on = head_dim == 128 and base.backward == "gluon_ws" and base.bwd_dq_writer
        return dataclasses.replace(base, bwd_dq_owner=on)


class OwnerW(Owner):
    description = "rat/gluon with b21, b22 and the dq writer (no zeros from the pre pass) in the D 64 backward"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        cfg = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(cfg, bwd_dq_writer=cfg.bwd_dq_writer or cfg.bwd_dq_owner)


CANDIDATES = {"rat/gluon-kvr": KvRegs, "rat/gluon-own": Owner, "rat/gluon-own3": Owner3, "rat/gluon-o128": Owner128,
              "rat/gluon-ownw": OwnerW}


def main() -> None:
    """Each candidate's `--register` argument."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=kvr_cands:{cls.__name__}  {cls.description}")


if __name__ == "__main__":
    main()
