"""full/triton and swa/triton against the float64 references, in Triton's interpreter (fp32, small
shapes, 16-row tiles): forward and every gradient with partial tiles, causal and non-causal, windows
of 1, smaller than a tile, spanning tiles, and larger than T; prefill + decode steps (with and
without the split-over-slots merge, ring wrap-around) against one forward pass; clear errors."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

from ratbench import impls
from ratbench.impls.base import UnavailableError
from ratbench.impls.full.triton import INTERPRET_CONFIG, FullTriton
from ratbench.impls.swa.triton import SWATriton


def rand(B, T, H, D, seed):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(B, T, H, D, generator=g) for _ in range(3))


def check(a: torch.Tensor, b: torch.Tensor, tol: float, what: str) -> None:
    a, b = a.double(), b.double()
    assert a.shape == b.shape and torch.isfinite(a).all(), what
    if b.norm() == 0:  # dq, dk with one visible key (window 1, T = 1): the softmax is constant
        assert a.abs().max() < tol, f"{what}: {a.abs().max():.2e} (reference is 0)"
        return
    err = ((a - b).norm() / b.norm()).item()
    assert err < tol, f"{what}: relative error {err:.2e}"


def run(name, impl, q, k, v, **kw):
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
    o = impl.forward(*leaves, **kw)
    do = torch.randn_like(o)
    grads = torch.autograd.grad(o, leaves, do)
    rleaves = [x.double().requires_grad_(True) for x in (q, k, v)]
    ro = impls.get(name).forward(*rleaves, **kw)
    rgrads = torch.autograd.grad(ro, rleaves, do.double())
    check(o, ro, 2e-6, "o")
    for n, g, rg in zip("qkv", grads, rgrads):
        check(g, rg, 1e-5, f"d{n}")


def test_registered():
    assert isinstance(impls.get("full/triton"), FullTriton)
    assert isinstance(impls.get("swa/triton"), SWATriton)
    assert impls.get("swa/triton").unavailable_reason("cpu") is None  # TRITON_INTERPRET=1


@pytest.mark.parametrize(
    "B,T,H,D,causal",
    [
        (1, 1, 1, 32, True),  # one token
        (2, 40, 2, 32, True),  # partial last tile, B and H > 1
        (1, 37, 1, 64, False),  # non-causal, partial key block
        (1, 64, 1, 64, True),  # D = 64, whole tiles
    ],
)
def test_full(B, T, H, D, causal):
    q, k, v = rand(B, T, H, D, seed=T + D)
    run("full/reference", impls.get("full/triton"), q, k, v, causal=causal)


@pytest.mark.parametrize(
    "T,window,D",
    [
        (1, 3, 32),  # window > T = 1
        (40, 1, 32),  # each row sees itself only
        (45, 5, 32),  # window inside one tile, partial last tile
        (80, 23, 32),  # window over 2-3 key blocks: masked edges + an unmasked middle
        (50, 200, 64),  # window > T: plain causal
        (200, 37, 32),  # longer sequence
    ],
)
def test_swa(T, window, D):
    q, k, v = rand(1, T, 2, D, seed=T + window)
    run("swa/reference", impls.get("swa/triton"), q, k, v, window=window)


@pytest.mark.parametrize("family,T,kw", [("full", 40, {"causal": True}), ("full", 33, {"causal": False}),
                                          ("swa", 80, {"window": 23})])
def test_fused_dq(family, T, kw):
    """config fused_dq: dq accumulated by the dK/dV kernel with float32 atomics, then scaled."""
    q, k, v = rand(1, T, 1, 32, seed=T)
    cfg = dataclasses.replace(INTERPRET_CONFIG, fused_dq=True)
    run(f"{family}/reference", FullTriton(cfg) if family == "full" else SWATriton(cfg), q, k, v, **kw)


def test_non_contiguous_inputs_and_scale():
    g = torch.Generator().manual_seed(3)
    packed = torch.randn(1, 33, 2, 96, generator=g)
    q, k, v = packed.split(32, dim=-1)
    assert not q.is_contiguous()
    for name, kw in (("full", {"causal": True}), ("swa", {"window": 7})):
        o = impls.get(f"{name}/triton").forward(q, k, v, scale=0.3, **kw)
        ref = impls.get(f"{name}/reference").forward(q.double(), k.double(), v.double(), scale=0.3, **kw)
        check(o, ref, 2e-6, name)
        # gradients through the packed views (q's row stride differs from dO's: SAME_T off)
        leaf = packed.clone().requires_grad_(True)
        leaf64 = packed.double().requires_grad_(True)
        do = torch.randn(1, 33, 2, 32, generator=g)
        (g1,) = torch.autograd.grad(impls.get(f"{name}/triton").forward(*leaf.split(32, -1), scale=0.3, **kw), leaf, do)
        (g2,) = torch.autograd.grad(impls.get(f"{name}/reference").forward(*leaf64.split(32, -1), scale=0.3, **kw),
                                    leaf64, do.double())
        check(g1, g2, 1e-5, f"{name} packed grads")


@pytest.mark.parametrize("family,T,T0,window,splits", [
    ("full", 40, 13, None, 1),
    ("full", 70, 3, None, 4),  # up to 69 older slots over 4 splits of 16 (merge in-kernel)
    ("swa", 40, 5, 8, 1),  # the ring fills and wraps during the steps
    ("swa", 60, 30, 21, 2),  # prompt longer than the window; splits over the ring
])
def test_prefill_then_steps_equals_forward(family, T, T0, window, splits):
    B, H, D = 2, 2, 32
    q, k, v = rand(B, T, H, D, seed=T0 + splits)
    cfg = dataclasses.replace(INTERPRET_CONFIG, step_splits=splits)
    impl = FullTriton(cfg) if family == "full" else SWATriton(cfg)
    kw = {} if window is None else {"window": window}
    ref = impls.get(f"{family}/reference").forward(q.double(), k.double(), v.double(), **kw)
    state = impl.init_state(B, H, D, T, device="cpu", dtype=torch.float32, **kw)
    outs = [impl.prefill(state, q[:, :T0], k[:, :T0], v[:, :T0])]
    check(outs[0], ref[:, :T0], 2e-6, "prefill")
    for t in range(T0, T):
        outs.append(impl.step(state, q[:, t], k[:, t], v[:, t])[:, None])
    assert state.pos == T
    check(torch.cat(outs, 1), ref, 2e-6, "prefill + steps")


def test_errors():
    impl = impls.get("full/triton")
    q, k, v = rand(1, 16, 1, 32, seed=0)
    with pytest.raises(UnavailableError, match="dtype"):
        impl.forward(q.double(), k.double(), v.double())
    x = torch.randn(1, 16, 1, 48)
    with pytest.raises(UnavailableError, match="head_dim"):
        impl.forward(x, x, x)
    big = torch.randn(65536, 1, 1, 32)
    with pytest.raises(ValueError, match="B \\* H"):
        impl.forward(big, big, big)
    state = impl.init_state(1, 1, 32, 64, device="cpu", dtype=torch.float32)
    with pytest.raises(ValueError, match="decode state"):
        impl.prefill(state, *(x.repeat(2, 1, 1, 1) for x in (q, k, v)))
    with pytest.raises(ValueError, match="window"):
        impls.get("swa/triton").forward(q, k, v, window=0)
