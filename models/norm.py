"""RMSNorm computed in float32 (the statistic and the scaling), returned in the input dtype.

Under bf16 autocast the residual stream and the projections run in bf16; the normalisation itself is
done in float32 so that a long sum of squares does not lose precision.
"""
from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last dim (weight initialised to 1)."""

    def __init__(self, dim: int, eps: float = 1e-6, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdt)
        y = xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight.to(cdt)).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"
