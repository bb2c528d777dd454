"""rat/gluon: RAT (docs/rat-spec.md) with the forward attention as a warp-specialized Gluon kernel for Hopper.

Same interface, scans, backward and decode state as rat/triton (impls/rat/triton.py: the config field
``forward = "gluon_ws"`` routes the forward's attention to impls/rat/gluon/forward.py, fwd_ws_kernel: a TMA
loader warp feeding two consumer warpgroups; one warpgroup's softmax runs under the other's products, and the
wait for its own previous P V product sits before its exponentials in ptxas's schedule: NOTES.md, v4).
sm_90 only (wgmma and TMA as Hopper has them), bf16 / fp16, head dims 64 and 128; Gluon has no CPU
interpreter, so on the CPU the kernel is only compiled for sm_90 (`run_bench.py static`); correctness and
speed are measured on the H200 (impls/rat/gluon/NOTES.md).
"""
from __future__ import annotations

import dataclasses
import importlib.util

import torch

from ratbench.impls.peer_utils import cuda_capability
from ratbench.impls.rat.triton import DEFAULT_CONFIG, RATTriton, RATTritonConfig

#: rat/triton's 16-bit default with the Gluon forward: 128 x 128 tiles, 2 buffers of K and V each (3 do not fit in
#: 227 KB beside q's two buffers) (H200, impls/rat/gluon/NOTES.md v2, v4)
GLUON_CONFIG = dataclasses.replace(DEFAULT_CONFIG, forward="gluon_ws", fwd_bm=128, fwd_bn=128, fwd_stages=2)


class RATGluon(RATTriton):
    description = ("rat/triton with the forward attention as a warp-specialized Gluon kernel (TMA loader warp, "
                   "two wgmma consumer warpgroups, persistent); sm_90")
    triton = False
    requires = ("triton",)
    devices = ("cuda",)
    dtypes = (torch.float16, torch.bfloat16)
    head_dims = (64, 128)

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        if importlib.util.find_spec("triton.experimental.gluon") is None:
            return "this triton has no Gluon (triton.experimental.gluon); triton >= 3.6 has it"
        cap = cuda_capability()
        if cap is not None and cap != (9, 0):
            return f"the Gluon kernels use Hopper's wgmma and TMA (sm_90); this GPU is sm_{cap[0]}{cap[1]}"
        return None

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16) -> RATTritonConfig:
        """The Gluon forward at every shape: since v4 (persistent CTAs, q and the self term by TMA) it measured faster
        than rat/triton's kernels at every shape timed, including the few-chunk-end ones where rat/triton's short
        tiles used to win (NOTES.md, "Where it is used"). A config given by the caller is used as given."""
        return self.config if self.config is not None else GLUON_CONFIG
