"""rat/triton's 16-bit backward (RATTritonConfig.backward = "dq_first") against the float64 reference, in Triton's
interpreter (fp32, 16-row tiles), o and every gradient: bwd_dq_pre_kernel runs first and writes Delta and RoPE(q)
for the dK/dV kernel (bwd_dkv_early_kernel: dP^T issued before the exponentials) and the backward scan
(bwd_pre_kernel, bwd_dq_kernel and bwd_dkv_kernel, the float32 path's, are not run: they are replaced by raising
stubs here, so a silent fall-back to them fails). Partial last tiles, B and H > 1, rope on and off, D = 64,
chunk_size 1, chunks spanning several query tiles, several key blocks with masked and unmasked query tiles, and
chunk_size == T (no chunk end is visible: dq is the self term alone, the dK/dV kernel finds no rows, Delta reaches
the backward scan, plain and two-level). Also: which backward each dtype gets by default."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch
from test_rat_triton import assert_matches_reference, rand

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.triton import (
    DEFAULT_CONFIG,
    FP32_CONFIG,
    INTERPRET_CONFIG,
    SHORT_CONFIG,
    RATTriton,
    RATTritonConfig,
    _cfg,
)


class _NotRun:
    def __getitem__(self, grid):
        raise AssertionError("the dq_first backward ran a kernel of the plain backward")


@pytest.fixture
def plain_kernels_stubbed(monkeypatch):
    for name in ("bwd_pre_kernel", "bwd_dq_kernel", "bwd_dkv_kernel"):
        monkeypatch.setattr(K, name, _NotRun())


@pytest.mark.parametrize(
    "B,T,H,D,L,rope,extra",
    [
        (1, 40, 1, 32, 8, True, {}),  # last query tile partial (40 = 2.5 tiles), masked and unmasked key blocks
        (2, 48, 2, 32, 4, False, {}),  # B, H > 1, rope off
        (1, 24, 2, 64, 1, True, {}),  # D = 64, chunk_size 1, partial tile
        (1, 32, 1, 32, 32, True, {"long_scan": False}),  # chunk_size == T: plain backward scan reads Delta
        (1, 32, 1, 32, 32, True, {"long_scan": True}),  # ... and the two-level one (2 sub-blocks of 16)
        (1, 72, 1, 32, 2, True, {}),  # partial tile, chunk 2
        (1, 76, 1, 32, 1, True, {}),  # 5 key blocks of 16, partial last query tile
        (2, 100, 2, 32, 2, True, {}),  # B, H > 1, chunk 2, partial tile
        (1, 72, 1, 64, 4, True, {}),  # D = 64, chunks of 4 (a key block's masked rows span 4 query tiles)
    ],
)
def test_dq_first_matches_reference(plain_kernels_stubbed, B, T, H, D, L, rope, extra):
    cfg = dataclasses.replace(INTERPRET_CONFIG, backward="dq_first", **extra)
    q, k, v, f = rand(B, T, H, D, seed=T + L + 7)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L, rope=rope)


def test_default_backwards(monkeypatch):
    """16-bit inputs get the dq_first backward at 3 dK/dV stages (H200 session 4), float32 the plain one."""
    assert DEFAULT_CONFIG.backward == "dq_first" and DEFAULT_CONFIG.dkv_stages == 3
    assert SHORT_CONFIG.backward == "dq_first" and SHORT_CONFIG.dkv_stages == 3
    assert FP32_CONFIG.backward == "plain"
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the GPU's choice (nothing is launched here)
    assert _cfg(None, 8192, torch.bfloat16) is DEFAULT_CONFIG
    assert _cfg(None, 256, torch.float16) is SHORT_CONFIG
    assert _cfg(None, 8192, torch.float32) is FP32_CONFIG


def test_backward_value_checked():
    with pytest.raises(ValueError, match="backward"):
        RATTritonConfig(backward="fused")
