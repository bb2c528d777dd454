"""rat/triton v11 (RATTritonConfig.fused_dq_tma) against the float64 reference, in Triton's interpreter (fp32,
16-row tiles): bwd_dkv_tma_kernel forms dq's chunk-end share (dS K, both head-dim halves) beside dK/dV and the
backward scan adds the self term. The interpreter has no TMA descriptor reductions (no create_descriptor_reduce
in triton 3.7.1's interpreter), so the kernel runs its TMA=False branch there: the same tiles and call sites
(_dq_reduce of the joined [BM, D] tile, or per half with fused_dq_tma_split), element-wise atomics instead of the descriptor add; the TMA branch is checked by the sm_90
compile (scripts/sass_rat_triton.py --only dkv_tma) and on the GPU (scripts/gpu_rat_overlap.py). The kernels the
switch replaces (bwd_dq, bwd_dq_pre and the other dK/dV kernels) are raising stubs here. Partial last tiles, B and
H > 1, rope off, D = 64, chunk_size 1 and chunk_size == T (no chunk end is visible: the dK/dV kernel finds no rows,
dq is the self term alone, plain and two-level backward scan), both product orders (dkv_early_dp)."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

from impls.rat import triton_kernels as K
from impls.rat.triton import DEFAULT_CONFIG, INTERPRET_CONFIG, RATTriton
from tests.test_rat_triton import assert_matches_reference, rand


class _NotRun:
    def __getitem__(self, grid):
        raise AssertionError("fused_dq_tma ran a kernel it replaces")


@pytest.fixture
def only_tma_kernel(monkeypatch):
    for name in ("bwd_dq_kernel", "bwd_dq_pre_kernel", "bwd_dkv_kernel", "bwd_dkv_early_kernel", "bwd_dkv_full_kernel"):
        monkeypatch.setattr(K, name, _NotRun())


@pytest.mark.parametrize(
    "B,T,H,D,L,rope,extra",
    [
        (1, 40, 1, 32, 8, True, {}),  # last query tile partial (40 = 2.5 tiles), masked and unmasked key blocks
        (2, 48, 2, 32, 4, False, {"dkv_early_dp": True}),  # B, H > 1, rope off, dP^T first
        (1, 24, 2, 64, 1, True, {}),  # D = 64, chunk_size 1, partial tile
        (1, 32, 1, 32, 32, True, {"long_scan": False}),  # chunk_size == T: no dK/dV rows, dq = self term (plain scan)
        (1, 32, 1, 32, 32, True, {"long_scan": True}),  # ... and the two-level backward scan (2 sub-blocks of 16)
        (1, 72, 1, 32, 2, True, {"dkv_early_dp": True}),  # 2 key blocks, partial tile
        (2, 40, 2, 32, 4, True, {"fused_dq_tma_split": True}),  # two [BM, D/2] reductions per tile
        (1, 72, 1, 64, 2, False, {"fused_dq_tma_split": True, "dkv_early_dp": True}),
    ],
)
def test_fused_dq_tma_matches_reference(only_tma_kernel, B, T, H, D, L, rope, extra):
    cfg = dataclasses.replace(INTERPRET_CONFIG, fused_dq_tma=True, **extra)
    q, k, v, f = rand(B, T, H, D, seed=T + L + 11)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L, rope=rope)


@pytest.mark.parametrize("bad", [{"fused_dq": True}, {"dq_first": True}, {"dkv_full": True}, {"dkv_reverse": False},
                                 {"exp2_poly_dkv": 0.125}])
def test_fused_dq_tma_refuses_combinations(bad):
    with pytest.raises(ValueError, match="fused_dq_tma"):
        dataclasses.replace(INTERPRET_CONFIG, fused_dq_tma=True, **bad)


def test_fused_dq_tma_split_needs_the_switch():
    with pytest.raises(ValueError, match="fused_dq_tma_split"):
        dataclasses.replace(INTERPRET_CONFIG, fused_dq_tma_split=True)


def test_fused_dq_tma_off_by_default():
    assert not DEFAULT_CONFIG.fused_dq_tma and not INTERPRET_CONFIG.fused_dq_tma
