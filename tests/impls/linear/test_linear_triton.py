"""linear/triton against the float64 reference, in Triton's interpreter (fp32, small shapes):
forward, every gradient with and without decay, partial chunks, small state blocks, prefill + decode
steps against one forward pass, and clear errors for what it does not support."""
from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

from ratbench import impls
from ratbench.impls.base import UnavailableError
from ratbench.impls.linear.triton import LinearTriton, LinearTritonConfig

# both forms, whatever the CPU heuristic picks; small blocks exercise the split-state paths
TWO_PASS = LinearTritonConfig(fused=False, seg=False)  # seg=False: the no-grad forward and prefill too
SMALL_BLOCKS = LinearTritonConfig(fused=False, state_bk=32, state_bv=32, o_bv=32, dqk_bv=32)
FUSED = LinearTritonConfig(fused=True)
FUSED32 = LinearTritonConfig(fused=True, fused_bv=32, dqk_bk=32)
C128 = LinearTritonConfig(fused=False, chunk=128, o_bv=128)
FUSED_C128 = LinearTritonConfig(fused=True, chunk=128)


def rand(B, T, H, D, seed, decay=True):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, generator=g) for _ in range(3))
    d = -torch.rand(B, T, H, generator=g) * 0.7 if decay else None
    return q, k, v, d


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    assert a.shape == b.shape and torch.isfinite(a).all()
    return ((a - b).norm() / b.norm()).item()


def ref_forward(q, k, v, d):
    """The float64 reference's output."""
    return impls.get("linear/reference").forward(q.double(), k.double(), v.double(),
                                                  decay=d.double() if d is not None else None)


def reference_and_grads(q, k, v, d, do, scale=None):
    ref = impls.get("linear/reference")
    leaves = [x.double().requires_grad_(True) for x in (q, k, v)]
    dd = d.double().requires_grad_(True) if d is not None else None
    o = ref.forward(*leaves, decay=dd, scale=scale)
    grads = torch.autograd.grad(o, leaves + ([dd] if dd is not None else []), do.double())
    return o, grads


def check_forward_backward(impl, q, k, v, d, do):
    """impl's output and its gradients (q, k, v and the decay) against the float64 reference."""
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    dl = d.clone().requires_grad_(True) if d is not None else None
    o = impl.forward(*leaves, decay=dl)
    assert o.dtype == torch.float32 and o.shape == q.shape
    grads = torch.autograd.grad(o, leaves + ([dl] if dl is not None else []), do)
    o_ref, grads_ref = reference_and_grads(q, k, v, d, do)
    assert rel(o, o_ref) < 1e-5
    for name, a, b in zip(("dq", "dk", "dv", "ddecay"), grads, grads_ref):
        assert a.dtype == torch.float32
        assert rel(a, b) < 1e-5, name


def check_prefill_then_steps(impl, q, k, v, d, T0, expected):
    """Prefill of the first T0 tokens into an empty state (filled with noise first: prefill must
    overwrite it), then one step per remaining token: outputs against ``expected`` (B, T, H, D), the
    final state against the float64 reference's."""
    B, T, H, D = q.shape
    state = impl.init_state(B, H, D, T, device="cpu", dtype=torch.float32)
    state.S.normal_()
    o0 = impl.prefill(state, q[:, :T0], k[:, :T0], v[:, :T0], d[:, :T0] if d is not None else None)
    assert state.pos == T0
    assert rel(o0, expected[:, :T0]) < 1e-5
    steps = [impl.step(state, q[:, t], k[:, t], v[:, t], d[:, t] if d is not None else None) for t in range(T0, T)]
    assert state.pos == T
    assert rel(torch.stack(steps, 1), expected[:, T0:]) < 1e-5
    ref = impls.get("linear/reference")
    rs = ref.init_state(B, H, D, T, device="cpu", dtype=torch.float64)
    ref.prefill(rs, q.double(), k.double(), v.double(), d.double() if d is not None else None)
    assert rel(state.S, rs.S) < 1e-5


def test_registered():
    impl = impls.get("linear/triton")
    assert isinstance(impl, LinearTriton)
    assert impl.unavailable_reason("cpu") is None  # TRITON_INTERPRET=1


