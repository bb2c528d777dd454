"""Sliding-window attention with flash-attn 2.x, optional peer.

Window convention: ours keeps keys t - window < s <= t (``window`` keys including the query);
flash-attn's ``window_size=(left, right)`` counts keys before/after the query, so ours is
``window_size=(window - 1, 0)`` with ``causal=True``. Decode: SDPA over the ring buffer.
"""
from __future__ import annotations

from ratbench.impls.peer_utils import FlashAttn2Peer
from ratbench.impls.swa._ring import ring_fill, ring_step
from ratbench.impls.swa.base import RingCache, SlidingWindowAttention


class SWAFlashAttn(FlashAttn2Peer, SlidingWindowAttention):
    description = "flash-attn 2.x flash_attn_func, window_size=(window-1, 0); decode via SDPA over the ring buffer"

    def _forward(self, q, k, v, *, window, scale):
        from flash_attn import flash_attn_func

        return flash_attn_func(q, k, v, softmax_scale=scale, causal=True, window_size=(window - 1, 0))

    def _prefill(self, state: RingCache, q, k, v):
        ring_fill(state, k, v)
        return self._forward(q, k, v, window=state.window, scale=state.scale)

    def _step(self, state: RingCache, q, k, v):
        return ring_step(state, q, k, v, self.name)
