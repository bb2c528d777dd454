"""Full softmax attention in plain PyTorch: the oracle for every full-attention implementation."""
from __future__ import annotations

import torch

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.validation import compute_dtype


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float) -> torch.Tensor:
    """softmax(scale * q k^T, masked to ``mask`` (T, S) where True = attend) v, for (B, T, H, D) inputs."""
    logits = scale * torch.einsum("bthd,bshd->bhts", q, k)
    if mask is not None:
        logits = logits.masked_fill(~mask, float("-inf"))
    return torch.einsum("bhts,bshd->bthd", torch.softmax(logits, dim=-1), v)


def causal_mask(T: int, device: torch.device) -> torch.Tensor:
    t = torch.arange(T, device=device)
    return t[None, :] <= t[:, None]


class FullReference(FullAttention):
    description = "plain PyTorch softmax attention (oracle)"
    is_reference = True

    def _forward(self, q, k, v, *, causal, scale):
        cdt = compute_dtype(q.dtype)
        mask = causal_mask(q.shape[1], q.device) if causal else None
        return attention(q.to(cdt), k.to(cdt), v.to(cdt), mask, scale).to(q.dtype)

    def _init_state(self, batch, heads, head_dim, max_len, device, dtype, scale) -> KVCache:
        return super()._init_state(batch, heads, head_dim, max_len, device, compute_dtype(dtype), scale)

    def _prefill(self, state: KVCache, q, k, v):
        T0 = q.shape[1]
        state.k[:, :, :T0] = k.transpose(1, 2).to(state.k.dtype)
        state.v[:, :, :T0] = v.transpose(1, 2).to(state.v.dtype)
        state.pos = T0
        return self._forward(q, k, v, causal=True, scale=state.scale)

    def _step(self, state: KVCache, q, k, v):
        p = state.pos
        state.k[:, :, p] = k.to(state.k.dtype)
        state.v[:, :, p] = v.to(state.v.dtype)
        logits = state.scale * torch.einsum("bhd,bhsd->bhs", q.to(state.k.dtype), state.k[:, :, : p + 1])
        o = torch.einsum("bhs,bhsd->bhd", torch.softmax(logits, dim=-1), state.v[:, :, : p + 1])
        state.pos += 1
        return o.to(q.dtype)