@pytest.mark.parametrize(
    "B,T,H,D,decay,cfg",
    [
        (2, 64, 2, 64, False, None),  # one full chunk
        (1, 100, 2, 64, True, TWO_PASS),  # a partial second chunk
        (1, 100, 2, 64, True, FUSED),
        (2, 150, 1, 64, True, SMALL_BLOCKS),
        (1, 37, 1, 128, False, TWO_PASS),  # shorter than one chunk, D = 128
        (1, 37, 1, 128, False, FUSED),
        (1, 130, 1, 128, True, SMALL_BLOCKS),
        (1, 130, 1, 128, True, FUSED32),
        (1, 200, 1, 128, False, TWO_PASS),
        (1, 200, 1, 64, True, C128),  # chunk 128, partial second chunk
        (1, 200, 1, 64, True, FUSED_C128),
    ],
)
def test_forward_backward(B, T, H, D, decay, cfg):
    q, k, v, d = rand(B, T, H, D, seed=T + D, decay=decay)
    torch.manual_seed(T)
    do = torch.randn(B, T, H, D)
    check_forward_backward(LinearTriton(cfg) if cfg else LinearTriton(), q, k, v, d, do)


def test_custom_scale_and_grad_of_decay_only():
    q, k, v, d = rand(1, 70, 2, 64, seed=3)
    dl = d.clone().requires_grad_(True)
    o = impls.get("linear/triton").forward(q, k, v, decay=dl, scale=0.3)
    do = torch.randn_like(o)
    (g,) = torch.autograd.grad(o, [dl], do)
    o_ref, grads_ref = reference_and_grads(q, k, v, d, do, scale=0.3)
    assert rel(o, o_ref) < 1e-5
    assert rel(g, grads_ref[3]) < 1e-5


def test_non_contiguous_inputs_and_bf16_decay_grad_dtype():
    """(B, H, T, D) storage viewed as (B, T, H, D), a bf16 decay: same values, grads in the decay's dtype."""
    q, k, v, d = rand(1, 90, 2, 64, seed=4)
    qt, kt, vt = (x.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_(True) for x in (q, k, v))
    assert not qt.is_contiguous()
    dl = d.to(torch.bfloat16).requires_grad_(True)
    o = impls.get("linear/triton").forward(qt, kt, vt, decay=dl)
    do = torch.randn_like(o)
    grads = torch.autograd.grad(o, [qt, kt, vt, dl], do)
    o_ref, grads_ref = reference_and_grads(q, k, v, dl.detach().float(), do)
    assert rel(o, o_ref) < 1e-5
    for a, b in zip(grads[:3], grads_ref[:3]):
        assert rel(a, b) < 1e-5
    assert grads[3].dtype == torch.bfloat16 and rel(grads[3], grads_ref[3]) < 1e-2


def test_strong_decay_is_finite():
    """Log-decays of -30 per token: exp of within-chunk differences must never overflow."""
    q, k, v, _ = rand(1, 80, 1, 64, seed=5)
    d = torch.full((1, 80, 1), -30.0)
    o = impls.get("linear/triton").forward(q, k, v, decay=d)
    assert rel(o, ref_forward(q, k, v, d)) < 1e-5


def test_infinite_decay_is_a_reset():
    """decay = -inf at some tokens (a hard reset of the state) gives the reference's output, no NaN."""
    q, k, v, d = rand(1, 100, 2, 64, seed=9)
    d[0, 10, 0] = d[0, 70, 1] = d[0, 71, 0] = float("-inf")
    o = impls.get("linear/triton").forward(q, k, v, decay=d)
    assert rel(o, ref_forward(q, k, v, d)) < 1e-5


@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize("cfg", [TWO_PASS, FUSED])
def test_prefill_then_steps_match_forward(decay, cfg):
    B, T0, n, H, D = 2, 70, 5, 2, 64
    q, k, v, d = rand(B, T0 + n, H, D, seed=11, decay=decay)
    impl = LinearTriton(cfg)
    check_prefill_then_steps(impl, q, k, v, d, T0, expected=impl.forward(q, k, v, decay=d))


def test_errors():
    impl = impls.get("linear/triton")
    q = torch.randn(1, 8, 1, 32)
    with pytest.raises(UnavailableError, match="head_dim"):
        impl.forward(q, q, q)
    q = torch.randn(1, 8, 1, 64, dtype=torch.float64)
    with pytest.raises(UnavailableError, match="dtype"):
        impl.forward(q, q, q)
    q = torch.randn(1, 2, 65536, 64).expand(1, 2, 65536, 64)
    with pytest.raises(ValueError, match="B\\*H"):
        impl.forward(q, q, q)
    state = impl.init_state(2, 1, 64, 8, device="cpu", dtype=torch.float32)
    qt = torch.randn(1, 1, 64)
    with pytest.raises(ValueError, match="state.S has shape"):
        impl.step(state, qt, qt, qt)
