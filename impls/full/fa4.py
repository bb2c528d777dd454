"""flash-attn-4 (CuTe DSL, ``flash_attn.cute.flash_attn_func``), optional peer: the fastest full
attention measured on our H200 (docs/h200-anchors.md). Install: ``pip install flash-attn-4==4.0.0b36`` on a
Hopper or Blackwell machine with a CUDA torch (README.md, "Optional peers").

forward: ``flash_attn_func(q, k, v, softmax_scale=scale, causal=causal)`` on (B, T, H, D); it returns
(out, lse), we keep out. decode: the same kernel with one query token against the filled part of the
cache (non-causal: every cached key is in the past), the cache held as (B, S, H, D) like flash-attn's
and exposed to KVCache as (B, H, S, D) views. The first call per shape compiles (a few seconds).
"""
from __future__ import annotations

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.full.kv_peer import BSHDCache, PromptPrefill
from ratbench.impls.peer_utils import FlashAttn4Peer


def fa4_func():
    from flash_attn.cute import flash_attn_func

    return flash_attn_func


class FullFA4(FlashAttn4Peer, BSHDCache, PromptPrefill, FullAttention):
    description = "flash-attn-4 (CuTe DSL) flash_attn_func; decode: same kernel over the cache"

    def _forward(self, q, k, v, *, causal, scale):
        out = fa4_func()(q, k, v, softmax_scale=scale, causal=causal)
        return out[0] if isinstance(out, tuple) else out

    def _step(self, state: KVCache, q, k, v):
        self.check_runnable(q)
        p = state.pos
        state.k[:, :, p] = k
        state.v[:, :, p] = v
        kc = state.k.transpose(1, 2)[:, : p + 1]
        vc = state.v.transpose(1, 2)[:, : p + 1]
        out = fa4_func()(q[:, None], kc, vc, softmax_scale=state.scale, causal=False)
        out = out[0] if isinstance(out, tuple) else out
        state.pos += 1
        return out[:, 0]
