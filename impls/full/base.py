"""Full (causal) softmax attention: the interface and its decode state (a KV cache)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ratbench.impls.base import Implementation
from ratbench.impls.validation import check_qkv, check_state_dims, check_step_qkv, resolve_scale


@dataclass
class KVCache:
    """Keys and values of every past token, (B, H, max_len, D), plus the number filled (pos)."""

    k: torch.Tensor
    v: torch.Tensor
    scale: float
    pos: int = 0

    @property
    def max_len(self) -> int:
        return self.k.shape[2]

    def nbytes_per_sequence(self, length: int | None = None) -> int:
        """Cache bytes one sequence needs at ``length`` tokens (default: filled so far)."""
        n = self.pos if length is None else length
        return 2 * n * self.k.shape[1] * self.k.shape[3] * self.k.element_size()


def check_decode_room(state_pos: int, n_new: int, max_len: int) -> None:
    if state_pos + n_new > max_len:
        raise ValueError(
            f"decode state holds max_len={max_len} tokens; {state_pos} are filled and {n_new} more do not fit"
        )


class FullAttention(Implementation):
    """forward(q, k, v, *, causal=True, scale=None): softmax(scale * q k^T [+ causal mask]) v."""

    family = "full"

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = True, scale: float | None = None
    ) -> torch.Tensor:
        check_qkv(q, k, v)
        self.check_runnable(q)
        return self._forward(q, k, v, causal=bool(causal), scale=resolve_scale(scale, q.shape[-1]))

    def init_state(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        max_len: int,
        *,
        device: torch.device | str,
        dtype: torch.dtype,
        scale: float | None = None,
    ) -> KVCache:
        check_state_dims(batch=batch, heads=heads, head_dim=head_dim, max_len=max_len)
        return self._init_state(batch, heads, head_dim, max_len, torch.device(device), dtype,
                                resolve_scale(scale, head_dim))

    def prefill(self, state: KVCache, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Causal attention over a prompt (B, T0, H, D); fills the cache. The state must be empty."""
        check_qkv(q, k, v)
        self.check_runnable(q)
        if state.pos != 0:
            raise ValueError(f"prefill needs an empty state, this one holds {state.pos} tokens")
        check_decode_room(0, q.shape[1], state.max_len)
        return self._prefill(state, q, k, v)

    def step(self, state: KVCache, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """One token (B, H, D) at position state.pos; appends k, v and attends over all cached tokens."""
        check_step_qkv(q, k, v)
        self.check_runnable(q)
        check_decode_room(state.pos, 1, state.max_len)
        return self._step(state, q, k, v)

    # to implement
    def _forward(self, q, k, v, *, causal: bool, scale: float) -> torch.Tensor:
        raise NotImplementedError

    def _init_state(self, batch, heads, head_dim, max_len, device, dtype, scale) -> KVCache:
        shape = (batch, heads, max_len, head_dim)
        return KVCache(torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype),
                       scale)

    def _prefill(self, state, q, k, v) -> torch.Tensor:
        raise NotImplementedError

    def _step(self, state, q, k, v) -> torch.Tensor:
        raise NotImplementedError
