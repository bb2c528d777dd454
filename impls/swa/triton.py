"""swa/triton: sliding-window attention (row t sees t - window < s <= t) with the full/triton kernels
(impls/full/triton.py): FlashAttention-2 forward and backward that visit only the key blocks inside
the window (masked edge blocks, unmasked middle), and a one-launch decode step over the ring buffer."""
from __future__ import annotations

import torch

from ratbench.impls.full.triton import FlashConfig, _cfg, check_cache, decode_step, flash_attention
from ratbench.impls.swa._ring import ring_fill
from ratbench.impls.swa.base import RingCache, SlidingWindowAttention


class SWATriton(SlidingWindowAttention):
    description = ("Triton FlashAttention-2 over the window band only (shared core with rat/triton); "
                   "one-launch decode step over the ring buffer")
    triton = True
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    head_dims = (32, 64, 128)
    profile_stages = (("forward", r"fwd\w*_kernel"), ("backward", r"bwd\w*_kernel|dq_finish_kernel"),
                      ("decode step", r"decode\w*_kernel"))

    def __init__(self, config: FlashConfig | None = None) -> None:
        self.config = config

    def _forward(self, q, k, v, *, window: int, scale: float) -> torch.Tensor:
        return flash_attention(q, k, v, causal=True, window=window, scale=scale, config=self.config)

    def _prefill(self, state: RingCache, q, k, v) -> torch.Tensor:
        check_cache(state, q)
        with torch.no_grad():
            o = flash_attention(q, k, v, causal=True, window=state.window, scale=state.scale, config=self.config)
            ring_fill(state, k, v)
        return o

    def _step(self, state: RingCache, q, k, v) -> torch.Tensor:
        check_cache(state, q)
        W, p = state.window, state.pos
        # older tokens in the ring: min(p, W) slots; slot p % W is the oldest when the ring is full
        # (it leaves the window now) and is overwritten by this token in the same launch
        o = decode_step(q, k, v, state.k, state.v, n_old=min(p, W), cur=p % W, skip=True, scale=state.scale,
                        cfg=_cfg(self.config, q.dtype, W))
        state.pos += 1
        return o
