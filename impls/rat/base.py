"""RAT: the interface and its decode state (docs/rat-spec.md is the definition).

forward(q, k, v, f, *, chunk_size, rope=True, scale=None), all (B, T, H, D), f in (0, 1):
intra-chunk gated recurrence on k and v, chunk-index RoPE on q and the scanned keys, one softmax over
the final states of earlier chunks plus the query's own running state.

Decode state: a chunk cache of post-RoPE keys and values (B, H, C_max, D), one slot per chunk (slot c
holds the running state of the current chunk, and its final state once complete), and the running
pre-RoPE states kt, vt (B, H, D).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ratbench.impls.base import Implementation
from ratbench.impls.validation import (
    check_like,
    check_positive_int,
    check_qkv,
    check_state_dims,
    check_step_qkv,
    check_tensor,
    resolve_scale,
)


@dataclass
class RATState:
    k_cache: torch.Tensor  # (B, H, C_max, D), post-RoPE chunk-end keys
    v_cache: torch.Tensor  # (B, H, C_max, D)
    kt: torch.Tensor  # (B, H, D), running pre-RoPE key state of the current chunk
    vt: torch.Tensor  # (B, H, D)
    chunk_size: int
    rope: bool
    scale: float
    pos: int = 0

    @property
    def max_len(self) -> int:
        return self.k_cache.shape[2] * self.chunk_size

    def nbytes_per_sequence(self, length: int | None = None) -> int:
        """Chunk cache bytes at ``length`` tokens: 2 * ceil(T / L) * H * D elements (+ running state)."""
        n = self.pos if length is None else length
        slots = math.ceil(n / self.chunk_size)
        H, D = self.k_cache.shape[1], self.k_cache.shape[3]
        return 2 * slots * H * D * self.k_cache.element_size() + 2 * H * D * self.kt.element_size()


def check_chunk_size(chunk_size: object, T: int | None = None) -> int:
    check_positive_int("chunk_size", chunk_size)
    if T is not None and T % chunk_size:  # type: ignore[operator]
        raise ValueError(
            f"RAT needs T to be a multiple of chunk_size: T={T}, chunk_size={chunk_size} "
            f"(pad the sequence to {math.ceil(T / chunk_size) * chunk_size})"  # type: ignore[operator]
        )
    return chunk_size  # type: ignore[return-value]


def check_gate(f: object, q: torch.Tensor, name: str = "f") -> None:
    check_tensor(name, f, q.dim(), "(B, T, H, D)" if q.dim() == 4 else "(B, H, D)")
    check_like("q" if q.dim() == 4 else "q_t", q, **{name: f})  # type: ignore[arg-type]


class RAT(Implementation):
    family = "rat"

    def forward(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        f: torch.Tensor,
        *,
        chunk_size: int,
        rope: bool = True,
        scale: float | None = None,
    ) -> torch.Tensor:
        _, T, _, D = check_qkv(q, k, v)
        check_gate(f, q)
        check_chunk_size(chunk_size, T)
        self.check_runnable(q)
        return self._forward(q, k, v, f, chunk_size=chunk_size, rope=bool(rope), scale=resolve_scale(scale, D))

    def init_state(
        self,
        batch: int,
        heads: int,
        head_dim: int,
        max_len: int,
        *,
        device: torch.device | str,
        dtype: torch.dtype,
        chunk_size: int,
        rope: bool = True,
        scale: float | None = None,
    ) -> RATState:
        check_state_dims(batch=batch, heads=heads, head_dim=head_dim, max_len=max_len)
        check_chunk_size(chunk_size)
        if rope and head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        return self._init_state(batch, heads, head_dim, math.ceil(max_len / chunk_size), torch.device(device), dtype,
                                chunk_size, bool(rope), resolve_scale(scale, head_dim))

    def prefill(
        self, state: RATState, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: torch.Tensor
    ) -> torch.Tensor:
        """RAT over a prompt (B, T0, H, D) of any length T0 (it may end mid-chunk); fills the state."""
        check_qkv(q, k, v)
        check_gate(f, q)
        self.check_runnable(q)
        if state.pos != 0:
            raise ValueError(f"prefill needs an empty state, this one holds {state.pos} tokens")
        if q.shape[1] > state.max_len:
            raise ValueError(f"decode state holds max_len={state.max_len} tokens; the prompt has {q.shape[1]}")
        return self._prefill(state, q, k, v, f)

    def step(
        self, state: RATState, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: torch.Tensor
    ) -> torch.Tensor:
        """One token (B, H, D) at position state.pos (docs/rat-spec.md, Decode)."""
        check_step_qkv(q, k, v)
        self.check_runnable(q)
        check_gate(f, q, "f_t")
        if state.pos >= state.max_len:
            raise ValueError(f"decode state holds max_len={state.max_len} tokens and is full")
        return self._step(state, q, k, v, f)

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float) -> torch.Tensor:
        raise NotImplementedError

    def _init_state(self, batch, heads, head_dim, n_chunks, device, dtype, chunk_size, rope, scale) -> RATState:
        cache = (batch, heads, n_chunks, head_dim)
        run = (batch, heads, head_dim)
        sdt = torch.float64 if dtype == torch.float64 else torch.float32
        return RATState(
            torch.zeros(cache, device=device, dtype=dtype), torch.zeros(cache, device=device, dtype=dtype),
            torch.zeros(run, device=device, dtype=sdt), torch.zeros(run, device=device, dtype=sdt),
            chunk_size, rope, scale,
        )

    def _prefill(self, state, q, k, v, f) -> torch.Tensor:
        raise NotImplementedError

    def _step(self, state, q, k, v, f) -> torch.Tensor:
        raise NotImplementedError
