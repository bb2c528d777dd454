"""rat/triton against the float64 reference, in Triton's interpreter (fp32, small shapes, 16-row tiles):
forward and every gradient (q, k, v, f) with rope on and off, partial tiles, chunk_size 1, chunks
longer than a tile, chunk_size == T, a chunk size that is not a power of two, non-contiguous inputs,
prefill + decode steps (with and without the split-over-slots merge) against one forward pass, and
clear errors for what it does not support."""
from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

from ratbench import impls
from ratbench.impls.base import UnavailableError
from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton


def rand(B, T, H, D, seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, generator=g) for _ in range(3))
    f = torch.sigmoid(2 * torch.randn(B, T, H, D, generator=g))
    return q, k, v, f


def check(a: torch.Tensor, b: torch.Tensor, tol: float, what: str) -> None:
    a, b = a.double(), b.double()
    assert a.shape == b.shape and torch.isfinite(a).all(), what
    if b.norm() == 0:  # e.g. dq, dk when chunk_size == T: y does not depend on q, k
        assert a.abs().max() < tol, f"{what}: {a.abs().max():.2e} (reference is 0)"
        return
    err = ((a - b).norm() / b.norm()).item()
    assert err < tol, f"{what}: relative error {err:.2e}"


def reference_grads(q, k, v, f, do, L, rope):
    leaves = [x.double().requires_grad_(True) for x in (q, k, v, f)]
    o = impls.get("rat/reference").forward(*leaves, chunk_size=L, rope=rope)
    return o, torch.autograd.grad(o, leaves, do.double())


def assert_matches_reference(impl, q, k, v, f, L: int, rope: bool = True) -> None:
    """impl's o and dq, dk, dv, df (for a random dO) against the float64 reference."""
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v, f)]
    o = impl.forward(*leaves, chunk_size=L, rope=rope)
    do = torch.randn_like(o)
    grads = torch.autograd.grad(o, leaves, do)
    ro, rgrads = reference_grads(q, k, v, f, do, L, rope)
    check(o, ro, 2e-6, "o")
    for name, g, rg in zip("qkvf", grads, rgrads):
        check(g, rg, 1e-5, f"d{name}")


def assert_gate_one_finite(impl, T: int, L: int) -> None:
    """f = 1 everywhere (the states stay 0): o is exactly 0 and no gradient is NaN or inf."""
    q, k, v, _ = rand(1, T, 1, 32, seed=1)
    f = torch.ones_like(q)
    leaves = [x.clone().requires_grad_(True) for x in (q, k, v, f)]
    o = impl.forward(*leaves, chunk_size=L)
    o.sum().backward()
    assert torch.isfinite(o).all() and o.abs().max() == 0
    assert all(torch.isfinite(x.grad).all() for x in leaves)


def test_registered():
    impl = impls.get("rat/triton")
    assert isinstance(impl, RATTriton)
    assert impl.unavailable_reason("cpu") is None  # TRITON_INTERPRET=1


@pytest.mark.parametrize(
    "B,T,H,D,L,rope",
    [
        (1, 32, 1, 32, 4, True),  # 4 chunks per 16-row tile
        (2, 48, 2, 32, 16, False),  # one chunk per tile, B and H > 1
        (1, 40, 1, 32, 8, True),  # last tile partial (40 = 2.5 tiles)
        (1, 24, 2, 32, 1, True),  # chunk 1: causal attention over scanned tokens
        (1, 64, 1, 32, 32, True),  # chunks of 2 query tiles
        (2, 64, 1, 32, 64, True),  # chunk_size == T (4 query tiles), y = vt
        (1, 72, 1, 32, 12, True),  # chunk size not a power of two; 6 chunks over 2 scan programs
        (1, 32, 1, 64, 8, True),  # D = 64
    ],
)
def test_forward_backward(B, T, H, D, L, rope):
    q, k, v, f = rand(B, T, H, D, seed=T * 7 + L + D)
    assert_matches_reference(impls.get("rat/triton"), q, k, v, f, L, rope)


def test_non_contiguous_inputs_and_scale():
    B, T, H, D, L = 1, 32, 2, 32, 8
    g = torch.Generator().manual_seed(3)
    packed = torch.randn(B, T, H, 4 * D, generator=g)  # q, k, v, gate logits side by side
    q, k, v, z = packed.split(D, dim=-1)
    f = torch.sigmoid(z)
    assert not q.is_contiguous()
    o = impls.get("rat/triton").forward(q, k, v, f, chunk_size=L, scale=0.3)
    ref = impls.get("rat/reference").forward(q.double(), k.double(), v.double(), f.double(), chunk_size=L, scale=0.3)
    check(o, ref, 2e-6, "o")


def test_forget_gate_one_gives_no_nan():
    assert_gate_one_finite(impls.get("rat/triton"), 32, 8)


