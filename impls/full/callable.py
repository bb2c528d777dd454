"""A user's plain full-attention function as an implementation (bench.api.register_callable).

``fn(q, k, v, *, causal, scale) -> out`` on (B, T, H, D): forward is ``fn``; prefill writes the prompt's keys
and values into a (B, S, H, D) KV cache and calls ``fn`` causally; a decode step appends one token and calls
``fn`` with that one query over the filled cache, non-causally (every cached key is in the past).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.full.kv_peer import BSHDCache, PromptPrefill


def wrap(fn: Callable[..., torch.Tensor], description: str, devices: tuple[str, ...]) -> type[FullAttention]:
    """A FullAttention class whose calls go to ``fn``."""

    class CallableFull(PromptPrefill, BSHDCache, FullAttention):
        def _forward(self, q, k, v, *, causal, scale):  # type: ignore[no-untyped-def]
            return fn(q, k, v, causal=causal, scale=scale)

        def _step(self, state: KVCache, q, k, v):  # type: ignore[no-untyped-def]
            p = state.pos
            state.k[:, :, p] = k
            state.v[:, :, p] = v
            kc = state.k.transpose(1, 2)[:, : p + 1]
            vc = state.v.transpose(1, 2)[:, : p + 1]
            out = fn(q[:, None], kc, vc, causal=False, scale=state.scale)
            state.pos += 1
            return out[:, 0]

    CallableFull.description = description
    CallableFull.devices = tuple(devices)
    return CallableFull
