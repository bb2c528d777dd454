"""Sliding-window attention: the interface and its decode state (a window-sized ring buffer).

Window convention (ours): query t attends keys s with t - window < s <= t, i.e. ``window`` keys
including itself. The same mask in other conventions:
- FlexAttention mask_mod: ``(q_idx >= kv_idx) & (q_idx - kv_idx < window)``.
- flash-attn ``window_size=(left, right)``: left counts keys *before* the query, so
  ``window_size=(window - 1, 0)`` with ``causal=True``.
- the RAT authors' hybrid mask ``q - kv <= 1024`` keeps 1025 keys: that is window = 1025 here.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ratbench.impls.base import Implementation
from ratbench.impls.validation import check_positive_int, check_qkv, check_state_dims, check_step_qkv, resolve_scale


@dataclass
class RingCache:
    """The last ``window`` keys and values in a ring buffer (B, H, window, D); token p sits in slot
    p % window. pos counts tokens seen. No max_len limit: the buffer never grows."""

    k: torch.Tensor
    v: torch.Tensor
    window: int
    scale: float
    pos: int = 0

    def nbytes_per_sequence(self, length: int | None = None) -> int:
        n = min(self.pos if length is None else length, self.window)
        return 2 * n * self.k.shape[1] * self.k.shape[3] * self.k.element_size()


class SlidingWindowAttention(Implementation):
    """forward(q, k, v, *, window, scale=None): causal attention over the last ``window`` keys."""

    family = "swa"

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, window: int, scale: float | None = None
    ) -> torch.Tensor:
        check_qkv(q, k, v)
        check_positive_int("window", window)
        self.check_runnable(q)
        return self._forward(q, k, v, window=window, scale=resolve_scale(scale, q.shape[-1]))

    def init_state(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        max_len: int,
        *,
        device: torch.device | str,
        dtype: torch.dtype,
        window: int,
        scale: float | None = None,
    ) -> RingCache:
        """max_len is accepted for a uniform interface; the ring buffer holds ``window`` tokens."""
        check_state_dims(batch=batch, heads=heads, head_dim=head_dim, max_len=max_len, window=window)
        return self._init_state(batch, heads, head_dim, window, torch.device(device), dtype,
                                resolve_scale(scale, head_dim))

    def prefill(self, state: RingCache, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        check_qkv(q, k, v)
        self.check_runnable(q)
        if state.pos != 0:
            raise ValueError(f"prefill needs an empty state, this one holds {state.pos} tokens")
        return self._prefill(state, q, k, v)

    def step(self, state: RingCache, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        check_step_qkv(q, k, v)
        self.check_runnable(q)
        return self._step(state, q, k, v)

    def _forward(self, q, k, v, *, window: int, scale: float) -> torch.Tensor:
        raise NotImplementedError

    def _init_state(self, batch, heads, head_dim, window, device, dtype, scale) -> RingCache:
        shape = (batch, heads, window, head_dim)
        return RingCache(torch.zeros(shape, device=device, dtype=dtype),
                         torch.zeros(shape, device=device, dtype=dtype), window, scale)

    def _prefill(self, state, q, k, v) -> torch.Tensor:
        raise NotImplementedError

    def _step(self, state, q, k, v) -> torch.Tensor:
        raise NotImplementedError
