"""flash-attn 2.x (Dao-AILab, package ``flash_attn`` with its CUDA extension), optional peer.

forward: ``flash_attn_func(q, k, v, softmax_scale=scale, causal=causal)`` on (B, T, H, D) directly.
decode: ``flash_attn_with_kvcache``, which appends the new key/value at ``cache_seqlens`` and attends
over the cache in one call. flash-attn wants its cache as (B, S, H, D); our KVCache holds (B, H, S, D)
tensors, so the cache is allocated (B, S, H, D) and KVCache keeps transposed views of it (no copy).
"""
from __future__ import annotations

import torch

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.full.kv_peer import BSHDCache, PromptPrefill
from ratbench.impls.peer_utils import FlashAttn2Peer


class FullFlashAttn(FlashAttn2Peer, BSHDCache, PromptPrefill, FullAttention):
    description = "flash-attn 2.x flash_attn_func; decode via flash_attn_with_kvcache"

    def _forward(self, q, k, v, *, causal, scale):
        from flash_attn import flash_attn_func

        return flash_attn_func(q, k, v, softmax_scale=scale, causal=causal)

    def _step(self, state: KVCache, q, k, v):
        from flash_attn import flash_attn_with_kvcache

        self.check_runnable(q)
        B = q.shape[0]
        seqlens = torch.full((B,), state.pos, dtype=torch.int32, device=q.device)
        o = flash_attn_with_kvcache(
            q[:, None], state.k.transpose(1, 2), state.v.transpose(1, 2), k=k[:, None], v=v[:, None],
            cache_seqlens=seqlens, softmax_scale=state.scale, causal=True,
        )
        state.pos += 1
        return o[:, 0]
