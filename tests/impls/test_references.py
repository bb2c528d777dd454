"""Each family's reference against an independent float64 per-token loop (tests/loops.py)."""
from __future__ import annotations

import pytest
import torch
from loops import full_loop, linear_loop, rat_loop

from ratbench import impls

SHAPES = [(1, 1, 1, 4), (2, 7, 3, 8), (1, 33, 2, 16), (2, 64, 1, 32)]


def rand(B, T, H, D, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, generator=g, dtype=torch.float64) + 1).to(dtype)
    decay = -torch.rand(B, T, H, generator=g, dtype=torch.float64).to(dtype)
    return q, k, v, f, decay


def close(a, b, tol):
    assert a.shape == b.shape
    err = (a.double() - b.double()).abs().max().item()
    assert err <= tol, f"max abs err {err:.3g} > {tol}"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
def test_full(shape, dtype, tol):
    q, k, v, *_ = rand(*shape, dtype=dtype)
    ref = impls.get("full/reference")
    out = ref.forward(q, k, v)
    assert out.dtype == dtype
    close(out, full_loop(q, k, v, shape[-1] ** -0.5), tol)
    close(ref.forward(q, k, v, causal=False, scale=0.3), full_loop(q, k, v, 0.3, causal=False), tol)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [1, 3, 16, 100])
def test_swa(shape, window):
    q, k, v, *_ = rand(*shape, dtype=torch.float64)
    out = impls.get("swa/reference").forward(q, k, v, window=window)
    close(out, full_loop(q, k, v, shape[-1] ** -0.5, window=window), 1e-10)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_decay", [False, True])
def test_linear(shape, with_decay):
    q, k, v, _, decay = rand(*shape, dtype=torch.float64)
    decay = decay * 3 if with_decay else None
    out = impls.get("linear/reference").forward(q, k, v, decay=decay)
    close(out, linear_loop(q, k, v, shape[-1] ** -0.5, decay), 1e-10)


def test_linear_long_strong_decay_is_exact():
    # cumulative decays reach -2000: a difference of cumsums would lose digits, segment sums do not
    q, k, v, _, decay = rand(1, 256, 1, 4, dtype=torch.float32)
    decay = decay * 16
    out = impls.get("linear/reference").forward(q, k, v, decay=decay)
    close(out, linear_loop(q, k, v, 0.5, decay), 5e-5)


RAT_CASES = [  # (B, T, H, D, chunk_size)
    (1, 1, 1, 4, 1),
    (2, 8, 2, 8, 1),
    (2, 12, 3, 8, 4),
    (1, 16, 2, 16, 16),  # T == chunk_size
    (1, 32, 1, 8, 8),
    (2, 24, 2, 6, 2),
]


@pytest.mark.parametrize("case", RAT_CASES)
@pytest.mark.parametrize("rope", [True, False])
def test_rat(case, rope):
    B, T, H, D, L = case
    q, k, v, f, _ = rand(B, T, H, D, dtype=torch.float64)
    out = impls.get("rat/reference").forward(q, k, v, f, chunk_size=L, rope=rope)
    close(out, rat_loop(q, k, v, f, L, D ** -0.5, rope=rope), 1e-10)


def test_rat_float32_and_scale():
    q, k, v, f, _ = rand(2, 16, 2, 8)
    out = impls.get("rat/reference").forward(q, k, v, f, chunk_size=4, scale=0.7)
    assert out.dtype == torch.float32
    close(out, rat_loop(q, k, v, f, 4, 0.7), 2e-5)


def test_rat_bf16_output_dtype():
    q, k, v, f, _ = rand(1, 8, 1, 8, dtype=torch.bfloat16)
    assert impls.get("rat/reference").forward(q, k, v, f, chunk_size=4).dtype == torch.bfloat16
