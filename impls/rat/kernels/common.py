"""Shared @triton.jit helpers of the RAT kernels: rotate-half RoPE on head-dim halves and the two-half
loads / stores of the scans.

Every RAT kernel works on the head dim in two halves [0, D/2) and [D/2, D) (HALF = D/2), so the
rotate-half RoPE of docs/rat-spec.md (op step 2: position = chunk index c, tables from
impls.rope.rope_cos_sin) is element-wise on the halves and needs no shuffles:
    RoPE(x1, x2) = (x1 cos - x2 sin, x2 cos + x1 sin), its transpose (the inverse rotation) for gradients.
cos, sin tables: float32 (n, HALF), row = chunk index (impls.rat.triton.rope_tables).
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _rope(x1, x2, cos, sin):
    return x1 * cos - x2 * sin, x2 * cos + x1 * sin


@triton.jit
def _rope_at(x1, x2, COS, SIN, cid, offs_d, vm, HALF: tl.constexpr):
    """_rope of the rows' halves x1, x2 ([BM, HALF]) at table rows cid (their chunk ids); rows
    outside vm read cos 1, sin 0."""
    tptr = cid[:, None] * HALF + offs_d[None, :]
    cos = tl.load(COS + tptr, mask=vm, other=1.0)
    sin = tl.load(SIN + tptr, mask=vm, other=0.0)
    return _rope(x1, x2, cos, sin)


@triton.jit
def _rope_t(d1, d2, cos, sin):
    # transpose of _rope (the inverse rotation): gradient w.r.t. the un-rotated halves
    return d1 * cos + d2 * sin, d2 * cos - d1 * sin


@triton.jit
def _maybe_rope(x1, x2, cos, sin, ROPE: tl.constexpr):
    if ROPE:
        x1, x2 = _rope(x1, x2, cos, sin)
    return x1, x2


# Helpers of the scans (scan.py, long_scan.py); pointers p address a [N, HALF] block of rows, p + HALF
# their second half.
@triton.jit
def _load2(p, m, other, HALF: tl.constexpr):
    """Both halves at p as float32; rows outside m read `other`."""
    x1 = tl.load(p, mask=m, other=other).to(tl.float32)
    x2 = tl.load(p + HALF, mask=m, other=other).to(tl.float32)
    return x1, x2


@triton.jit
def _store2(p, x1, x2, m, HALF: tl.constexpr):
    """Both halves to p in its element type."""
    tl.store(p, x1.to(p.dtype.element_ty), mask=m)
    tl.store(p + HALF, x2.to(p.dtype.element_ty), mask=m)


@triton.jit
def _cos_sin(COS, SIN, idx, m, d2, HALF: tl.constexpr):
    """RoPE tables at rows idx ([N], chunk ids; d2 = arange(HALF)[None, :]); rows outside m ([N]) read
    cos 1, sin 0."""
    tptr = idx[:, None] * HALF + d2
    cos = tl.load(COS + tptr, mask=m[:, None], other=1.0)
    sin = tl.load(SIN + tptr, mask=m[:, None], other=0.0)
    return cos, sin
