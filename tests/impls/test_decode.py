"""Prefill + steps == one forward over the whole sequence, for every family's reference."""
from __future__ import annotations

import pytest
import torch
from test_references import close, rand

from ratbench import impls


def run_decode(name, fwd_kwargs, state_kwargs, T, T0, B=2, H=3, D=8, extra=None):
    q, k, v, f, decay = rand(B, T, H, D, dtype=torch.float64, seed=T0)
    extra_seq = {"f": f, "decay": decay, None: None}[extra]
    impl = impls.get(name)
    args = (q, k, v) if extra_seq is None else (q, k, v, extra_seq)
    if extra == "decay":
        full = impl.forward(q, k, v, decay=decay, **fwd_kwargs)
    else:
        full = impl.forward(*args, **fwd_kwargs)
    state = impl.init_state(B, H, D, T, device="cpu", dtype=torch.float64, **state_kwargs)
    outs = []
    if T0:
        pre = [x[:, :T0] for x in args]
        outs.append(impl.prefill(state, *pre))
        assert state.pos == T0
    for t in range(T0, T):
        outs.append(impl.step(state, *(x[:, t] for x in args))[:, None])
    assert state.pos == T
    close(torch.cat(outs, dim=1), full, 1e-10)


@pytest.mark.parametrize("T0", [0, 1, 5, 12])
def test_full_decode(T0):
    run_decode("full/reference", {}, {}, 12, T0)


@pytest.mark.parametrize("T0", [0, 3, 7, 15])
@pytest.mark.parametrize("window", [1, 4, 20])
def test_swa_decode(T0, window):
    run_decode("swa/reference", {"window": window}, {"window": window}, 15, T0)


@pytest.mark.parametrize("T0", [0, 1, 6, 10])
@pytest.mark.parametrize("extra", [None, "decay"])
def test_linear_decode(T0, extra):
    run_decode("linear/reference", {}, {}, 10, T0, extra=extra)


@pytest.mark.parametrize("L,T,T0", [(4, 16, 0), (4, 16, 1), (4, 16, 6), (4, 16, 8), (4, 16, 16), (1, 5, 2),
                                    (16, 16, 7), (3, 12, 5)])
@pytest.mark.parametrize("rope", [True, False])
def test_rat_decode(L, T, T0, rope):
    """Prompts ending mid-chunk and on chunk boundaries; chunk_size 1 and == T."""
    run_decode("rat/reference", {"chunk_size": L, "rope": rope}, {"chunk_size": L, "rope": rope}, T, T0, extra="f")


def test_rat_state_size():
    st = impls.get("rat/reference").init_state(1, 16, 128, 4096, device="cpu", dtype=torch.float32, chunk_size=16)
    assert st.k_cache.shape == (1, 16, 256, 128)
    # 2 * ceil(T/L) * H * D elements (+ the running pair)
    assert st.nbytes_per_sequence(4096) == (2 * 256 * 16 * 128 + 2 * 16 * 128) * 4


def test_decode_overflow_is_clear():
    impl = impls.get("full/reference")
    st = impl.init_state(1, 1, 4, 2, device="cpu", dtype=torch.float32)
    x = torch.randn(1, 1, 4)
    impl.step(st, x, x, x)
    impl.step(st, x, x, x)
    with pytest.raises(ValueError, match="max_len"):
        impl.step(st, x, x, x)


def test_prefill_needs_empty_state():
    impl = impls.get("rat/reference")
    st = impl.init_state(1, 1, 4, 8, device="cpu", dtype=torch.float32, chunk_size=2)
    x = torch.rand(1, 2, 1, 4)
    impl.prefill(st, x, x, x, x)
    with pytest.raises(ValueError, match="empty state"):
        impl.prefill(st, x, x, x, x)
