"""Peers (impls/<family>/<peer>.py) against the references on the CPU, where a peer runs there:
full/sdpa-math, full/flex, swa/flex and rat/flex forward (FlexAttention has no CPU backward), decode
(prefill + steps == forward), and fla-core's recurrent decode kernel in Triton's interpreter.
CUDA-only peers (SDPA flash/cuDNN/efficient, flash-attn 2/4, fla's chunked kernels) are checked on the
GPU by `run_bench.py --preset peers --device cuda`; here we check that they say why they cannot run."""
from __future__ import annotations

import importlib.util
import time

import pytest
import torch
from test_references import close, rand

from ratbench import impls
from ratbench.impls.base import UnavailableError

PEERS = ["full/sdpa-flash", "full/sdpa-cudnn", "full/sdpa-efficient", "full/sdpa-math", "full/flex",
         "full/flash-attn", "full/fa4", "swa/flex", "swa/flash-attn", "swa/fa4", "linear/fla", "rat/flex"]
TOL = 2e-5  # float32 peer vs float32 reference


@pytest.fixture(autouse=True, scope="module")
def _one_compile_thread():
    """Inductor's compile-worker pool costs more than it saves on a 2-core CI machine."""
    import torch._inductor.config as cfg

    old = cfg.compile_threads
    cfg.compile_threads = 1
    yield
    cfg.compile_threads = old


def decode_matches_reference(name, fwd_kwargs, state_kwargs, q, k, v, extra=None, T0=3, tol=TOL):
    """prefill(T0) + steps of the peer == the family reference's forward over the whole sequence.
    (Compared with the reference, not the peer's own forward: one compiled shape fewer per test.)"""
    impl = impls.get(name)
    ref = impls.get(name.split("/")[0] + "/reference")
    B, T, H, D = q.shape
    args = (q, k, v) if extra is None else (q, k, v, extra)
    full = ref.forward(*args, **fwd_kwargs)
    state = impl.init_state(B, H, D, T, device="cpu", dtype=q.dtype, **state_kwargs)
    outs = [impl.prefill(state, *(x[:, :T0] for x in args))]
    for t in range(T0, T):
        outs.append(impl.step(state, *(x[:, t] for x in args))[:, None])
    assert state.pos == T
    close(torch.cat(outs, dim=1), full, tol)


# ----- registry and availability -----------------------------------------------------------------
def test_every_peer_is_listed_with_a_reason_when_unavailable():
    rows = {r.name: r for r in impls.available("cpu")}
    for name in PEERS:
        assert name in rows, f"{name} is not registered"
        r = rows[name]
        assert r.available or (isinstance(r.reason, str) and len(r.reason) > 10), (name, r.reason)
    for name in ["full/sdpa-math", "full/flex", "swa/flex", "rat/flex"]:
        assert rows[name].available, rows[name].reason
    for name in ["full/sdpa-flash", "full/sdpa-cudnn", "full/sdpa-efficient", "full/flash-attn", "full/fa4",
                 "swa/flash-attn", "swa/fa4"]:
        assert not rows[name].available and "cuda" in rows[name].reason
    # asking for a GPU on a machine without one names that, for every peer
    for r in impls.available("cuda"):
        if not torch.cuda.is_available() and r.name in PEERS:
            assert not r.available and r.reason


def test_cuda_only_peer_refuses_cpu_tensors_clearly():
    q, k, v, *_ = rand(1, 8, 2, 16)
    with pytest.raises(UnavailableError, match="sdpa-cudnn.*cuda"):
        impls.get("full/sdpa-cudnn").forward(q, k, v)


def test_pinned_sdpa_backend_raises_instead_of_falling_back():
    """EFFICIENT_ATTENTION has no CPU kernel: pinned, SDPA must refuse, and we must say so."""
    from torch.nn.attention import SDPBackend

    from ratbench.impls.peer_utils import sdpa_pinned

    q = torch.randn(1, 2, 8, 16)
    with pytest.raises(UnavailableError, match="EFFICIENT_ATTENTION.*no fallback"):
        sdpa_pinned(SDPBackend.EFFICIENT_ATTENTION, q, q, q, causal=True, scale=0.25, who="test")


