"""next.patch's backward versions as implementations of their own, for one harness run that measures them side by
side (needs next.patch applied): rat/gluon at the patch's defaults with the fields below replaced, at every shape
(the rule that picks the Gluon backward, `gluon_backward_used`, stays rat/gluon's but for B7c10). Registered from
the command line:
`PYTHONPATH=.:experiments/rat-gluon-next python run_bench.py --impl 'rat/gluon*' --register rat/gluon-b7b=cands:B7b
--register rat/gluon-b9=cands:B9 ...` (all of them: `python experiments/rat-gluon-next/cands.py`)
- B7b: b7b without b9 (bwd_split_masked off);
- B9: b9 without b7b (bwd_store_first off: the pre pass zeroes dq's accumulator, b4's item order);
- FwdOnly: neither (bwd_ws_kernel and its passes as main's; the patch's forward versions f5 and f6-f8 only);
- B7c: b7b's flags handled by a dq writer warp (bwd_dq_writer), without b9;
- B7c10: B7c with b10 (a warpgroup's products skipped on the tiles that see none of its keys, bwd_skip_hidden), and
  the Gluon backward at every shape (rat/gluon takes rat/triton's at L 64 below 16k, where b10 skips most);
- B7c10b8: B7c10 with b8 (fwd_self_logit "always", bscan_recompute: no RoPE_c(kt) per row in training, the
  backward scan forms kt again; L up to 32), never measured so far;
- B7c11: B7c with b11 (bwd_pipe_s: each tile's S^T issued during the previous tile; head dim 64 only);
- Writer: the dq writer warp without b7b and b9 (the pre pass zeroes the accumulator, as main);
- MainLike: every version off (main's kernels), the same run's baseline.
`python experiments/rat-gluon-next/cands.py` prints the --register flags. The winner's fields become rat/gluon's
defaults (impls/rat/config.py) before the harness run that is committed as the product's."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class _Candidate(RATGluon):
    fields: ClassVar[dict] = {}

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, **self.fields)


class B7b(_Candidate):
    description = "rat/gluon with b7b and without b9 (next.patch, experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_split_masked": False}


class B9(_Candidate):
    description = "rat/gluon with b9 and without b7b (next.patch, experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_store_first": False}


class FwdOnly(_Candidate):
    description = "rat/gluon with next.patch's forward versions only (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_store_first": False, "bwd_split_masked": False}


class B7c(_Candidate):
    description = "rat/gluon with b7b's flags in a dq writer warp, without b9 (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_dq_writer": True, "bwd_split_masked": False}


class B7c10(_Candidate):
    description = ("rat/gluon with b7c and b10's skipped warpgroup tiles, without b9 "
                   "(experiments/rat-gluon-next/cands.py)")
    fields: ClassVar[dict] = {**B7c.fields, "bwd_skip_hidden": True, "backward": GLUON_BWD_CONFIG.backward,
                              "bscan_nc": GLUON_BWD_CONFIG.bscan_nc}


class B7c10b8(_Candidate):
    description = "rat/gluon with b7c, b10 and b8, without b9 (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {**B7c10.fields, "fwd_self_logit": "always", "bscan_recompute": True}


class B7c11(_Candidate):
    description = "rat/gluon with b7c and b11's S^T a tile ahead at head dim 64 (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {**B7c.fields, "bwd_pipe_s": True}


class Writer(_Candidate):
    description = "rat/gluon with a dq writer warp, without b7b and b9 (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_dq_writer": True, "bwd_store_first": False, "bwd_split_masked": False}


class MainLike(_Candidate):
    description = "rat/gluon with every next.patch version off: main's kernels (experiments/rat-gluon-next/cands.py)"
    fields: ClassVar[dict] = {"bwd_store_first": False, "bwd_split_masked": False, "fwd_self_logit": "off",
                              "fwd_split_masked": False, "fwd_row_tree": 0, "fwd_exp_poly": 0}


CANDIDATES = {"rat/gluon-b7b": B7b, "rat/gluon-b9": B9, "rat/gluon-fwd": FwdOnly, "rat/gluon-b7c": B7c,
              "rat/gluon-b7c10": B7c10, "rat/gluon-b7c10b8": B7c10b8,
              "rat/gluon-b7c11": B7c11, "rat/gluon-writer": Writer, "rat/gluon-main": MainLike}


def main() -> None:
    """The --register flags of the candidates (PYTHONPATH must hold experiments/rat-gluon-next), one per line."""
    for name, cls in CANDIDATES.items():
        print(f"--register {name}=cands:{cls.__name__}  # {cls.fields}")


if __name__ == "__main__":
    main()
