"""linear/triton's segmented walker (forward without gradients, prefill, and the opt-in training
forward) in Triton's interpreter, fp32, small shapes: short segments are forced with ``seg_chunks``
(on the CPU the shape rule would pick one segment), and the rule itself is checked at H200 shapes.
Inputs and checks: the helpers of tests/impls/linear/test_linear_triton.py."""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch
from test_linear_triton import check_forward_backward, check_prefill_then_steps, rand, ref_forward, rel

from ratbench.impls.linear import triton_kernels as K
from ratbench.impls.linear.triton import LinearTriton, LinearTritonConfig

SEG1 = LinearTritonConfig(seg=True, seg_chunks=1)  # every chunk its own segment
SEG3_BV32 = LinearTritonConfig(seg=True, seg_chunks=3, fused_bv=32, segstate_bv=32)  # partial last segment
SEG_TRAIN = LinearTritonConfig(seg=True, fused=False, seg_train=True, seg_chunks=2)  # two-pass backward
SEG_TRAIN_FUSED = LinearTritonConfig(seg=True, fused=True, seg_train=True, seg_chunks=1)  # fused backward


class _Forbidden:
    """Stands in for the two-pass kernels: the segmented path must not launch them."""

    def __getitem__(self, grid):
        raise AssertionError("the two-pass forward ran instead of the segmented walker")


def test_segments_rule_at_h200_shapes():
    cfg = LinearTritonConfig()
    n_sm, D = 132, 128
    # B = 1, H = 16, T = 131072: 2048 chunks; 16 * 2 programs per segment set -> 33 segments of 63 chunks
    assert not cfg.plan(16, D, n_sm).fused
    assert cfg.segments(16, D, 2048, n_sm, fused=False) == (33, 63)
    # B = 4, T = 32768: 512 chunks, 128 programs per set -> 9 segments of 57 chunks
    assert cfg.segments(64, D, 512, n_sm, fused=False) == (9, 57)
    # B = 32, T = 4096: the plain fused walker already fills the GPU: one segment
    assert cfg.plan(512, D, n_sm).fused
    assert cfg.segments(512, D, 64, n_sm, fused=True) == (1, 64)
    # short sequences: no segment shorter than seg_min_chunks
    assert cfg.segments(16, D, 40, n_sm, fused=False) == (3, 16)
    # the override, and the grid limit on NS
    assert LinearTritonConfig(seg_chunks=5).segments(16, D, 12, n_sm, fused=True) == (3, 5)
    assert LinearTritonConfig(seg_chunks=1).segments(1, D, 70000, n_sm, fused=False) == (35000, 2)


@pytest.mark.parametrize(
    "B,T,H,D,decay,cfg",
    [
        (1, 200, 2, 64, False, SEG1),  # 4 segments, partial last chunk
        (1, 200, 2, 64, True, SEG1),
        (2, 256, 1, 128, True, SEG3_BV32),  # 4 chunks -> segments of 3 + 1
        (1, 150, 1, 128, False, SEG3_BV32),  # a single segment (NS = 1) through the same path
    ],
)
def test_segmented_forward_without_grad(B, T, H, D, decay, cfg, monkeypatch):
    monkeypatch.setattr(K, "chunk_fwd_h_kernel", _Forbidden())
    monkeypatch.setattr(K, "chunk_fwd_o_kernel", _Forbidden())
    q, k, v, d = rand(B, T, H, D, seed=T + D, decay=decay)
    o = LinearTriton(cfg).forward(q, k, v, decay=d)
    assert o.dtype == torch.float32 and o.shape == q.shape
    assert rel(o, ref_forward(q, k, v, d)) < 1e-5


@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize("cfg", [SEG_TRAIN, SEG_TRAIN_FUSED])
def test_segmented_training_forward_gradients(cfg, decay, monkeypatch):
    monkeypatch.setattr(K, "chunk_fwd_h_kernel", _Forbidden())
    B, T, H, D = 1, 200, 2, 64
    q, k, v, d = rand(B, T, H, D, seed=21, decay=decay)
    torch.manual_seed(1)
    check_forward_backward(LinearTriton(cfg), q, k, v, d, torch.randn(B, T, H, D))


@pytest.mark.parametrize("decay", [False, True])
def test_segmented_prefill_then_steps(decay):
    B, T0, n, H, D = 1, 200, 3, 2, 64
    q, k, v, d = rand(B, T0 + n, H, D, seed=31, decay=decay)
    check_prefill_then_steps(LinearTriton(SEG1), q, k, v, d, T0, expected=ref_forward(q, k, v, d))


def test_segmented_reset_across_segments():
    """decay = -inf at a segment's first token and inside another: the prefix over segments resets."""
    q, k, v, d = rand(1, 200, 2, 64, seed=41)
    d[0, 64, 0] = d[0, 130, 1] = float("-inf")
    o = LinearTriton(SEG1).forward(q, k, v, decay=d)
    assert rel(o, ref_forward(q, k, v, d)) < 1e-5