# ----- full attention -----------------------------------------------------------------------------
# flex on the CPU is eager (issue 14; odd lengths and "no inductor" in tests/impls/test_flex_cpu.py)
@pytest.mark.parametrize("name,shape,causal", [("full/sdpa-math", (2, 40, 3, 16), True),
                                               ("full/sdpa-math", (1, 7, 1, 32), False),
                                               ("full/flex", (2, 40, 3, 16), True)])
def test_full_peer_forward(name, shape, causal):
    q, k, v, *_ = rand(*shape)
    ref = impls.get("full/reference")
    kw = {"causal": causal} if causal else {"causal": False, "scale": 0.3}
    close(impls.get(name).forward(q, k, v, **kw), ref.forward(q, k, v, **kw), TOL)


@pytest.mark.parametrize("name", ["full/sdpa-math", "full/flex"])
def test_full_peer_decode(name):
    q, k, v, *_ = rand(2, 46, 3, 16, seed=1)
    decode_matches_reference(name, {}, {}, q, k, v, T0=40)


def test_sdpa_math_backward_matches_reference():
    q, k, v, *_ = rand(1, 9, 2, 8, dtype=torch.float64)
    grads = []
    for name in ["full/sdpa-math", "full/reference"]:
        xs = [x.clone().requires_grad_() for x in (q, k, v)]
        impls.get(name).forward(*xs).pow(2).sum().backward()
        grads.append([x.grad for x in xs])
    for a, b in zip(*grads):
        close(a, b, 1e-10)


# ----- sliding window -----------------------------------------------------------------------------
@pytest.mark.parametrize("window", [1, 100])
def test_swa_flex_forward(window):
    q, k, v, *_ = rand(2, 40, 2, 16, seed=window)
    close(impls.get("swa/flex").forward(q, k, v, window=window),
          impls.get("swa/reference").forward(q, k, v, window=window), TOL)


def test_swa_flex_decode():
    q, k, v, *_ = rand(2, 52, 2, 16, seed=3)  # prompt T0 = 40, then 12 steps past the window
    decode_matches_reference("swa/flex", {"window": 7}, {"window": 7}, q, k, v, T0=40)


def test_flex_block_masks_are_cached_and_never_dense():
    """The 128K sliding-window mask is built from block tables (on the CPU from the window's formula, on CUDA
    compiled): a dense 131072^2 bool mask (16 GiB) would not fit this test's time or memory. Built once per
    shape, then reused."""
    from ratbench.impls.peer_utils import block_mask

    T = 131072
    t0 = time.perf_counter()
    bm = block_mask("window", 1024, T, T, torch.device("cpu"))
    assert time.perf_counter() - t0 < 60
    assert bm.shape[-2:] == (T, T)
    assert block_mask("window", 1024, T, T, torch.device("cpu")) is bm
    import resource

    # a dense bool mask alone is 17 GB: this process never came near that
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 8e6  # KiB on Linux
    # 1024-token window over 128-blocks: each query block row touches at most 9 kv blocks
    assert int(bm.kv_num_blocks.max()) + int(bm.full_kv_num_blocks.max()) <= 9


# ----- RAT: the authors' formulation --------------------------------------------------------------
@pytest.mark.parametrize("L,T", [(4, 32), (1, 8), (16, 16)])
@pytest.mark.parametrize("rope", [True, False])
def test_rat_flex_forward(L, T, rope):
    q, k, v, f, _ = rand(2, T, 2, 16, seed=L)
    close(impls.get("rat/flex").forward(q, k, v, f, chunk_size=L, rope=rope),
          impls.get("rat/reference").forward(q, k, v, f, chunk_size=L, rope=rope), TOL)


def test_rat_flex_f_one_is_finite():
    q, k, v, f, _ = rand(1, 16, 2, 8)
    y = impls.get("rat/flex").forward(q, k, v, torch.ones_like(f), chunk_size=4)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("T0", [29, 32])
@pytest.mark.parametrize("rope", [True, False])
def test_rat_flex_decode(T0, rope):
    """Prompts ending mid-chunk (padded to 32 inside prefill) and on a chunk boundary, then steps
    across chunk boundaries."""
    q, k, v, f, _ = rand(2, 40, 2, 16, seed=T0)
    kw = {"chunk_size": 4, "rope": rope}
    decode_matches_reference("rat/flex", kw, kw, q, k, v, extra=f, T0=T0)


