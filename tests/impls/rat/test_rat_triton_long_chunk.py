"""rat/triton's two-level scans for long chunks (RATTritonConfig.long_scan, impls/rat/kernels/long_scan.py)
against the float64 reference, in Triton's interpreter (fp32, small shapes; 16-row sub-blocks, carry
scan 4 sub-blocks at a time): forward and every gradient for chunk_size == T with T not a multiple of
the sub-block, several chunks longer than a sub-block (L % S != 0 and == 0), rope on and off, the
16-bit ("dq_first") backward, prefill + decode steps (prompt ending mid-chunk, sub-blocks past the prompt), and
the automatic rule that picks the path."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch
from test_rat_triton import (  # test folders on sys.path (tests/conftest.py)
    assert_gate_one_finite,
    assert_matches_reference,
    check,
    rand,
)

from ratbench import impls
from ratbench.impls.rat.triton import DEFAULT_CONFIG, INTERPRET_CONFIG, RATTriton, long_scan_used

LONG = dataclasses.replace(INTERPRET_CONFIG, long_scan=True, lscan_bnb=4)


@pytest.mark.parametrize(
    "B,T,H,L,rope,extra",
    [
        (1, 72, 1, 72, True, {}),  # chunk_size == T: 5 sub-blocks (last one 8 rows), carry over 2 steps
        (2, 80, 1, 40, True, {}),  # 2 chunks of 40 rows: 3 sub-blocks each, L % S != 0
        (1, 96, 1, 48, False, {}),  # rope off, L % S == 0
        (1, 80, 1, 40, True, {"backward": "dq_first"}),  # Delta from bwd_dq_pre_kernel, the early dK/dV kernel
    ],
)
def test_forward_backward(B, T, H, L, rope, extra):
    D = 32
    q, k, v, f = rand(B, T, H, D, seed=T + L)
    assert_matches_reference(RATTriton(dataclasses.replace(LONG, **extra)), q, k, v, f, L, rope)


@pytest.mark.parametrize(
    "T,T0,L,rope",
    [
        (80, 53, 40, True),  # prompt ends 13 rows into chunk 1: its sub-blocks 1, 2 hold no prompt row
        (96, 37, 96, False),  # one chunk (the RNN): 3 sub-blocks over the prompt, last one partial
    ],
)
def test_prefill_then_steps_equals_forward(T, T0, L, rope):
    B, H, D = 1, 2, 32
    q, k, v, f = rand(B, T, H, D, seed=T0)
    ref = impls.get("rat/reference").forward(q.double(), k.double(), v.double(), f.double(), chunk_size=L, rope=rope)
    impl = RATTriton(LONG)
    state = impl.init_state(B, H, D, T, device="cpu", dtype=torch.float32, chunk_size=L, rope=rope)
    outs = [impl.prefill(state, q[:, :T0], k[:, :T0], v[:, :T0], f[:, :T0])]
    check(outs[0], ref[:, :T0], 2e-6, "prefill")
    ref_state = impls.get("rat/reference").init_state(B, H, D, T, device="cpu", dtype=torch.float64,
                                                       chunk_size=L, rope=rope)
    impls.get("rat/reference").prefill(ref_state, q[:, :T0].double(), k[:, :T0].double(), v[:, :T0].double(),
                                       f[:, :T0].double())
    n = -(-T0 // L)
    check(state.k_cache[:, :, :n], ref_state.k_cache[:, :, :n], 2e-6, "k_cache after prefill")
    check(state.v_cache[:, :, :n], ref_state.v_cache[:, :, :n], 2e-6, "v_cache after prefill")
    check(state.kt, ref_state.kt, 2e-6, "running kt after prefill")
    check(state.vt, ref_state.vt, 2e-6, "running vt after prefill")
    for t in range(T0, T):
        outs.append(impl.step(state, q[:, t], k[:, t], v[:, t], f[:, t])[:, None])
    check(torch.cat(outs, 1), ref, 2e-6, "prefill + steps")


def test_forget_gate_one_gives_no_nan():
    assert_gate_one_finite(RATTriton(LONG), 48, 48)


def test_rule():
    # the automatic rule is the default (measured on the H200: impls/rat/NOTES.md v7)
    assert DEFAULT_CONFIG.long_scan is None
    cfg = DEFAULT_CONFIG
    # the RNN of the paper's speed protocol (262144 tokens, H = 16): two-level at every T
    for T in (4096, 8192, 131072, 262144):
        assert long_scan_used(cfg, 262144 // T, 16, T, T)
    # normal chunk sizes never, whatever the batch
    for L in (1, 8, 16, 64, 256):
        assert not long_scan_used(cfg, 1, 1, 4096, L)
    # long chunks, but many of them: the plain scans have lanes enough
    assert not long_scan_used(cfg, 128, 16, 4096, 4096)
    assert not long_scan_used(cfg, 2, 16, 131072, 1024)
    assert long_scan_used(cfg, 2, 16, 131072, 8192)
    # a short prompt in a long-chunk state: min(L, T) rows per lane
    assert not long_scan_used(cfg, 1, 16, 100, 131072)
    # forced either way
    assert long_scan_used(dataclasses.replace(cfg, long_scan=True), 1, 1, 64, 4)
    assert not long_scan_used(dataclasses.replace(cfg, long_scan=False), 1, 16, 131072, 131072)
