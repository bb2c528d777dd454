"""Linear attention (optionally with a scalar per-head decay): the interface and its decode state.

    S_t = exp(decay_t) * S_{t-1} + k_t v_t^T,    o_t = scale * q_t S_t

decay is a per-(B, T, H) log-gate <= 0 (None: no decay, S_t is a plain running sum). No
normalisation (no denominator), no feature map: q and k are used as given.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ratbench.impls.base import Implementation
from ratbench.impls.validation import (
    check_qkv,
    check_state_dims,
    check_step_qkv,
    check_tensor,
    resolve_scale,
)


@dataclass
class LinearState:
    """The recurrent state S (B, H, D, D), kept in float32 (float64 for float64 inputs)."""

    S: torch.Tensor
    scale: float
    pos: int = 0

    def nbytes_per_sequence(self, length: int | None = None) -> int:
        return self.S[0].numel() * self.S.element_size()


def check_decay(decay: object, q: torch.Tensor, step: bool = False) -> None:
    if decay is None:
        return
    layout = "(B, H)" if step else "(B, T, H)"
    name = "decay_t" if step else "decay"
    check_tensor(name, decay, q.dim() - 1, layout)
    want = q.shape[:-1]
    if decay.shape != want:  # type: ignore[union-attr]
        raise ValueError(f"{name} must have shape {tuple(want)} {layout}, got {tuple(decay.shape)}")  # type: ignore[union-attr]
    if decay.device != q.device:  # type: ignore[union-attr]
        raise ValueError(f"{name} is on {decay.device} but q is on {q.device}")  # type: ignore[union-attr]


class LinearAttention(Implementation):
    family = "linear"

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        decay: torch.Tensor | None = None,
        scale: float | None = None,
    ) -> torch.Tensor:
        check_qkv(q, k, v)
        check_decay(decay, q)
        self.check_runnable(q)
        return self._forward(q, k, v, decay=decay, scale=resolve_scale(scale, q.shape[-1]))

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
    ) -> LinearState:
        """max_len is accepted for a uniform interface; the state does not grow with length."""
        check_state_dims(batch=batch, heads=heads, head_dim=head_dim, max_len=max_len)
        sdt = torch.float64 if dtype == torch.float64 else torch.float32
        S = torch.zeros(batch, heads, head_dim, head_dim, device=device, dtype=sdt)
        return LinearState(S, resolve_scale(scale, head_dim))

    def prefill(
        self, state: LinearState, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, decay: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_qkv(q, k, v)
        check_decay(decay, q)
        self.check_runnable(q)
        if state.pos != 0:
            raise ValueError(f"prefill needs an empty state, this one holds {state.pos} tokens")
        return self._prefill(state, q, k, v, decay)

    def step(
        self, state: LinearState, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, decay: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_step_qkv(q, k, v)
        self.check_runnable(q)
        check_decay(decay, q, step=True)
        return self._step(state, q, k, v, decay)

    def _forward(self, q, k, v, *, decay, scale: float) -> torch.Tensor:
        raise NotImplementedError

    def _prefill(self, state, q, k, v, decay) -> torch.Tensor:
        raise NotImplementedError

    def _step(self, state, q, k, v, decay) -> torch.Tensor:
        raise NotImplementedError