@pytest.mark.parametrize(
    "T,T0,L,rope,splits",
    [
        (44, 21, 4, True, 1),  # prompt ends mid-chunk
        (40, 16, 8, False, 1),  # prompt ends on a chunk boundary
        (96, 5, 1, True, 4),  # chunk 1: up to 95 slots over 4 splits of 32 (merge in-kernel)
        (64, 40, 32, True, 2),  # chunks longer than a query tile
    ],
)
def test_prefill_then_steps_equals_forward(T, T0, L, rope, splits):
    B, H, D = 2, 2, 32
    q, k, v, f = rand(B, T, H, D, seed=T0 + splits)
    ref = impls.get("rat/reference").forward(q.double(), k.double(), v.double(), f.double(), chunk_size=L, rope=rope)
    impl = RATTriton(dataclasses.replace(INTERPRET_CONFIG, step_splits=splits))
    state = impl.init_state(B, H, D, T + 3, device="cpu", dtype=torch.float32, chunk_size=L, rope=rope)
    outs = [impl.prefill(state, q[:, :T0], k[:, :T0], v[:, :T0], f[:, :T0])]
    check(outs[0], ref[:, :T0], 2e-6, "prefill")
    for t in range(T0, T):
        outs.append(impl.step(state, q[:, t], k[:, t], v[:, t], f[:, t])[:, None])
    assert state.pos == T
    check(torch.cat(outs, 1), ref, 2e-6, "prefill + steps")
    # the cache holds the reference's chunk ends (slot c: running state of the current chunk)
    ref_state = impls.get("rat/reference").init_state(B, H, D, T + 3, device="cpu", dtype=torch.float64,
                                                       chunk_size=L, rope=rope)
    impls.get("rat/reference").prefill(ref_state, q.double(), k.double(), v.double(), f.double())
    n = -(-T // L)
    check(state.k_cache[:, :, :n], ref_state.k_cache[:, :, :n], 2e-6, "k_cache")
    check(state.v_cache[:, :, :n], ref_state.v_cache[:, :, :n], 2e-6, "v_cache")
    check(state.kt, ref_state.kt, 2e-6, "running kt")


def test_errors():
    impl = impls.get("rat/triton")
    q, k, v, f = rand(1, 48, 1, 32, seed=0)
    with pytest.raises(ValueError, match="chunk_size"):
        impl.forward(q, k, v, f, chunk_size=5)  # 48 is not a multiple of 5
    with pytest.raises(UnavailableError, match="dtype"):
        impl.forward(q.double(), k.double(), v.double(), f.double(), chunk_size=8)
    x = torch.randn(1, 16, 1, 48)
    with pytest.raises(UnavailableError, match="head_dim"):
        impl.forward(x, x, x, torch.sigmoid(x), chunk_size=8)
    big = torch.randn(65536, 1, 1, 32)  # B * H > 65535: more sequences than one launch grid axis holds
    with pytest.raises(ValueError, match="B \\* H"):
        impl.forward(big, big, big, torch.sigmoid(big), chunk_size=1)
    state = impl.init_state(1, 1, 32, 64, device="cpu", dtype=torch.float32, chunk_size=8)
    with pytest.raises(ValueError, match="decode state"):
        impl.prefill(state, *(x.repeat(2, 1, 1, 1) for x in (q, k, v, f)))  # state is for B = 1


def test_step_launch_rule():
    """The decode step's launch (impls.rat.triton.step_launch): slot splits only for few B*H on a GPU (4 warps,
    128-slot steps, as measured in run 2); one split: 2 warps, 64-slot steps up to 512 slots, then 128; explicit
    config values win."""
    import dataclasses

    from ratbench.impls.rat.triton import DEFAULT_CONFIG, step_launch

    assert step_launch(DEFAULT_CONFIG, 16, 8191, 132) == (16, 128, 4)  # B = 1, T = 128k
    assert step_launch(DEFAULT_CONFIG, 16, 8191, None) == (1, 128, 2)  # no GPU: no splits
    assert step_launch(DEFAULT_CONFIG, 1024, 1024, 132) == (1, 128, 2)  # B = 64, T = 16k: 1025 slots
    assert step_launch(DEFAULT_CONFIG, 8192, 255, 132) == (1, 64, 2)  # B = 512, 256 slots
    assert step_launch(DEFAULT_CONFIG, 36736, 511, 132) == (1, 64, 2)
    assert step_launch(DEFAULT_CONFIG, 36736, 512, 132) == (1, 128, 2)
    cfg = dataclasses.replace(DEFAULT_CONFIG, step_bn=256, step_warps=8, step_splits=2)
    assert step_launch(cfg, 1024, 1024, 132) == (2, 256, 8)


def test_kernels_exported():
    """impls.rat.kernels.__all__ names every kernel of the package (each module's *_kernel JIT functions) and
    nothing else but LOG2E (c9ca623's triton_kernels.__all__ left out the two default backward kernels)."""
    import importlib
    import pkgutil

    from triton.runtime.jit import KernelInterface  # JITFunction, or InterpretedFunction under the interpreter

    from ratbench.impls.rat import kernels

    found = set()
    for mod in pkgutil.iter_modules(kernels.__path__):
        m = importlib.import_module(f"ratbench.impls.rat.kernels.{mod.name}")
        found |= {n for n, x in vars(m).items() if isinstance(x, KernelInterface) and n.endswith("_kernel")
                  and x.fn.__module__ == m.__name__}
    assert "bwd_dq_pre_kernel" in found and "bwd_dkv_early_kernel" in found
    assert set(kernels.__all__) == found | {"LOG2E"}
