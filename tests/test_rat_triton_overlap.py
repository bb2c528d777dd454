"""rat/triton v8 variants against the float64 reference, in Triton's interpreter (fp32, 16-row tiles), o and
every gradient: RATTritonConfig.fwd_pipe (fwd_pipe_kernel, S of the next key block issued before this block's
softmax, loop unrolled by two; the backward reads its lse): row tiles with 0 to 4 unmasked key blocks before
the masked tail (odd and even counts: the guarded epilogue), partial last tiles, B and H > 1, D = 64, BM 32 >
BN 16; RATTritonConfig.dkv_early_dp (bwd_dkv_early_kernel, dP^T before the exponentials): masked and
unmasked query tiles, partial last tile, several key blocks."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

from impls.rat.triton import INTERPRET_CONFIG, RATTriton
from tests.test_rat_triton import assert_matches_reference, rand


@pytest.mark.parametrize(
    "B,T,H,D,L,bm",
    [
        (1, 76, 1, 32, 1, 16),  # tiles with n = 0..4 unmasked blocks, last tile partial (76 = 4.75 tiles)
        (2, 100, 2, 32, 2, 16),  # chunk 2: n = 0..3, B, H > 1, partial tile
        (1, 72, 1, 64, 1, 32),  # D = 64, BM 32 over BN 16 blocks, partial tile
    ],
)
def test_fwd_pipe_matches_reference(B, T, H, D, L, bm):
    cfg = dataclasses.replace(INTERPRET_CONFIG, fwd_pipe=True, fwd_bm=bm)
    q, k, v, f = rand(B, T, H, D, seed=T + L)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L)


def test_fwd_pipe_rejects_full_v():
    with pytest.raises(ValueError, match="fwd_pipe"):
        dataclasses.replace(INTERPRET_CONFIG, fwd_pipe=True, fwd_full_v=True)


@pytest.mark.parametrize(
    "B,T,H,D,L",
    [
        (1, 76, 1, 32, 1),  # 5 key blocks of 16, partial last query tile
        (2, 100, 2, 32, 2),  # B, H > 1, chunk 2, partial tile
        (1, 72, 1, 64, 4),  # D = 64, chunks of 4 (a key block's masked rows span 4 query tiles)
    ],
)
def test_dkv_early_dp_matches_reference(B, T, H, D, L):
    cfg = dataclasses.replace(INTERPRET_CONFIG, dkv_early_dp=True)
    q, k, v, f = rand(B, T, H, D, seed=T + L + 1)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L)


def test_dkv_early_dp_rejects_fused_dq():
    with pytest.raises(ValueError, match="dkv_early_dp"):
        dataclasses.replace(INTERPRET_CONFIG, dkv_early_dp=True, fused_dq=True)
