"""rat/triton v10 (RATTritonConfig.dq_first) against the float64 reference, in Triton's interpreter (fp32,
16-row tiles), o and every gradient: bwd_dq_pre_kernel runs first and writes Delta and RoPE(q) for the dK/dV
kernel and the backward scan (bwd_pre_kernel and bwd_dq_kernel are not run: they are replaced by raising
stubs here, so a silent fall-back to them fails). Partial last tiles, B and H > 1, rope on and off, D = 64,
chunk_size 1 and chunk_size == T (no chunk end is visible: dq is the self term alone, the dK/dV kernel finds
no rows, Delta reaches the backward scan, plain and two-level), with dkv_early_dp and with dkv_full."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

from impls.rat import triton_kernels as K
from impls.rat.triton import INTERPRET_CONFIG, RATTriton
from tests.test_rat_triton import assert_matches_reference, rand


class _NotRun:
    def __getitem__(self, grid):
        raise AssertionError("dq_first ran a kernel it replaces")


@pytest.fixture
def no_pre_no_dq(monkeypatch):
    monkeypatch.setattr(K, "bwd_pre_kernel", _NotRun())
    monkeypatch.setattr(K, "bwd_dq_kernel", _NotRun())


@pytest.mark.parametrize(
    "B,T,H,D,L,rope,extra",
    [
        (1, 40, 1, 32, 8, True, {}),  # last query tile partial (40 = 2.5 tiles), masked and unmasked key blocks
        (2, 48, 2, 32, 4, False, {}),  # B, H > 1, rope off
        (1, 24, 2, 64, 1, True, {}),  # D = 64, chunk_size 1, partial tile
        (1, 32, 1, 32, 32, True, {"long_scan": False}),  # chunk_size == T: plain backward scan reads Delta
        (1, 32, 1, 32, 32, True, {"long_scan": True}),  # ... and the two-level one (2 sub-blocks of 16)
        (1, 72, 1, 32, 2, True, {"dkv_early_dp": True}),  # with the v8 dK/dV kernel, partial tile
        (2, 40, 1, 32, 4, True, {"dkv_full": True}),  # with the full-head-dim dK/dV kernel (reads the same QR)
    ],
)
def test_dq_first_matches_reference(no_pre_no_dq, B, T, H, D, L, rope, extra):
    cfg = dataclasses.replace(INTERPRET_CONFIG, dq_first=True, **extra)
    q, k, v, f = rand(B, T, H, D, seed=T + L + 7)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L, rope=rope)


def test_dq_first_rejects_fused_dq():
    with pytest.raises(ValueError, match="dq_first"):
        dataclasses.replace(INTERPRET_CONFIG, dq_first=True, fused_dq=True)
