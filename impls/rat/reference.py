"""RAT in plain PyTorch: the oracle every fast RAT implementation is checked against.

Follows docs/rat-spec.md step by step. Computes in float32 (float64 when given float64); runs on
CPU and GPU; differentiable. Memory is O(B * H * T * T/L): meant for checks, not for speed.
"""
from __future__ import annotations

import math

import torch

from ratbench.impls.rat.base import RAT, RATState
from ratbench.impls.rope import apply_rope, rope_cos_sin
from ratbench.impls.validation import compute_dtype


def chunk_scan(x: torch.Tensor, f: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Step 1: xt[c, l] = f[c, l] * xt[c, l-1] + (1 - f[c, l]) * x[c, l], xt[c, -1] = 0.

    x, f: (B, T, H, D); T need not be a multiple of chunk_size (the last chunk may be partial)."""
    B, T, H, D = x.shape
    L = chunk_size
    C = math.ceil(T / L)
    pad = C * L - T
    if pad:
        x = torch.nn.functional.pad(x, (0, 0, 0, 0, 0, pad))
        f = torch.nn.functional.pad(f, (0, 0, 0, 0, 0, pad))
    x = x.reshape(B, C, L, H, D)
    f = f.reshape(B, C, L, H, D)
    state = torch.zeros_like(x[:, :, 0])  # xt[c, -1] = 0: reset at every chunk start
    states = []
    for l in range(L):
        state = f[:, :, l] * state + (1 - f[:, :, l]) * x[:, :, l]
        states.append(state)
    return torch.stack(states, dim=2).reshape(B, C * L, H, D)[:, :T]


def rat_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: torch.Tensor, chunk_size: int, rope: bool, scale: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps 1-3 in the compute dtype. Returns (y, kt after RoPE, vt), all (B, T, H, D)."""
    _, T, _, D = q.shape
    L = chunk_size
    # 1. intra-chunk gated recurrence on keys and values (queries are not recurred)
    kt = chunk_scan(k, f, L)
    vt = chunk_scan(v, f, L)
    # 2. chunk-index RoPE on q and on the scanned keys: position = chunk index c = t // L
    chunk_of = torch.arange(T, device=q.device) // L  # c for every token
    if rope:
        cos, sin = rope_cos_sin(chunk_of, D, dtype=q.dtype)
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        q = apply_rope(q, cos, sin)
        kt = apply_rope(kt, cos, sin)
    # 3. attention over the final states of strictly earlier chunks ...
    K = kt[:, L - 1 :: L]  # (B, C_full, H, D): K_j = kt[j, L-1] for each complete chunk j
    V = vt[:, L - 1 :: L]
    inter = scale * torch.einsum("bthd,bjhd->bhtj", q, K)  # (B, H, T, C_full)
    earlier = torch.arange(K.shape[1], device=q.device)[None, :] < chunk_of[:, None]  # j < c
    inter = inter.masked_fill(~earlier, float("-inf"))
    # ... plus the query's own running state, in one exact softmax over c + 1 logits
    own = scale * (q * kt).sum(-1).permute(0, 2, 1)[..., None]  # (B, H, T, 1)
    p = torch.softmax(torch.cat([inter, own], dim=-1), dim=-1)
    y = torch.einsum("bhtj,bjhd->bthd", p[..., :-1], V) + p[..., -1].permute(0, 2, 1)[..., None] * vt
    return y, kt, vt


class RATReference(RAT):
    description = "plain PyTorch, docs/rat-spec.md line by line (oracle)"
    is_reference = True

    def _forward(self, q, k, v, f, *, chunk_size, rope, scale):
        cdt = compute_dtype(q.dtype)
        y, _, _ = rat_attention(q.to(cdt), k.to(cdt), v.to(cdt), f.to(cdt), chunk_size, rope, scale)
        return y.to(q.dtype)

    def _init_state(self, batch, heads, head_dim, n_chunks, device, dtype, chunk_size, rope, scale) -> RATState:
        # the oracle keeps its cache in the compute dtype, so prefill + steps == forward exactly
        return super()._init_state(batch, heads, head_dim, n_chunks, device, compute_dtype(dtype), chunk_size,
                                   rope, scale)

    def _prefill(self, state: RATState, q, k, v, f):
        cdt = state.k_cache.dtype
        T0, L = q.shape[1], state.chunk_size
        with torch.no_grad():
            y, kt_rope, vt = rat_attention(q.to(cdt), k.to(cdt), v.to(cdt), f.to(cdt), L, state.rope, state.scale)
            # slot j holds the state at the end of chunk j, or at T0 - 1 for a partial last chunk
            ends = torch.arange(L - 1, T0 + L - 1, L, device=q.device).clamp(max=T0 - 1)
            state.k_cache[:, :, : len(ends)] = kt_rope[:, ends].transpose(1, 2)
            state.v_cache[:, :, : len(ends)] = vt[:, ends].transpose(1, 2)
            # the running state is pre-RoPE: recompute the scan's last token without rotation
            kt_raw = chunk_scan(k.to(cdt), f.to(cdt), L)[:, -1]
            state.kt.copy_(kt_raw)
            state.vt.copy_(vt[:, -1])
        state.pos = T0
        return y.to(q.dtype)

    def _step(self, state: RATState, q, k, v, f):
        cdt, out_dtype = state.k_cache.dtype, q.dtype
        q, k, v, f = q.to(cdt), k.to(cdt), v.to(cdt), f.to(cdt)
        c, l = divmod(state.pos, state.chunk_size)
        if l == 0:  # a new chunk starts: reset the running states
            state.kt.zero_()
            state.vt.zero_()
        state.kt.copy_(f * state.kt + (1 - f) * k)
        state.vt.copy_(f * state.vt + (1 - f) * v)
        key = state.kt
        if state.rope:
            cos, sin = rope_cos_sin(torch.tensor([c], device=q.device), q.shape[-1], dtype=cdt)
            key = apply_rope(key, cos, sin)
            q = apply_rope(q, cos, sin)
        state.k_cache[:, :, c] = key  # slot c: the current partial state (final once the chunk completes)
        state.v_cache[:, :, c] = state.vt
        logits = state.scale * torch.einsum("bhd,bhjd->bhj", q, state.k_cache[:, :, : c + 1])
        o = torch.einsum("bhj,bhjd->bhd", torch.softmax(logits, dim=-1), state.v_cache[:, :, : c + 1])
        state.pos += 1
        return o.to(out_dtype)
