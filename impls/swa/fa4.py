"""Sliding-window attention with flash-attn-4 (CuTe DSL ``flash_attn.cute.flash_attn_func``), optional.

Same window convention as flash-attn 2: ``window_size=(window - 1, 0)`` with ``causal=True`` keeps
t - window < s <= t. Decode: SDPA over the ring buffer.
"""
from __future__ import annotations

from ratbench.impls.full.fa4 import fa4_func
from ratbench.impls.peer_utils import FlashAttn4Peer
from ratbench.impls.swa._ring import ring_fill, ring_step
from ratbench.impls.swa.base import RingCache, SlidingWindowAttention


class SWAFA4(FlashAttn4Peer, SlidingWindowAttention):
    description = "flash-attn-4 (CuTe DSL), window_size=(window-1, 0); decode via SDPA over the ring buffer"

    def _forward(self, q, k, v, *, window, scale):
        out = fa4_func()(q, k, v, softmax_scale=scale, causal=True, window_size=(window - 1, 0))
        return out[0] if isinstance(out, tuple) else out

    def _prefill(self, state: RingCache, q, k, v):
        ring_fill(state, k, v)
        return self._forward(q, k, v, window=state.window, scale=state.scale)

    def _step(self, state: RingCache, q, k, v):
        return ring_step(state, q, k, v, self.name)
