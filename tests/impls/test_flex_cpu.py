"""The FlexAttention peers on the CPU (issue 14): eager, no inductor, right at every length.

Inductor's C++ code for compiled flex_attention and for create_block_mask depends on the x86 CPU that
compiles it: on one CPU compiled flex was wrong at T = 40 (error 1.33, NaN elsewhere) and right at 128 and
256; on another the block-mask kernel did not compile (CppCompileError, VecMask<long int, 2> vs
VecMask<float, 1>). So these tests do not trust this machine to be a "bad" one: they assert that the CPU path
never reaches inductor at all, and compare odd lengths (not multiples of the 128-token tile) with the
references.
"""
from __future__ import annotations

import pytest
import torch
from test_peers import TOL, decode_matches_reference
from test_references import close, rand

from ratbench import impls
from ratbench.impls import peer_utils


@pytest.fixture
def inductor_calls(monkeypatch):
    """Every call of inductor's compile_fx (the entry of torch.compile's default backend and of
    create_block_mask(_compile=True)) is recorded. Dynamo's caches are cleared first, so code compiled
    earlier in this process cannot run unseen."""
    import torch._inductor.compile_fx as cfx

    calls: list[str] = []
    real = cfx.compile_fx

    def spy(model, *args, **kwargs):
        calls.append(getattr(model, "__name__", type(model).__name__))
        return real(model, *args, **kwargs)

    torch._dynamo.reset()
    monkeypatch.setattr(cfx, "compile_fx", spy)
    peer_utils._BLOCK_MASKS.clear()
    yield calls
    torch._dynamo.reset()


