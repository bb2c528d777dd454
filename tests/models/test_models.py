"""Layer and model modules (models/): structure, decode == forward, generation == forward, hybrids.

CPU, small sizes, the */reference implementations; float64 where outputs are compared, so the
tolerances are tight."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ratbench import impls
from ratbench.impls.rope import apply_rope, rope_cos_sin
from ratbench.models import (
    AUTHORS_HYBRID_WINDOW,
    AttentionLayer,
    LanguageModel,
    LinearAttentionLayer,
    LMConfig,
    RATLayer,
    RNNLayer,
    SWALayer,
    build_mixer,
    find_max_batch,
)
from ratbench.models.layers import KIND_FAMILY
from ratbench.models.lm import is_oom

F64 = torch.float64
DM, H, D = 32, 4, 8  # tiny layer: d_model, heads, head_dim (H * D == DM for RAT)
KINDS = ("attention", "swa", "linear", "rat", "rnn")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add contention (5x slower on a loaded 2-core runner)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def layer(kind: str, dtype=F64, **kw):
    torch.manual_seed(0)
    kw.setdefault("chunk_size", 4)
    kw.setdefault("window", 5)
    return build_mixer(kind, DM, H, D, dtype=dtype, **kw)


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


# ----- forward: shapes, dtypes, structure ---------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_layer_forward_shape_dtype(kind, dtype):
    m = layer(kind, dtype)
    x = torch.randn(2, 8, DM, dtype=dtype)
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_layer_bf16_autocast_passes_one_dtype_to_the_impl(kind, monkeypatch):
    """Under bf16 autocast the projections give bf16 q, k, v; the gate (RAT) and decay (linear) are
    computed in float32; the impl receives q, k, v (and f) in one dtype."""
    m = layer(kind, torch.float32)
    seen = {}
    orig = m.impl.forward

    def spy(*args, **kw):
        seen["dtypes"] = [a.dtype for a in args]
        if kw.get("decay") is not None:
            seen["decay"] = kw["decay"].dtype
        return orig(*args, **kw)

    monkeypatch.setattr(m.impl, "forward", spy)
    x = torch.randn(2, 8, DM)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    assert y.shape == x.shape and torch.isfinite(y.float()).all()
    assert set(seen["dtypes"]) == {torch.bfloat16}
    assert len(seen["dtypes"]) == (4 if kind in ("rat", "rnn") else 3)
    if kind == "linear":
        assert seen["decay"] == torch.float32


def test_rat_layer_equals_hand_written_composition():
    torch.manual_seed(1)
    G, L, T = 2, 4, 8
    m = RATLayer(DM, H, D, "rat/reference", chunk_size=L, groups=G, dtype=F64)
    x = torch.randn(2, T, DM, dtype=F64)
    W = m.in_proj.weight  # (3*DM + 2*G*D, DM)
    h = rms(x, m.norm.weight)
    proj = h @ W.T
    z, v, g = proj[..., :DM], proj[..., DM:2 * DM], proj[..., 2 * DM:3 * DM]
    qg = proj[..., 3 * DM:3 * DM + G * D].reshape(2, T, G, D)
    kg = proj[..., 3 * DM + G * D:].reshape(2, T, G, D)
    heads = torch.tensor([h % G for h in range(H)])  # head h uses group h % G (tiled, not interleaved)
    q, k = qg[:, :, heads], kg[:, :, heads]
    f = torch.sigmoid(g + m.gate_bias).reshape(2, T, H, D)
    y = impls.get("rat/reference").forward(q, k, v.reshape(2, T, H, D), f, chunk_size=L)
    want = x + (torch.sigmoid(z) * y.reshape(2, T, DM)) @ m.out_proj.weight.T
    torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)
    # the tiling is a real constraint: interleaved groups (h // (H/G)) give a different layer output
    inter = torch.tensor([h // (H // G) for h in range(H)])
    y2 = impls.get("rat/reference").forward(qg[:, :, inter], kg[:, :, inter], v.reshape(2, T, H, D), f, chunk_size=L)
    assert not torch.allclose(y, y2)


def test_rat_gate_bias_init_range():
    L = 16
    m = RATLayer(256, 2, 128, chunk_size=L)
    b = m.gate_bias.detach()
    assert b.min() >= 0 and b.max() <= math.log(L - 1) + 1e-6  # log(U[1, L-1])
    assert b.min() < 0.2 and b.max() > math.log(L - 1) - 0.1  # spread over the whole range
    # uniform on [1, L-1] after exp: the mean is L/2
    assert abs(b.exp().mean().item() - L / 2) < 0.7
    f = torch.sigmoid(b)
    assert f.min() >= 0.5 and f.max() <= 1 - 1 / L + 1e-6
    assert RNNLayer(32, 4, 8, gate_init_span=1000).gate_bias.max() > math.log(500)


def test_rat_layer_groups_are_tiled_across_heads():
    m = RATLayer(DM, H, D, chunk_size=4, groups=2, dtype=F64)
    _, q, k, _, _ = m._project(torch.randn(3, 4, DM, dtype=F64))
    for h in range(H):
        assert torch.equal(q[:, :, h], q[:, :, h % 2]) and torch.equal(k[:, :, h], k[:, :, h % 2])
    assert not torch.equal(q[:, :, 0], q[:, :, 1])


def test_attention_layer_equals_hand_written_composition():
    torch.manual_seed(2)
    T = 6
    m = AttentionLayer(DM, H, D, dtype=F64)
    x = torch.randn(2, T, DM, dtype=F64)
    q, k, v = (rms(x, m.norm.weight) @ m.qkv_proj.weight.T).reshape(2, T, 3, H, D).unbind(2)
    cos, sin = rope_cos_sin(torch.arange(T), D, dtype=F64)
    q, k = apply_rope(q, cos[:, None], sin[:, None]), apply_rope(k, cos[:, None], sin[:, None])
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
    want = x + o.transpose(1, 2).reshape(2, T, DM) @ m.out_proj.weight.T
    torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)


def test_swa_window_convention():
    """window w: t attends t - w < s <= t. A full-attention layer with the same weights agrees while
    T <= w and differs after."""
    torch.manual_seed(3)
    a = AttentionLayer(DM, H, D, dtype=F64)
    s = SWALayer(DM, H, D, window=4, dtype=F64)
    s.load_state_dict(a.state_dict())
    x = torch.randn(1, 8, DM, dtype=F64)
    ya, ys = a(x), s(x)
    torch.testing.assert_close(ya[:, :4], ys[:, :4])
    assert not torch.allclose(ya[:, 4:], ys[:, 4:])
    assert AUTHORS_HYBRID_WINDOW == 1025


def test_rnn_is_rat_with_one_chunk():
    torch.manual_seed(4)
    T = 8
    rnn = RNNLayer(DM, H, D, dtype=F64)
    rat = RATLayer(DM, H, D, chunk_size=T, dtype=F64)
    rat.load_state_dict(rnn.state_dict())
    x = torch.randn(2, T, DM, dtype=F64)
    torch.testing.assert_close(rnn(x), rat(x), rtol=0, atol=0)
    # and a different T is still one chunk
    assert torch.isfinite(rnn(torch.randn(1, 5, DM, dtype=F64))).all()


def test_linear_layer_without_decay():
    m = LinearAttentionLayer(DM, H, D, decay=False, dtype=F64)
    assert m.in_proj.out_features == 3 * H * D
    assert layer("linear").in_proj.out_features == 3 * H * D + H
    x = torch.randn(2, 5, DM, dtype=F64)
    assert m(x).shape == x.shape


# ----- decode: prefill + steps == forward ---------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T0", [1, 4, 7])
def test_layer_prefill_then_steps_equals_forward(kind, T0):
    m = layer(kind)
    T = 12  # a multiple of the chunk size 4; window 5 < T so the SWA ring buffer wraps
    x = torch.randn(2, T, DM, dtype=F64)
    with torch.no_grad():
        want = m(x)
        cache = m.init_cache(2, T, "cpu", F64)
        got = [m.prefill(cache, x[:, :T0])]
        for t in range(T0, T):
            got.append(m.step(cache, x[:, t])[:, None])
    assert cache.pos == T
    torch.testing.assert_close(torch.cat(got, 1), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_layer_cache_prefill_after_reset_and_batch_slices(kind):
    m = layer(kind)
    x = torch.randn(3, 8, DM, dtype=F64)
    with torch.no_grad():
        cache = m.init_cache(3, 8, "cpu", F64)
        y1 = m.prefill(cache, x)
        cache.reset()
        y2 = torch.cat([m.prefill(cache.batch_slice(0, 2), x[:2]), m.prefill(cache.batch_slice(2, 3), x[2:])])
    torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-12)


def test_cache_bytes():
    B, T, L = 2, 40, 4
    rat = layer("rat", torch.float32, chunk_size=L).init_cache(B, T, "cpu", torch.float32)
    # chunk cache 2 * ceil(T/L) * H * D per sequence, plus the running kt, vt
    assert rat.nbytes() == 4 * B * (2 * math.ceil(T / L) * H * D + 2 * H * D)
    att = layer("attention", torch.float32).init_cache(B, T, "cpu", torch.float32)
    assert att.nbytes() == 4 * B * 2 * T * H * D
    swa = layer("swa", torch.float32, window=5).init_cache(B, T, "cpu", torch.float32)
    assert swa.nbytes() == 4 * B * 2 * 5 * H * D


# ----- model --------------------------------------------------------------------------------------
def tiny(mixer: str, **kw) -> LanguageModel:
    torch.manual_seed(5)
    cfg = LMConfig(vocab_size=50, d_model=DM, n_layers=4, heads=H, head_dim=D, mixer=mixer, chunk_size=4, window=5,
                   **kw)
    return LanguageModel(cfg, dtype=F64)


@pytest.mark.parametrize("mixer", KINDS + ("rat-swa", "attention-swa"))
def test_generate_matches_forward_greedy(mixer):
    m = tiny(mixer)
    ids = torch.randint(0, 50, (2, 7))
    r = m.generate(ids, 6)
    assert r.tokens.shape == (2, 6) and r.decode_mode == "eager"
    seq = torch.cat([ids, r.tokens], 1)[:, :-1]  # 12 tokens: a multiple of the chunk size
    with torch.no_grad():
        logits = m(seq)
    assert torch.equal(logits[:, 6:].argmax(-1), r.tokens)
    # the decode logits themselves agree with the forward's
    caches = m.init_caches(2, 12)
    with torch.no_grad():
        last = m.prefill(caches, ids)
        torch.testing.assert_close(last, logits[:, 6], rtol=1e-10, atol=1e-10)
        step = m.decode_step(caches, r.tokens[:, 0])
        torch.testing.assert_close(step, logits[:, 7], rtol=1e-10, atol=1e-10)
    assert r.cache_bytes == m.cache_bytes(caches) > 0
    assert r.tokens_per_s > 0 and r.decode_tokens_per_s > 0


def test_generate_prefill_in_batch_pieces():
    m = tiny("rat-swa")
    ids = torch.randint(0, 50, (5, 6))
    assert torch.equal(m.generate(ids, 4).tokens, m.generate(ids, 4, prefill_batch=2).tokens)


def test_hybrid_alternation():
    m = tiny("rat-swa")
    assert [x.kind for x in m.mixers] == ["rat", "swa", "rat", "swa"]
    assert [type(x).__name__ for x in m.layers] == ["RATLayer", "FeedForward", "SWALayer", "FeedForward"] * 2
    assert all(x.window == 5 for x in m.mixers if x.kind == "swa")
    assert [x.kind for x in tiny("attention-swa").mixers] == ["attention", "swa"] * 2
    cfg = LMConfig(n_layers=3, layer_kinds=("rat", "linear", "rnn"))
    assert cfg.kinds() == ["rat", "linear", "rnn"]
    rep = tiny("rat-swa").cache_report(tiny("rat-swa").init_caches(1, 16))
    assert set(rep) == {"rat", "swa", "total"} and rep["total"] == rep["rat"] + rep["swa"]


def test_model_impls_per_family_and_param_count():
    m = tiny("rat-swa", impls={"rat": "rat/reference", "swa": "swa/reference"})
    assert {x.impl_name for x in m.mixers} == {"rat/reference", "swa/reference"}
    assert m.config.n_params() == sum(p.numel() for p in m.parameters())
    for mixer in KINDS:
        assert tiny(mixer).config.n_params() == sum(p.numel() for p in tiny(mixer).parameters())
    # the paper's 1.3B model (formula only; not built here)
    assert 1.25e9 < LMConfig(mixer="rat").n_params() < 1.35e9
    assert 1.25e9 < LMConfig(mixer="attention").n_params() < 1.35e9


def test_graphs_on_cpu_say_why_not():
    m = tiny("rat")
    ids = torch.randint(0, 50, (1, 4))
    r = m.generate(ids, 4, graphs="auto")
    assert r.decode_mode == "eager" and "CUDA" in r.graph_note
    with pytest.raises(RuntimeError, match="no decode step ran as a CUDA graph"):
        m.generate(ids, 4, graphs="on")


def test_decode_signatures():
    m = tiny("rat-swa")
    caches = m.init_caches(1, 32)
    rat, swa = m.layers[0], m.layers[2]
    assert [rat.decode_signature(caches[0], p) for p in (4, 5, 7, 8)] == [(1, True), (1, False), (1, False),
                                                                         (2, True)]
    assert swa.decode_signature(caches[2], 5) != swa.decode_signature(caches[2], 6)
    lin = tiny("linear")
    lc = lin.init_caches(1, 8)
    assert lin.decode_signature(lc, 3) == lin.decode_signature(lc, 7)


# ----- errors and helpers -------------------------------------------------------------------------
def test_errors():
    with pytest.raises(ValueError, match="'rat/\\*' implementation"):
        RATLayer(DM, H, D, "full/reference")
    with pytest.raises(ValueError, match="unknown implementation"):
        AttentionLayer(DM, H, D, "full/nope")
    with pytest.raises(ValueError, match="heads \\* head_dim"):
        RATLayer(48, H, D)
    with pytest.raises(ValueError, match="groups"):
        RATLayer(DM, H, D, groups=3)
    with pytest.raises(ValueError, match="window"):
        SWALayer(DM, H, D, window=0)
    with pytest.raises(ValueError, match="unknown mixer kind"):
        build_mixer("mamba", DM, H, D)
    with pytest.raises(ValueError, match="hybrid"):
        LMConfig(mixer="rat-mamba").kinds()
    with pytest.raises(ValueError, match="layout"):
        layer("rat")(torch.randn(2, 8, DM + 1, dtype=F64))
    with pytest.raises(ValueError, match="multiple of chunk_size"):
        layer("rat")(torch.randn(2, 6, DM, dtype=F64))
    m = layer("attention")
    cache = m.init_cache(1, 2, "cpu", F64)
    m.prefill(cache, torch.randn(1, 2, DM, dtype=F64))
    with pytest.raises(ValueError, match="full"):
        m.step(cache, torch.randn(1, DM, dtype=F64))
    with pytest.raises(ValueError, match="n_new"):
        tiny("rat").generate(torch.zeros(1, 4, dtype=torch.long), 0)


def test_find_max_batch():
    def run(b):
        if b > 37:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    r = find_max_batch(run, start=4, limit=1000)
    assert r.batch == 37 and not r.limit_reached
    assert all(ok == (b <= 37) for b, ok in r.tried)
    assert find_max_batch(run, start=64, limit=1000, multiple=4).batch == 36
    assert find_max_batch(run, start=1, limit=20).batch == 20
    assert find_max_batch(lambda b: run(b * 1000), start=1).batch == 0

    def boom(b):
        raise ValueError("not an OOM")

    with pytest.raises(ValueError, match="not an OOM"):
        find_max_batch(boom)
    assert is_oom(RuntimeError("CUDA error: out of memory")) and not is_oom(RuntimeError("other"))


# ----- graph decode bookkeeping, with a CPU stand-in for CUDA graphs -------------------------------
class FakeGraph:
    """Mimics a CUDA graph on the CPU: 'capture' runs the python once but undoes the tensor effects
    (a real capture records kernels without running them); replay re-runs the step exactly as captured,
    i.e. at the captured positions, writing into the captured output tensor."""

    def __init__(self, fn, states):
        self.fn, self.states = fn, states
        tensors = [getattr(s, n) for s in states for n in vars(s) if isinstance(getattr(s, n), torch.Tensor)]
        before = [t.clone() for t in tensors]
        self.pos = [s.pos for s in states]
        self.out = fn()
        for t, b in zip(tensors, before):
            t.copy_(b)
        self.replays = 0

    def replay(self):
        now = [s.pos for s in self.states]
        for s, p in zip(self.states, self.pos):
            s.pos = p
        self.out.copy_(self.fn())
        for s, p in zip(self.states, now):
            s.pos = p
        self.replays += 1

    def pool(self):
        return None


@pytest.mark.parametrize("mixer", ["rat", "linear", "rnn", "rat-swa", "attention"])
def test_graph_decode_with_stand_in_graphs_matches_eager(mixer, monkeypatch):
    from ratbench.models import lm

    m = tiny(mixer)
    caches_seen = []

    def fake_capture(fn, pool):
        states = [c.state for c in caches_seen[-1] if c.state is not None]
        g = FakeGraph(fn, states)
        return g, g.out

    orig_init = m.init_caches

    def init_caches(*a, **kw):
        caches_seen.append(orig_init(*a, **kw))
        return caches_seen[-1]

    monkeypatch.setattr(m, "init_caches", init_caches)
    monkeypatch.setattr(lm, "capture_graph", fake_capture)
    monkeypatch.setattr(lm, "graphs_unsupported_reason", lambda device: None)
    ids = torch.randint(0, 50, (2, 5))
    eager = m.generate(ids, 14, graphs="off")
    graph = m.generate(ids, 14, graphs="auto")
    assert torch.equal(eager.tokens, graph.tokens)
    assert caches_seen[-1][0].pos == 5 + 13
    if mixer in ("rat", "linear", "rnn"):
        assert graph.decode_mode == "cuda-graph" and graph.graph_steps > 0
        assert graph.graph_steps + int(graph.graph_note.split(", ")[-1].split()[0]) == 13
        if mixer in ("linear", "rnn"):
            assert graph.n_graphs == 1 and graph.graph_steps == 12
        else:
            # positions 5..17, chunk 4: the second (l > 0) step of a chunk is captured, at 6, 10, 14; the
            # first of each signature runs eagerly (warm-up); 7, 11, 15 replay
            assert graph.n_graphs == 3 and graph.graph_steps == 6
    else:  # attention and SWA layers bake the position in: no graph would be reused
        assert graph.decode_mode == "eager" and graph.n_graphs == 0
        assert "position" in graph.graph_note
        named = graph.graph_note.split("the step of ")[1].split(" layers")[0]
        assert named == ("swa" if mixer == "rat-swa" else "attention")


def test_memory_probe_and_max_generate_batch(monkeypatch):
    from ratbench.models import lm

    m = tiny("rat-swa")
    lm.memory_probe(m, 5, 6, 4, prefill_batch=2)  # runs on the CPU: real prefill piece + decode steps
    sizes = []

    def probe(model, b, prompt_len, n_new, prefill_batch=None):
        sizes.append(b)
        if b > 40:
            raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(lm, "memory_probe", probe)
    r = lm.max_generate_batch(m, 6, 4, start=8, multiple=8)
    assert r.batch == 40 and all(b % 8 == 0 for b in sizes)


# ----- layer-level timed callables ------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_layer_callables(kind):
    from ratbench.models.cases import LayerCase, layer_callable

    kw = {"d_model": DM, "heads": H, "head_dim": D, "chunk_size": 4, "window": 5, "device": "cpu"}
    tr = layer_callable(LayerCase(kind, f"{KIND_FAMILY[kind]}/reference", "train", 2, 8, **kw))
    tr.fn()
    assert all(p.grad is not None for p in tr.layer.parameters())
    pre = layer_callable(LayerCase(kind, f"{KIND_FAMILY[kind]}/reference", "prefill", 2, 8, **kw))
    pre.fn()
    pre.fn()  # the cache is marked empty before each call
    dec = layer_callable(LayerCase(kind, f"{KIND_FAMILY[kind]}/reference", "decode", 3, 9, dtype=torch.float32, **kw))
    dec.fn()
    dec.fn()
    assert dec.cache.pos == 9 and dec.cache_bytes == dec.cache.nbytes() > 0  # the step at T - 1, every call
    assert tr.cache is None and tr.cache_bytes is None
    with pytest.raises(ValueError, match="CUDA"):
        layer_callable(LayerCase(kind, f"{KIND_FAMILY[kind]}/reference", "decode", 1, 4, dtype=torch.float32,
                                 graph=True, **kw))


def test_fill_cache_is_a_real_prefill(monkeypatch):
    import ratbench.models.cases
    from ratbench.models.cases import fill_cache

    monkeypatch.setattr(ratbench.models.cases, "FILL_TOKENS", 22)  # 2 sequences per prefill call: slices 2, 2, 1
    m = layer("rat", torch.float32)
    cache = m.init_cache(5, 12, "cpu", torch.float32)
    fill_cache(m, cache, 5, 11, torch.float32, "cpu")
    assert cache.pos == 11
    assert cache.state.v_cache[:, :, :3].abs().sum(dim=(1, 2, 3)).min() > 0  # every sequence written
    # the same as one prefill of the whole batch with the same inputs
    gen = torch.Generator().manual_seed(1)
    xs = [torch.randn(n, 11, DM, generator=gen) for n in (2, 2, 1)]
    ref = m.init_cache(5, 12, "cpu", torch.float32)
    with torch.no_grad():
        m.prefill(ref, torch.cat(xs))
    torch.testing.assert_close(cache.state.v_cache, ref.state.v_cache)
    torch.testing.assert_close(cache.state.kt, ref.state.kt)


@pytest.mark.parametrize("kind", ["attention", "rat"])
def test_compiled_layer_matches_eager(kind):
    """torch.compile traces the layer's glue and leaves the implementation opaque (aot_eager backend:
    dynamo and autograd tracing without a C++ toolchain)."""
    m = layer(kind, torch.float32)
    x = torch.randn(2, 8, DM, requires_grad=True)
    y = torch.compile(m, backend="aot_eager")(x)
    y.mean().backward()
    gx = x.grad.clone()
    x.grad = None
    y2 = m(x)
    y2.mean().backward()
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(gx, x.grad)
    cache = m.init_cache(2, 8, "cpu", torch.float32)
    pre = torch.compile(m.prefill, backend="aot_eager")
    with torch.no_grad():
        for _ in range(2):
            cache.reset()
            torch.testing.assert_close(pre(cache, x), y2)
            assert cache.pos == 8


@pytest.mark.parametrize("mixer", ["rat-swa", "linear"])
def test_generate_is_batch_invariant(mixer):
    m = tiny(mixer)
    ids = torch.randint(0, 50, (3, 6))
    both = m.generate(ids, 5).tokens
    for b in range(3):
        assert torch.equal(m.generate(ids[b:b + 1], 5).tokens, both[b:b + 1])


def test_decode_callable_without_fill():
    from ratbench.models.cases import LayerCase, layer_callable

    kw = {"d_model": DM, "heads": H, "head_dim": D, "chunk_size": 4, "device": "cpu", "dtype": torch.float32}
    dec = layer_callable(LayerCase("rat", "rat/reference", "decode", 2, 9, fill="none", **kw))
    assert dec.cache.pos == 8 and dec.cache.state.v_cache.abs().sum() == 0
    dec.fn()
    assert dec.cache.pos == 9
    with pytest.raises(ValueError, match="fill"):
        layer_callable(LayerCase("rat", "rat/reference", "decode", 2, 9, fill="zeros", **kw))


@pytest.mark.parametrize("mixer", ["rat-swa", "linear"])
def test_compiled_glue_generates_the_same_tokens_without_recompiling_per_layer_or_position(mixer):
    """LanguageModel.compile_glue: prefill pieces of two sizes and decode steps at many positions give the
    eager tokens; the layers of a class share the compiled glue and positions stay outside it, so the number
    of graphs does not grow with the layers or the steps (aot_eager: dynamo's guards without a C++ toolchain)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    m = tiny(mixer)
    ids = torch.randint(0, 50, (5, 6))
    eager = m.generate(ids, 7, prefill_batch=3).tokens
    torch._dynamo.reset()
    counters.clear()
    m.compile_glue(backend="aot_eager")
    assert all(layer.glue_compiled for layer in m.layers)
    assert torch.equal(m.generate(ids, 7, prefill_batch=3).tokens, eager)  # pieces of 3 and 2 sequences
    graphs = counters["stats"]["unique_graphs"]
    n_kinds = len(set(m.config.kinds()))
    # per mixer class: _pre and _post at two ranks (prefill, step); the FFN block at two ranks
    assert 0 < graphs <= 4 * n_kinds + 2, graphs
    assert torch.equal(m.generate(ids[:4], 7, prefill_batch=4).tokens, eager[:4])  # another batch: no new graph
    assert counters["stats"]["unique_graphs"] == graphs
    m.compile_glue(False)
    assert not any(layer.glue_compiled for layer in m.layers)
