"""Linear attention (optional scalar decay) in plain PyTorch, parallel form: the oracle.

    o = scale * ((q k^T) * M) v,   M[t, s] = exp(sum_{r=s+1..t} decay_r) for s <= t, else 0

which unrolls S_t = exp(decay_t) S_{t-1} + k_t v_t^T, o_t = scale q_t S_t. The decay sums are taken
segment by segment (no difference of two large cumulative sums), so they are exact for long T.
"""
from __future__ import annotations

import torch

from ratbench.impls.linear.base import LinearAttention, LinearState
from ratbench.impls.validation import compute_dtype


def segment_sums(decay: torch.Tensor) -> torch.Tensor:
    """(B, T, H) log-decays -> (B, H, T, T) with [t, s] = sum_{r=s+1..t} decay_r for s <= t, -inf above."""
    x = decay.permute(0, 2, 1)  # (B, H, T)
    T = x.shape[-1]
    below = torch.ones(T, T, dtype=torch.bool, device=x.device).tril(-1)  # r > s
    terms = x[..., :, None].expand(*x.shape, T).masked_fill(~below, 0)  # [r, s] = x_r if r > s
    sums = terms.cumsum(dim=-2)  # [t, s] = sum_{s < r <= t} x_r
    causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril(0)
    return sums.masked_fill(~causal, float("-inf"))


def decay_matrix(decay: torch.Tensor | None, B: int, T: int, H: int, device, dtype) -> torch.Tensor:
    """M (B or 1, H or 1, T, T)."""
    if decay is None:
        return torch.ones(T, T, device=device, dtype=dtype).tril()[None, None]
    return segment_sums(decay.to(dtype)).exp()


class LinearReference(LinearAttention):
    description = "plain PyTorch, parallel masked form (oracle)"
    is_reference = True

    def _forward(self, q, k, v, *, decay, scale):
        cdt = compute_dtype(q.dtype)
        B, T, H, _ = q.shape
        M = decay_matrix(decay, B, T, H, q.device, cdt)
        scores = torch.einsum("bthd,bshd->bhts", q.to(cdt), k.to(cdt)) * M
        return (scale * torch.einsum("bhts,bshd->bthd", scores, v.to(cdt))).to(q.dtype)

    def _prefill(self, state: LinearState, q, k, v, decay):
        cdt = state.S.dtype
        B, T, H, _ = q.shape
        M = decay_matrix(decay, B, T, H, q.device, cdt)
        w = M[..., -1, :].expand(B, H, T)  # weight of token s in S_{T-1}: exp(sum_{r=s+1..T-1} decay_r)
        with torch.no_grad():
            state.S.copy_(torch.einsum("bhs,bshd,bshe->bhde", w, k.to(cdt), v.to(cdt)))
        state.pos = T
        return self._forward(q, k, v, decay=decay, scale=state.scale)

    def _step(self, state: LinearState, q, k, v, decay):
        cdt = state.S.dtype
        if decay is not None:
            state.S.mul_(decay.to(cdt).exp()[..., None, None])
        state.S.add_(k.to(cdt)[..., :, None] * v.to(cdt)[..., None, :])
        state.pos += 1
        return (state.scale * torch.einsum("bhd,bhde->bhe", q.to(cdt), state.S)).to(q.dtype)
