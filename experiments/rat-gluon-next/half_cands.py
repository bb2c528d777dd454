"""f22 and b15 (twenty-second session), registered beside rat/gluon for one call (call_s22.sh):
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-half ... --register
rat/gluon-half=half_cands:Half`.

f22 (RATTritonConfig.fwd_half_last): fwd_ws_kernel takes a tile's last key block on its first 64 keys only (S and
P V of half the block) where a consumer warpgroup's last row sees none past them. The count (NOTES.md
"Twenty-second session"): a tile's last block is on average half visible, so half of the tiles can drop half of it:
0.25 of a block per tile. At 32k (16 blocks per head, 8.5 per tile on average, plus about 2.4 blocks' worth of
per-tile work) that is about 2.3% of the forward; at 128k 0.7%; at 4k (1-2 blocks per tile) up to 6% if the tile's
time is its products.
b15 (bwd_wg_mask, seventeenth session at c65ec14, ported): each MMA warpgroup of bwd_ws_kernel masks only where its
own 64 keys are partly visible and runs no products of its own on tiles where none is (warpgroup 1 on the first 16
tiles of each key block's diagonal). About 2.4% of the backward's products at 32k, 0.6% at 128k. Rejected in the
seventeenth session from rows that ran second under the power cap (its 32k kernel was 1.3% faster even so)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Half(RATGluon):
    description = "rat/gluon with f22: a tile's last key block on its first half where no row sees past it"
    fields: ClassVar[dict] = {"fwd_half_last": True}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class Wgm(Half):
    description = "rat/gluon with b15: the backward's per-warpgroup bounds"
    fields: ClassVar[dict] = {"bwd_wg_mask": True}


class HalfWgm(Half):
    description = "rat/gluon with f22 and b15"
    fields: ClassVar[dict] = {"fwd_half_last": True, "bwd_wg_mask": True}


class HalfWgmDkv(Half):
    description = "rat/gluon with f22, b15 and b20 (dK, dV's accumulators stored first, not zeroed)"
    fields: ClassVar[dict] = {"fwd_half_last": True, "bwd_wg_mask": True, "bwd_dkv_store": True}


class WgmDkv(Half):
    description = "rat/gluon with b15 and b20, without f22 (its forward crashed on an H100 in call s25)"
    fields: ClassVar[dict] = {"bwd_wg_mask": True, "bwd_dkv_store": True}


CANDIDATES = {"rat/gluon-half": Half, "rat/gluon-wgm": Wgm, "rat/gluon-hw": HalfWgm, "rat/gluon-hwd": HalfWgmDkv,
              "rat/gluon-wd": WgmDkv}


def main() -> None:
    """Each candidate's `--register` argument and the config fields it sets (what the calls' REG lines name)."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=half_cands:{cls.__name__}  {cls.fields}  {cls.description}")


if __name__ == "__main__":
    main()
