"""Sliding-window attention with compiled FlexAttention.

mask_mod ``(q_idx >= kv_idx) & (q_idx - kv_idx < window)`` is exactly our convention
(t - window < s <= t, ``window`` keys including the query's own). The BlockMask is built compiled and
cached per (T, window, device), so T = 131072 never materialises a dense T x T mask; blocks outside
the window are skipped by the kernel. Decode: SDPA over the ring buffer (impls/swa/_ring.py).
"""
from __future__ import annotations

from impls.peer_utils import FlexPeer, block_mask, compiled_flex, to_bhtd
from impls.swa._ring import ring_fill, ring_step
from impls.swa.base import RingCache, SlidingWindowAttention


class SWAFlex(FlexPeer, SlidingWindowAttention):
    description = "compiled FlexAttention, sliding-window block mask (compiled, cached per shape); decode via SDPA"

    def _forward(self, q, k, v, *, window, scale):
        qh, kh, vh = to_bhtd(q, k, v)
        T = q.shape[1]
        bm = block_mask("window", window, T, T, q.device)
        return compiled_flex()(qh, kh, vh, block_mask=bm, scale=scale).transpose(1, 2)

    def _prefill(self, state: RingCache, q, k, v):
        ring_fill(state, k, v)
        return self._forward(q, k, v, window=state.window, scale=state.scale)

    def _step(self, state: RingCache, q, k, v):
        return ring_step(state, q, k, v, self.name)
