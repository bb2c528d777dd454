"""Argument checks shared by every family: clear errors before any kernel sees a bad tensor."""
from __future__ import annotations

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(name: str, x: object, ndim: int, layout: str) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of rank ``ndim`` (layout names the dims in errors)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor with layout {layout}, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name} must have layout {layout} ({ndim} dims), got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float16, bfloat16, float32 or float64, got {x.dtype}")
    return x


def check_like(ref_name: str, ref: torch.Tensor, **others: torch.Tensor | None) -> None:
    """Check that every tensor in ``others`` has the shape, dtype and device of ``ref``."""
    for name, x in others.items():
        if x is None:
            continue
        if x.shape != ref.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but {ref_name} has {tuple(ref.shape)}")
        if x.dtype != ref.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but {ref_name} has {ref.dtype}: cast them to one dtype")
        if x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but {ref_name} is on {ref.device}")


def check_qkv(q: object, k: object, v: object) -> tuple[int, int, int, int]:
    """Validate (B, T, H, D) q, k, v of one shape/dtype/device; return (B, T, H, D)."""
    check_tensor("q", q, 4, "(B, T, H, D)")
    check_tensor("k", k, 4, "(B, T, H, D)")
    check_tensor("v", v, 4, "(B, T, H, D)")
    check_like("q", q, k=k, v=v)  # type: ignore[arg-type]
    B, T, H, D = q.shape  # type: ignore[union-attr]
    if min(B, T, H, D) < 1:
        raise ValueError(f"q has an empty dimension: shape {tuple(q.shape)}")  # type: ignore[union-attr]
    return B, T, H, D


def check_step_qkv(q: object, k: object, v: object) -> tuple[int, int, int]:
    """Validate (B, H, D) one-token tensors for a decode step; return (B, H, D)."""
    check_tensor("q_t", q, 3, "(B, H, D)")
    check_tensor("k_t", k, 3, "(B, H, D)")
    check_tensor("v_t", v, 3, "(B, H, D)")
    check_like("q_t", q, k_t=k, v_t=v)  # type: ignore[arg-type]
    return tuple(q.shape)  # type: ignore[union-attr,return-value]


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_state_dims(**dims: object) -> None:
    """Check the sizes given to init_state (batch, heads, head_dim, max_len, ...): positive ints."""
    for name, value in dims.items():
        check_positive_int(name, value)


def resolve_scale(scale: float | None, head_dim: int) -> float:
    """The softmax / readout scale: D ** -0.5 unless given."""
    if scale is None:
        return head_dim ** -0.5
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    return float(scale)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """References compute in float32, or float64 when given float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32
