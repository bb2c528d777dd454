"""Rotate-half RoPE (LLaMA convention), shared by references, kernels and layers.

Frequencies base^(-2i/D) for i < D/2; the cos/sin halves are duplicated over the head dim. Angles are
computed in float64 and rounded once, so a table for position 65536 is as exact as one for position 1;
kernels take the same tables rather than recomputing angles in float32.
"""
from __future__ import annotations

import torch


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, *, base: float = 10000.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables of shape (len(positions), head_dim) for integer positions."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dim, got {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin; cos/sin must broadcast against x (last dim = head dim)."""
    return x * cos + rotate_half(x) * sin
