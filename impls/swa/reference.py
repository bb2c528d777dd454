"""Sliding-window attention in plain PyTorch: the oracle (query t attends t - window < s <= t)."""
from __future__ import annotations

import torch

from ratbench.impls.full.reference import attention
from ratbench.impls.swa.base import RingCache, SlidingWindowAttention
from ratbench.impls.validation import compute_dtype


def window_mask(T: int, window: int, device: torch.device) -> torch.Tensor:
    t = torch.arange(T, device=device)
    diff = t[:, None] - t[None, :]  # t - s
    return (diff >= 0) & (diff < window)


class SWAReference(SlidingWindowAttention):
    description = "plain PyTorch masked softmax attention (oracle)"
    is_reference = True

    def _forward(self, q, k, v, *, window, scale):
        cdt = compute_dtype(q.dtype)
        return attention(q.to(cdt), k.to(cdt), v.to(cdt), window_mask(q.shape[1], window, q.device), scale).to(q.dtype)

    def _init_state(self, batch, heads, head_dim, window, device, dtype, scale) -> RingCache:
        return super()._init_state(batch, heads, head_dim, window, device, compute_dtype(dtype), scale)

    def _prefill(self, state: RingCache, q, k, v):
        T0, W = q.shape[1], state.window
        keep = torch.arange(max(0, T0 - W), T0, device=q.device)  # the last W tokens, each in slot p % W
        state.k[:, :, keep % W] = k[:, keep].transpose(1, 2).to(state.k.dtype)
        state.v[:, :, keep % W] = v[:, keep].transpose(1, 2).to(state.v.dtype)
        state.pos = T0
        return self._forward(q, k, v, window=W, scale=state.scale)

    def _step(self, state: RingCache, q, k, v):
        W, p = state.window, state.pos
        state.k[:, :, p % W] = k.to(state.k.dtype)
        state.v[:, :, p % W] = v.to(state.v.dtype)
        n = min(p + 1, W)  # filled slots; order does not matter to the softmax
        logits = state.scale * torch.einsum("bhd,bhsd->bhs", q.to(state.k.dtype), state.k[:, :, :n])
        o = torch.einsum("bhs,bhsd->bhd", torch.softmax(logits, dim=-1), state.v[:, :, :n])
        state.pos += 1
        return o.to(q.dtype)
