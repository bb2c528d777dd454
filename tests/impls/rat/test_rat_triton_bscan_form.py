"""The backward scan that forms each chunk's kt, vt again from k, v, f (RATTritonConfig.bscan_form,
bwd_scan_form_kernel) instead of reading the forward's per-token states: in Triton's interpreter against the float64
reference through rat/triton's backwards (plain and dq_first), and through rat/gluon's (the kernel finishing dq from
the Gluon backward's accumulator, DQ_OUT) with the Gluon kernels emulated, by the FlashAttention rule.
bwd_scan_kernel is replaced by a raising stub, so a silent fall-back to it fails; chunk sizes above 16 keep it."""
from __future__ import annotations

import dataclasses

import pytest
import test_rat_gluon_emulated as emu
import torch
from test_rat_triton import assert_matches_reference, rand

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton


class _NotRun:
    def __getitem__(self, grid):
        raise AssertionError("bwd_scan_kernel ran with bscan_form on")


@pytest.fixture
def plain_scan_stubbed(monkeypatch):
    monkeypatch.setattr(K, "bwd_scan_kernel", _NotRun())


@pytest.mark.parametrize("B,T,H,D,L,rope,nc,backward", [
    (1, 32, 1, 32, 4, True, 2, "plain"),  # 8 chunks over 4 programs
    (2, 48, 2, 32, 16, False, 2, "dq_first"),  # B, H > 1, rope off, the largest chunk it takes
    (1, 40, 1, 32, 8, True, 4, "dq_first"),  # 5 chunks: the last program's chunks partly masked
    (1, 24, 2, 32, 1, True, 4, "plain"),  # chunk 1 (no state before any row)
    (1, 72, 1, 32, 12, True, 2, "dq_first"),  # chunk size not a power of two
    (1, 32, 1, 64, 8, True, 2, "plain"),  # D = 64
])
def test_matches_reference(plain_scan_stubbed, B, T, H, D, L, rope, nc, backward):
    cfg = dataclasses.replace(INTERPRET_CONFIG, bscan_form=True, bscan_form_nc=nc, backward=backward)
    q, k, v, f = rand(B, T, H, D, seed=T * 7 + L + D)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, L, rope)


def test_long_chunks_keep_the_reading_scan():
    """Chunks longer than 16 rows take bwd_scan_kernel (the states of 32 rows would not fit in registers)."""
    cfg = dataclasses.replace(INTERPRET_CONFIG, bscan_form=True, bscan_form_nc=2)
    q, k, v, f = rand(1, 64, 1, 32, seed=5)
    assert_matches_reference(RATTriton(cfg), q, k, v, f, 32, True)


@pytest.mark.parametrize("T,L,D", [(1024, 4, 64), (640, 16, 128)])
def test_gluon_backward_emulated(monkeypatch, plain_scan_stubbed, T, L, D):
    """rat/gluon's training path (Gluon forward and backward emulated): the scan finishes dq (DQ_OUT)."""
    emu._emulate(monkeypatch, 3)
    cfg = dataclasses.replace(emu.GLUON, bscan_form=True, bscan_form_nc=2)
    x = emu._inputs(T, 2, D, seed=4)
    do = torch.randn(x[0].shape, generator=torch.Generator().manual_seed(5)).half()
    leaves = [t.clone().requires_grad_(True) for t in x]
    y = RATTriton(cfg).forward(*leaves, chunk_size=L)
    y.backward(do)
    emu._assert_fa_rule(["o", "dq", "dk", "dv", "df"], [y.detach()] + [t.grad for t in leaves], x, L, True, do)
