"""Decode-state pieces shared by the full-attention peers (full/sdpa-*, full/flex, full/flash-attn,
full/fa4): mixins to list before FullAttention in the class bases."""
from __future__ import annotations

import torch

from ratbench.impls.full.base import KVCache


class PromptPrefill:
    """``_prefill``: write the prompt's keys/values into the (B, H, S, D) KVCache, set pos, and return
    the causal ``_forward`` of the prompt."""

    def _prefill(self, state: KVCache, q, k, v):  # type: ignore[no-untyped-def]
        T0 = q.shape[1]
        state.k[:, :, :T0] = k.transpose(1, 2)
        state.v[:, :, :T0] = v.transpose(1, 2)
        state.pos = T0
        return self._forward(q, k, v, causal=True, scale=state.scale)  # type: ignore[attr-defined]


class BSHDCache:
    """``_init_state``: the cache allocated (B, S, H, D) (flash-attn's layout); KVCache holds (B, H, S, D)
    transposed views of it (no copy)."""

    def _init_state(self, batch, heads, head_dim, max_len, device, dtype, scale) -> KVCache:  # type: ignore[no-untyped-def]
        shape = (batch, max_len, heads, head_dim)
        k = torch.zeros(shape, device=device, dtype=dtype)
        v = torch.zeros(shape, device=device, dtype=dtype)
        return KVCache(k.transpose(1, 2), v.transpose(1, 2), scale)