def test_flex_peers_on_cpu_never_reach_inductor(inductor_calls):
    q, k, v, f, _ = rand(1, 37, 2, 16, seed=5)
    impls.get("full/flex").forward(q, k, v)
    decode_matches_reference("full/flex", {}, {}, q, k, v, T0=33)
    impls.get("swa/flex").forward(q, k, v, window=5)
    decode_matches_reference("swa/flex", {"window": 5}, {"window": 5}, q, k, v, T0=33)
    kw = {"chunk_size": 4, "rope": True}
    q, k, v, f = (x[:, :36] for x in (q, k, v, f))
    impls.get("rat/flex").forward(q, k, v, f, **kw)
    decode_matches_reference("rat/flex", kw, kw, q, k, v, extra=f, T0=30)
    for kind, param in (("causal", 0), ("window", 3), ("chunk", 4)):
        peer_utils.block_mask(kind, param, 300, 300 // max(param, 1) if kind == "chunk" else 300, torch.device("cpu"))
    assert inductor_calls == [], f"inductor compiled {inductor_calls} on the CPU"


def test_cpu_flex_is_eager_and_said_so():
    assert not peer_utils.flex_compiled_on("cpu") and peer_utils.flex_compiled_on("cuda")
    rows = {r.name: r for r in impls.available("cpu")}
    for name in ("full/flex", "swa/flex", "rat/flex"):
        assert rows[name].available, rows[name].reason
        assert "issue 14" in rows[name].description and "CPU" in rows[name].description, name
    # the eager CPU path needs no C++ compiler
    assert peer_utils.flex_unavailable_reason("cpu") is None


@pytest.mark.parametrize("kind,param", [("causal", 0), ("window", 1), ("window", 7), ("window", 128),
                                        ("window", 200), ("chunk", 1), ("chunk", 4), ("chunk", 16), ("chunk", 48)])
@pytest.mark.parametrize("q_len", [1, 40, 127, 128, 129, 300])
def test_cpu_block_mask_equals_create_block_mask(kind, param, q_len):
    """The CPU block tables (computed from the mask's formula) are exactly create_block_mask's, uncompiled
    (the dense reference path), short last tiles included."""
    from torch.nn.attention.flex_attention import create_block_mask

    kv_len = -(-q_len // param) if kind == "chunk" else q_len
    ours = peer_utils.cpu_block_mask(kind, param, q_len, kv_len)
    ref = create_block_mask(peer_utils._mask_mod(kind, param), None, None, q_len, kv_len, device="cpu")
    assert ours.seq_lengths == ref.seq_lengths == (q_len, kv_len)
    for name in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                 "q_indices", "full_q_num_blocks", "full_q_indices"):
        a, b = getattr(ours, name), getattr(ref, name)
        assert a.dtype == b.dtype and torch.equal(a, b), (name, a, b)


def test_cpu_block_mask_rejects_unknown_kind():
    with pytest.raises(ValueError, match="causal, window or chunk"):
        peer_utils.block_classes("diagonal", 0, 8, 8)


# ----- odd lengths against the references (compiled CPU flex was wrong at T = 40) -------------------------
@pytest.mark.parametrize("T", [1, 40, 127, 129, 200])
@pytest.mark.parametrize("causal", [True, False])
def test_full_flex_odd_lengths(T, causal):
    q, k, v, *_ = rand(2, T, 3, 16, seed=T)
    kw = {"causal": causal, "scale": 0.3}
    close(impls.get("full/flex").forward(q, k, v, **kw), impls.get("full/reference").forward(q, k, v, **kw), TOL)


@pytest.mark.parametrize("T,window", [(40, 1), (40, 100), (129, 7), (200, 128), (200, 129), (257, 64)])
def test_swa_flex_odd_lengths(T, window):
    q, k, v, *_ = rand(2, T, 2, 16, seed=window)
    close(impls.get("swa/flex").forward(q, k, v, window=window),
          impls.get("swa/reference").forward(q, k, v, window=window), TOL)


@pytest.mark.parametrize("T,L", [(40, 4), (40, 8), (136, 8), (144, 16), (208, 16)])
def test_rat_flex_odd_lengths(T, L):
    q, k, v, f, _ = rand(2, T, 2, 16, seed=T)
    kw = {"chunk_size": L, "rope": True}
    close(impls.get("rat/flex").forward(q, k, v, f, **kw), impls.get("rat/reference").forward(q, k, v, f, **kw), TOL)


@pytest.mark.parametrize("name,kw,T0,T", [("full/flex", {}, 129, 149), ("swa/flex", {"window": 100}, 129, 149),
                                          ("rat/flex", {"chunk_size": 16, "rope": True}, 131, 160)])
def test_flex_decode_after_an_odd_prompt(name, kw, T0, T):
    q, k, v, f, _ = rand(1, T, 2, 16, seed=T0)
    decode_matches_reference(name, kw, kw, q, k, v, extra=f if name.startswith("rat") else None, T0=T0)


# ----- the harness: rat/flex prefill and decode on the CPU end ok ------------------------------------------
def test_harness_runs_rat_flex_on_cpu(tmp_path):
    """`run_bench.py --impl rat/flex --device cpu`: every prefill and decode case ends ok (accuracy checked
    first), train is unsupported (no CPU backward). Before issue 14's fix these ended `error`
    (CppCompileError from inductor's block-mask kernel) on some CPUs."""
    from ratbench.bench import runner
    from ratbench.bench.results import load
    from ratbench.bench.sweep import SweepSpec

    spec = SweepSpec(impls=["rat/flex"], modes=["train", "prefill", "decode"], seq_lens=[256, 272], heads=[4],
                     head_dims=[64], batches=[2], tokens=None, chunk_sizes=[16], dtype="float32", device="cpu",
                     repeats=2, min_repeats=2, warmup=1, case_budget_s=0.01, max_call_s=30.0)
    r, cases, done = runner.start(spec, tmp_path, command="pytest", measure_ceilings=False)
    r.run(cases, skip=done)
    df = load(tmp_path)
    got = {(m, int(t)): (s, reason) for m, t, s, reason in zip(df["mode"], df.seq_len, df.status, df.reason)}
    for T in (256, 272):
        for mode in ("prefill", "decode"):
            assert got[mode, T][0] == "ok", (mode, T, got[mode, T])
        assert got["train", T] == ("unsupported", "no backward on cpu")
    assert set(df[df.status == "ok"].accuracy) == {"pass"}
