"""Sliding-window attention with FlexAttention: compiled on CUDA, eager on the CPU (impls/peer_utils.py).

mask_mod ``(q_idx >= kv_idx) & (q_idx - kv_idx < window)`` is exactly our convention
(t - window < s <= t, ``window`` keys including the query's own). The BlockMask is cached per
(T, window, device) and built without a dense T x T mask (compiled on CUDA, from the window's formula on
the CPU); on CUDA blocks outside the window are skipped by the kernel. On the CPU flex runs eagerly (the
unfused path over the full score matrix): inductor's C++ flex kernel computed wrong results on some x86
CPUs (issue 14). Decode: SDPA over the ring buffer (impls/swa/_ring.py).
"""
from __future__ import annotations

from ratbench.impls.peer_utils import FLEX_CPU_EAGER_WHY, FlexPeer, block_mask, flex, to_bhtd
from ratbench.impls.swa._ring import ring_fill, ring_step
from ratbench.impls.swa.base import RingCache, SlidingWindowAttention


class SWAFlex(FlexPeer, SlidingWindowAttention):
    description = ("compiled FlexAttention on CUDA, sliding-window block mask (compiled, cached per shape); on the CPU "
                   f"eager FlexAttention, no inductor ({FLEX_CPU_EAGER_WHY}); decode via SDPA")

    def _forward(self, q, k, v, *, window, scale):
        qh, kh, vh = to_bhtd(q, k, v)
        T = q.shape[1]
        bm = block_mask("window", window, T, T, q.device)
        return flex(qh, kh, vh, block_mask=bm, scale=scale).transpose(1, 2)

    def _prefill(self, state: RingCache, q, k, v):
        ring_fill(state, k, v)
        return self._forward(q, k, v, window=state.window, scale=state.scale)

    def _step(self, state: RingCache, q, k, v):
        return ring_step(state, q, k, v, self.name)
