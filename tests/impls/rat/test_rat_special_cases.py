"""RAT's special cases from docs/rat-spec.md: it reduces to attention, to an RNN, and never makes NaN."""
from __future__ import annotations

import pytest
import torch
from loops import rat_loop
from test_references import close, rand

from ratbench import impls
from ratbench.impls.rope import apply_rope, rope_cos_sin


@pytest.mark.parametrize("T,H,D", [(1, 1, 4), (9, 2, 8), (32, 3, 16)])
def test_chunk1_no_gate_is_causal_attention(T, H, D):
    q, k, v, _, _ = rand(2, T, H, D, dtype=torch.float64)
    f = torch.zeros_like(q)
    rat = impls.get("rat/reference").forward(q, k, v, f, chunk_size=1, rope=False)
    full = impls.get("full/reference").forward(q, k, v, causal=True)
    close(rat, full, 1e-12)


@pytest.mark.parametrize("T,H,D", [(9, 2, 8), (32, 1, 16)])
def test_chunk1_no_gate_with_rope_is_attention_with_token_rope(T, H, D):
    q, k, v, _, _ = rand(1, T, H, D, dtype=torch.float64)
    f = torch.zeros_like(q)
    rat = impls.get("rat/reference").forward(q, k, v, f, chunk_size=1, rope=True)
    cos, sin = rope_cos_sin(torch.arange(T), D, dtype=torch.float64)
    cos, sin = cos[None, :, None], sin[None, :, None]
    full = impls.get("full/reference").forward(apply_rope(q, cos, sin), apply_rope(k, cos, sin), v)
    close(rat, full, 1e-12)


@pytest.mark.parametrize("rope", [True, False])
def test_one_chunk_is_gated_value_rnn(rope):
    B, T, H, D = 2, 16, 2, 8
    q, k, v, f, _ = rand(B, T, H, D, dtype=torch.float64)
    y = impls.get("rat/reference").forward(q, k, v, f, chunk_size=T, rope=rope)
    vt = torch.zeros(B, H, D, dtype=torch.float64)
    for t in range(T):
        vt = f[:, t] * vt + (1 - f[:, t]) * v[:, t]
        close(y[:, t], vt, 1e-12)


@pytest.mark.parametrize("fill", [1.0, 1e-7, 0.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_no_nan_extreme_gates(fill, dtype):
    q, k, v, _, _ = rand(2, 16, 2, 8, dtype=dtype)
    f = torch.full_like(q, fill)
    y = impls.get("rat/reference").forward(q, k, v, f, chunk_size=4)
    assert torch.isfinite(y).all()
    if fill == 1.0:  # states stay 0: every output is 0
        assert (y == 0).all()


def test_f_one_matches_loop():
    q, k, v, _, _ = rand(1, 8, 1, 4, dtype=torch.float64)
    f = torch.ones_like(q)
    close(impls.get("rat/reference").forward(q, k, v, f, chunk_size=2), rat_loop(q, k, v, f, 2, 0.5), 1e-12)
