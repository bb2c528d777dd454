"""rat/gluon: RAT (docs/rat-spec.md) with the forward attention as a warp-specialized Gluon kernel for Hopper.

Same interface, scans, backward and decode state as rat/triton (impls/rat/triton.py: the config field
``forward = "gluon_ws"`` routes the forward's attention to impls/rat/gluon/forward.py, fwd_ws_kernel: a TMA
loader warp feeding two consumer warpgroups whose softmax overlaps the previous block's P V product).
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
#: 227 KB) (H200, impls/rat/gluon/NOTES.md v2)
GLUON_CONFIG = dataclasses.replace(DEFAULT_CONFIG, forward="gluon_ws", fwd_bm=128, fwd_bn=128, fwd_stages=2)


def gluon_forward_used(n_chunks: int, head_dim: int) -> bool:
    """Whether rat/gluon's default runs the Gluon forward for a sequence of ``n_chunks`` chunk ends: from 2048 chunk
    ends on (rat/triton's own 128-row tiles there), and for D = 128 from 256 on. Measured on the H200 (NOTES.md,
    "Where it is used"): with few chunk ends rat/triton's short tiles (64 x 64, 4 warps, several CTAs per SM) win:
    prefill at T = 4k 0.912 vs 1.09 ms (D 64, 256 chunk ends) and 1.59 vs 1.67 ms (L 64, 64 chunk ends); the Gluon
    kernel wins at D 128 with 256 chunk ends (4k, L 16: 1.69 vs 1.76 ms) and at every shape with 2048 or more."""
    return n_chunks >= 2048 or (head_dim == 128 and n_chunks >= 256)


class RATGluon(RATTriton):
    description = ("rat/triton with the forward attention as a warp-specialized Gluon kernel (TMA loader warp, "
                   "two wgmma consumer warpgroups, softmax overlapped with P V); sm_90")
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

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, head_dim: int = 128
                ) -> RATTritonConfig:
        """The Gluon forward where it measured faster than rat/triton's, else rat/triton's own config (the same
        kernels as rat/triton): see gluon_forward_used."""
        if self.config is not None:
            return self.config
        return GLUON_CONFIG if gluon_forward_used(n_chunks, head_dim) else super()._config(n_chunks, dtype, head_dim)
