"""Independent per-token loops in float64: the oracles' oracles. Written from the definitions
(docs/rat-spec.md for RAT); they share no code with impls/ (RoPE is re-derived here)."""
from __future__ import annotations

import math

import torch


def rope64(x: torch.Tensor, pos: int) -> torch.Tensor:
    """Rotate-half RoPE at integer position ``pos`` on the last dim, float64, written out longhand."""
    D = x.shape[-1]
    out = torch.empty_like(x)
    for i in range(D // 2):
        theta = pos * 10000.0 ** (-2 * i / D)
        c, s = math.cos(theta), math.sin(theta)
        a, b = x[..., i], x[..., i + D // 2]
        out[..., i] = a * c - b * s
        out[..., i + D // 2] = b * c + a * s
    return out


def softmax_readout(q: torch.Tensor, keys: list[torch.Tensor], values: list[torch.Tensor], scale: float) -> torch.Tensor:
    """q (B, H, D) against lists of (B, H, D): sum_j softmax_j(scale q.k_j) v_j."""
    logits = torch.stack([scale * (q * kj).sum(-1) for kj in keys], dim=-1)  # (B, H, n)
    w = torch.softmax(logits, dim=-1)
    return sum(w[..., j, None] * vj for j, vj in enumerate(values))


def full_loop(q, k, v, scale, window=None, causal=True):
    q, k, v = q.double(), k.double(), v.double()
    T = q.shape[1]
    out = torch.empty_like(q)
    for t in range(T):
        lo = 0 if window is None else max(0, t - window + 1)
        hi = t + 1 if causal else T
        out[:, t] = softmax_readout(q[:, t], [k[:, s] for s in range(lo, hi)], [v[:, s] for s in range(lo, hi)], scale)
    return out


def linear_loop(q, k, v, scale, decay=None):
    q, k, v = q.double(), k.double(), v.double()
    B, T, H, D = q.shape
    S = torch.zeros(B, H, D, D, dtype=torch.float64)
    out = torch.empty_like(q)
    for t in range(T):
        if decay is not None:
            S = decay[:, t].double().exp()[..., None, None] * S
        S = S + k[:, t, :, :, None] * v[:, t, :, None, :]
        out[:, t] = scale * torch.einsum("bhd,bhde->bhe", q[:, t], S)
    return out


def rat_loop(q, k, v, f, L, scale, rope=True):
    """Token by token: running gated states reset at chunk starts, attend over earlier chunks' final
    states (RoPE'd at their chunk index) plus the own running state (RoPE'd at the own chunk index)."""
    q, k, v, f = q.double(), k.double(), v.double(), f.double()
    B, T, H, D = q.shape
    out = torch.empty_like(q)
    finals_k: list[torch.Tensor] = []
    finals_v: list[torch.Tensor] = []
    kt = vt = None
    for t in range(T):
        c, l = divmod(t, L)
        if l == 0:
            kt = torch.zeros(B, H, D, dtype=torch.float64)
            vt = torch.zeros(B, H, D, dtype=torch.float64)
        kt = f[:, t] * kt + (1 - f[:, t]) * k[:, t]
        vt = f[:, t] * vt + (1 - f[:, t]) * v[:, t]
        rot = (lambda x, p: rope64(x, p)) if rope else (lambda x, p: x)
        keys = [rot(kj, j) for j, kj in enumerate(finals_k)] + [rot(kt, c)]
        out[:, t] = softmax_readout(rot(q[:, t], c), keys, finals_v + [vt], scale)
        if l == L - 1:
            finals_k.append(kt)
            finals_v.append(vt)
    return out