def test_compiled_peers_never_fall_back_to_eager_silently():
    from ratbench.impls.peer_utils import _no_silent_eager

    assert _no_silent_eager().get("fail_on_recompile_limit_hit") is True


def test_rat_flex_no_cpu_backward_reported():
    impl = impls.get("rat/flex")
    assert impl.unsupported_reason(mode="train", device="cpu", dtype=torch.float32, head_dim=16) == "no backward on cpu"


# ----- linear: fla-core ---------------------------------------------------------------------------
needs_fla = pytest.mark.skipif(importlib.util.find_spec("fla") is None,
                               reason="fla-core is not installed (optional peer: pip install fla-core==0.6.0)")


@needs_fla
def test_fla_reports_why_it_cannot_run_on_cpu():
    reason = impls.load_class("linear/fla").unavailable_reason("cpu")
    assert reason and ("interpreter" in reason or "CUDA" in reason)


@needs_fla
@pytest.mark.parametrize("with_decay", [False, True])
def test_fla_recurrent_decode_step_in_interpreter(with_decay, monkeypatch):
    """fla's fused recurrent kernel (the decode step) runs in Triton's interpreter; its chunked kernels
    do not. Start both from the reference's prefilled state and step: same outputs, same state."""
    import os

    if os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("needs TRITON_INTERPRET=1 before fla is imported (tests/conftest.py sets it)")
    from triton.runtime.autotuner import Autotuner

    # the interpreter cannot benchmark autotune configs: take the first config (test-only)
    monkeypatch.setattr(Autotuner, "_bench", lambda self, *a, config, **kw: [0.0, 0.0, 0.0])
    q, k, v, _, decay = rand(1, 6, 2, 16, seed=5)
    decay = decay if with_decay else None
    ref, fla = impls.get("linear/reference"), impls.get("linear/fla")
    T0 = 3
    s_ref = ref.init_state(1, 2, 16, 6, device="cpu", dtype=torch.float32)
    s_fla = fla.init_state(1, 2, 16, 6, device="cpu", dtype=torch.float32)
    ref.prefill(s_ref, q[:, :T0], k[:, :T0], v[:, :T0], None if decay is None else decay[:, :T0])
    s_fla.S.copy_(s_ref.S)
    s_fla.pos = T0
    # linear/fla as a whole is unavailable on the CPU (its chunked kernels fail there), so the public
    # step() refuses; the decode kernel alone is exercised through _step.
    with pytest.raises(impls.UnavailableError, match="interpreter"):
        fla.step(s_fla, q[:, T0], k[:, T0], v[:, T0], None if decay is None else decay[:, T0])
    for t in range(T0, 6):
        d = None if decay is None else decay[:, t]
        close(fla._step(s_fla, q[:, t], k[:, t], v[:, t], d), ref.step(s_ref, q[:, t], k[:, t], v[:, t], d), TOL)
    close(s_fla.S, s_ref.S, TOL)
    assert s_fla.pos == 6


@needs_fla
def test_fla_gated_train_refusal_is_reported_only_on_hopper_with_old_triton():
    from ratbench.impls.linear.fla import gated_backward_refusal

    # no GPU here: nothing to refuse
    if not torch.cuda.is_available():
        assert gated_backward_refusal() is None


def test_optional_flash_attn_packages_give_install_reasons():
    """flash-attn 2 needs its CUDA extension (flash-attn-4 alone installs only flash_attn.cute)."""
    from ratbench.impls.peer_utils import fa2_unavailable_reason, fa4_unavailable_reason, has_module

    if not has_module("flash_attn_2_cuda"):
        assert "flash-attn 2" in fa2_unavailable_reason("cuda")
    if not has_module("flash_attn.cute"):
        assert "flash-attn-4" in fa4_unavailable_reason("cuda")


@pytest.mark.parametrize("backward", ["reverse-scan", "torch"])
def test_rat_flex_scan_backward_gradcheck(backward):
    """rat/flex's scan backward (one reverse associative scan) against finite differences, float64; the
    CPU runs combine_mode='generic', the same combine as CUDA's 'pointwise'."""
    from ratbench.impls.rat.flex import chunk_scan

    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 2, 5, 2, 3, generator=g, dtype=torch.float64).requires_grad_()
    bk, bv = (torch.randn(1, 2, 5, 2, 3, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    assert torch.autograd.gradcheck(lambda *x: chunk_scan(*x, "generic", backward), (a, bk, bv))
