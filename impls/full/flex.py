"""Causal attention with FlexAttention (torch.nn.attention.flex_attention).

On CUDA flex_attention runs under torch.compile (the fused Triton kernel) with a causal BlockMask built
compiled and cached per (T, device): no dense T x T mask. On the CPU it runs eagerly (the unfused path,
no backward) and its BlockMask is computed without inductor, because inductor's C++ flex kernel computed
wrong results on some x86 CPUs (impls/peer_utils.py, issue 14). Non-causal calls run flex without a mask.
Decode: FlexAttention has no KV-cache decode path here, so a step is one query against the KV cache through SDPA with PyTorch's
own backend choice (stated, not hidden: decode timings of full/flex are SDPA timings).
"""
from __future__ import annotations

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.full.kv_peer import PromptPrefill
from ratbench.impls.peer_utils import FLEX_CPU_EAGER_WHY, FlexPeer, block_mask, flex, sdpa_decode, to_bhtd


class FullFlex(FlexPeer, PromptPrefill, FullAttention):
    description = ("compiled FlexAttention on CUDA, causal block mask (compiled, cached per shape); on the CPU eager "
                   f"FlexAttention, no inductor ({FLEX_CPU_EAGER_WHY}); decode via SDPA")

    def _forward(self, q, k, v, *, causal, scale):
        qh, kh, vh = to_bhtd(q, k, v)
        T = q.shape[1]
        bm = block_mask("causal", 0, T, T, q.device) if causal else None
        return flex(qh, kh, vh, block_mask=bm, scale=scale).transpose(1, 2)

    def _step(self, state: KVCache, q, k, v):
        p = state.pos
        state.k[:, :, p] = k
        state.v[:, :, p] = v
        o = sdpa_decode(None, q, state.k, state.v, p + 1, state.scale, self.name)
        state.pos += 1
        return o
