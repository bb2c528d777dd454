"""Layer modules with the RAT paper's structure (docs/rat-spec.md, "The RAT layer").

Every mixer layer is ``x -> x + mixer(RMSNorm(x))`` (pre-norm, residual inside the layer) and takes the
registry name of one implementation of its family, so any implementation plugs in:

- AttentionLayer (``full/*``): fused QKV projection, token-index RoPE on q and k, causal attention,
  no output gate, out_proj.
- SWALayer (``swa/*``): the same with sliding-window attention. Window convention (ours, as in
  impls/swa/base.py): query t attends keys s with t - window < s <= t, ``window`` keys including itself.
  The default is window = 1024 (1024 keys). The RAT authors' hybrid mask is q - kv <= 1024, which is
  window = 1025 here (AUTHORS_HYBRID_WINDOW); pass it to reproduce their mask exactly.
- LinearAttentionLayer (``linear/*``): fused projection to q, k, v (identity feature map, as in GLA and
  RetNet) and one decay logit per head; decay_t = logsigmoid(a_t) / 16 (GLA's gate normaliser; a
  per-head scalar log-gate <= 0), ``decay=False`` gives plain (undecayed) linear attention; a per-head
  RMSNorm on the output (the usual stabiliser of unnormalised linear attention), out_proj.
- RATLayer (``rat/*``): RMSNorm(eps 1e-6) -> one bias-free in_proj Dm -> 3*Dm + 2*G*D split in the order
  z, v, g, q, k; G groups of shared q/k tiled across heads (head h uses group h % G, ``.repeat``);
  f = sigmoid(float32(g) + float32(gate_bias)) with gate_bias initialised to log(U[1, L-1]); y = RAT op;
  out = out_proj(sigmoid(z) * y) + x.
- RNNLayer: RATLayer with chunk_size = T (one chunk spanning the whole sequence: y = vt, a gated RNN).
  Forward uses L = T of the input; decode uses one chunk covering the cache's max_len (one slot), which
  gives the same outputs since a single chunk never reaches the inter-chunk attention.
- FeedForward: pre-RMSNorm, Dm -> 4 Dm, GELU, -> Dm, residual.

Dtypes: under bf16 autocast the projections produce bf16 q, k, v; the forget gate is computed in
float32 and then cast to that dtype, because implementations take q, k, v and f in one dtype. Note
that this rounds f to bf16 (spacing 2^-8 just below 1): 1 - f is quantised in steps of 2^-8 (for L = 16,
1 - f in [1/16, 1/2] at init: up to ~3% relative error), and gates above 1 - 2^-9 become exactly 1.

torch.compile: the implementation call is opaque to the compiler (torch.compiler.disable), so compiling
a layer fuses the layer's glue and leaves the implementation's kernels as they are. Every layer call is
``post(x, impl(pre(x)))``: ``_pre`` (RMSNorm + projections, gates, RoPE) and ``_post`` (output gate, out_proj,
residual) take and return tensors only (positions stay outside: attention passes the RoPE rows of its
positions in), so ``compile_glue()`` can torch.compile exactly these two functions for prefill and decode.
Layers of one class share the compiled code (parameters are graph inputs) and the batch dim is marked
dynamic, so a model of 24 layers decoding at any batch compiles each function about once
(models.lm.LanguageModel.compile_glue).

Decode (every layer): ``cache = layer.init_cache(batch, max_len, device, dtype)``,
``y = layer.prefill(cache, x)`` for a prompt x (B, T0, Dm), then ``y_t = layer.step(cache, x_t)`` for
x_t (B, Dm). Prefill + steps equal forward on the whole sequence (tests/models/test_models.py). ``dtype`` is
the dtype the implementation sees for q, k, v (the projections' output dtype: bf16 under bf16
autocast or for a bf16 model).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ratbench import impls
from ratbench.impls.rope import apply_rope, rope_cos_sin
from ratbench.models.norm import RMSNorm

#: the RAT authors' hybrid SWA mask q - kv <= 1024 keeps 1025 keys: window 1025 in our convention
AUTHORS_HYBRID_WINDOW = 1025
#: our default hybrid window: 1024 keys including the query (t - 1024 < s <= t)
DEFAULT_WINDOW = 1024
#: GLA's gate normaliser for the linear-attention layer's decay: decay = logsigmoid(a) / 16
LINEAR_DECAY_NORMALISER = 16.0


@torch.compiler.disable
def _opaque(fn, *args, **kwargs):
    """Call an implementation outside torch.compile's tracing: a compiled layer fuses its own glue (norm,
    projections, gates, RoPE) while the implementation runs as itself (its kernels, or its own compiled
    graph), so a compiled layer still names exactly which attention kernel ran."""
    return fn(*args, **kwargs)


_COMPILED: dict[tuple[Callable, str], Callable] = {}


def _compiled(fn: Callable, backend: str = "inductor") -> Callable:
    """torch.compile(fn), one wrapper per function and backend (the compiled code is shared by every layer of
    a class: its parameters are graph inputs, not guarded constants)."""
    if (fn, backend) not in _COMPILED:
        # one entry per layer class and input rank share each function's cache: keep them all compiled
        cfg = torch._dynamo.config
        for name in ("recompile_limit", "cache_size_limit"):
            if getattr(cfg, name, 64) < 64:
                setattr(cfg, name, 64)
        _COMPILED[fn, backend] = torch.compile(fn, backend=backend)
    return _COMPILED[fn, backend]


def _batch_dynamic(*ts: Any) -> None:
    """Mark dim 0 (the batch) of the tensors dynamic for torch.compile, so prefill pieces and decode batches
    of any size share one compiled graph instead of recompiling per size."""
    for t in ts:
        if isinstance(t, torch.Tensor) and t.dim() >= 2:
            torch._dynamo.maybe_mark_dynamic(t, 0)


class _GlueCompile:
    """compile_glue / glue_compiled for modules whose glue is the functions named in GLUE (each called as
    fn(self, ...)): compiled, they replace the plain ones (models.lm.LanguageModel.compile_glue)."""

    GLUE: tuple[str, ...] = ()

    def compile_glue(self, enabled: bool = True, backend: str = "inductor") -> None:
        """torch.compile the module's glue (the implementation, if any, keeps running as itself); ``enabled=False``
        goes back to eager glue. ``backend``: torch.compile's (tests use "aot_eager": no C++ toolchain needed)."""
        self._glue = tuple(_compiled(getattr(type(self), n), backend) for n in self.GLUE) if enabled else None

    @property
    def glue_compiled(self) -> bool:
        return getattr(self, "_glue", None) is not None


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_impl(name: str, family: str) -> impls.Implementation:
    if not isinstance(name, str):
        raise TypeError(f"impl must be a registry name like '{family}/reference', got {type(name).__name__}")
    impl = impls.get(name)
    if impl.family != family:
        raise ValueError(f"this layer needs a '{family}/*' implementation, got {name!r} (family {impl.family!r})")
    return impl


def _check_dims(d_model: int, heads: int, head_dim: int) -> None:
    for n, v in (("d_model", d_model), ("heads", heads), ("head_dim", head_dim)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{n} must be a positive int, got {v!r}")


@dataclass
class LayerCache:
    """Decode cache of one layer: the implementation's state (KVCache, RingCache, LinearState, RATState
    or None for a feed-forward layer) plus layer-side tables (token RoPE cos/sin for max_len positions)."""

    state: Any
    rope_cos: torch.Tensor | None = None
    rope_sin: torch.Tensor | None = None

    @property
    def pos(self) -> int:
        return 0 if self.state is None else self.state.pos

    def state_tensors(self) -> list[torch.Tensor]:
        if self.state is None:
            return []
        return [getattr(self.state, f.name) for f in dataclasses.fields(self.state)
                if isinstance(getattr(self.state, f.name), torch.Tensor)]

    def nbytes(self) -> int:
        """Bytes allocated for the implementation's state (the cache proper; RoPE tables not counted)."""
        return sum(t.numel() * t.element_size() for t in self.state_tensors())

    def batch_slice(self, start: int, stop: int) -> LayerCache:
        """A view of sequences start:stop sharing memory with this cache (for prefilling a large batch in
        pieces). Every state tensor of every family has the batch as its first dim."""
        if self.state is None:
            return self
        fields = {f.name: getattr(self.state, f.name)[start:stop] for f in dataclasses.fields(self.state)
                  if isinstance(getattr(self.state, f.name), torch.Tensor)}
        return LayerCache(dataclasses.replace(self.state, **fields), self.rope_cos, self.rope_sin)

    def reset(self) -> None:
        """Mark the cache empty (pos = 0) so prefill can run again; the tensors are overwritten by prefill."""
        if self.state is not None:
            self.state.pos = 0


class MixerLayer(_GlueCompile, nn.Module):
    """Common base: pre-RMSNorm, a token mixer, residual: ``_post(x, impl(_pre(x)))``. Subclasses fill _proj
    (projections of the normalised input), _out (output gate and projection), _forward_impl and _tables."""

    kind: str = ""
    family: str = ""
    GLUE = ("_pre", "_post")

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str, *, eps: float = 1e-6,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        _check_dims(d_model, heads, head_dim)
        self.d_model, self.heads, self.head_dim = d_model, heads, head_dim
        self.impl_name = impl
        self.impl = _check_impl(impl, self.family)
        self.norm = RMSNorm(d_model, eps, device=device, dtype=dtype)

    def _check_x(self, x: torch.Tensor, ndim: int) -> None:
        layout = "(B, T, Dm)" if ndim == 3 else "(B, Dm)"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor {layout}, got {type(x).__name__}")
        if x.dim() != ndim or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have layout {layout} with Dm={self.d_model}, got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x, 3)
        return self._run("forward", None, x)

    def prefill(self, cache: LayerCache, x: torch.Tensor) -> torch.Tensor:
        self._check_x(x, 3)
        return self._run("prefill", cache, x)

    def step(self, cache: LayerCache, x_t: torch.Tensor) -> torch.Tensor:
        self._check_x(x_t, 2)
        return self._run("step", cache, x_t)

    def _run(self, mode: str, cache: LayerCache | None, x: torch.Tensor) -> torch.Tensor:
        tables = self._tables(mode, cache, x)
        glue = getattr(self, "_glue", None)
        pre, post = glue or (type(self)._pre, type(self)._post)
        if glue:
            _batch_dynamic(x)
        args, extras = pre(self, x, *tables)
        y = self._call(mode, cache, args)
        if glue:
            _batch_dynamic(y, *extras)
        return post(self, x, y, *extras)

    # the pieces (subclasses fill _proj, _out, _forward_impl and, if needed, _tables)
    def _pre(self, x: torch.Tensor, *tables: torch.Tensor) -> tuple[tuple, tuple]:
        """RMSNorm + projections: (the implementation's inputs, extras that _post needs)."""
        return self._proj(self.norm(x), *tables)

    def _post(self, x: torch.Tensor, y: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
        return x + self._out(y, *extras)

    def _tables(self, mode: str, cache: LayerCache | None, x: torch.Tensor) -> tuple:
        """Position-dependent tensors _proj needs (token RoPE rows); none by default."""
        return ()

    def _proj(self, h: torch.Tensor, *tables: torch.Tensor) -> tuple[tuple, tuple]:
        raise NotImplementedError

    def _out(self, y: torch.Tensor, *extras: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward_impl(self, *args: Any) -> torch.Tensor:
        raise NotImplementedError

    def _call(self, mode: str, cache: LayerCache | None, args: tuple) -> torch.Tensor:
        """The implementation's forward, prefill or step, opaque to torch.compile."""
        if mode == "forward":
            return self._forward_impl(*args)
        return _opaque(getattr(self.impl, mode), cache.state, *args)

    def _mix_any(self, mode: str, cache: LayerCache | None, h: torch.Tensor) -> torch.Tensor:
        args, extras = self._proj(h, *self._tables(mode, cache, h))
        return self._out(self._call(mode, cache, args), *extras)

    def init_cache(self, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype) -> LayerCache:
        raise NotImplementedError

    def decode_signature(self, cache: LayerCache, pos: int) -> Hashable:
        """Steps at two positions with equal signatures launch the same kernels with the same arguments
        (given an implementation whose step uses the position only as the spec does), so one CUDA graph
        can serve both. The default: every position is different."""
        return ("pos", pos)

    # the mixer alone, on the normalised input (models.checks compares these without the residual)
    def _mix(self, h: torch.Tensor) -> torch.Tensor:
        return self._mix_any("forward", None, h)

    def _mix_prefill(self, cache: LayerCache, h: torch.Tensor) -> torch.Tensor:
        return self._mix_any("prefill", cache, h)

    def _mix_step(self, cache: LayerCache, h: torch.Tensor) -> torch.Tensor:
        return self._mix_any("step", cache, h)


# ----- attention and sliding-window attention ---------------------------------------------------
class AttentionLayer(MixerLayer):
    """MHA with a fused QKV projection, token RoPE on q and k, no output gate (the paper's baseline)."""

    kind = "attention"
    family = "full"

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str = "full/reference", *,
                 rope_base: float = 10000.0, eps: float = 1e-6, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(d_model, heads, head_dim, impl, eps=eps, device=device, dtype=dtype)
        if head_dim % 2:
            raise ValueError(f"token RoPE needs an even head_dim, got {head_dim}")
        self.rope_base = float(rope_base)
        inner = heads * head_dim
        self.qkv_proj = nn.Linear(d_model, 3 * inner, bias=False, device=device, dtype=dtype)
        self.out_proj = nn.Linear(inner, d_model, bias=False, device=device, dtype=dtype)

    # family-specific pieces (SWALayer overrides these two)
    def _forward_impl(self, q, k, v):
        return _opaque(self.impl.forward, q, k, v, causal=True)

    def _impl_state(self, batch, max_len, device, dtype):
        return self.impl.init_state(batch, self.heads, self.head_dim, max_len, device=device, dtype=dtype)

    def _qkv(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """h (..., Dm) -> q, k, v (..., H, D), RoPE applied to q and k (cos/sin broadcast over heads)."""
        qkv = self.qkv_proj(h)
        q, k, v = qkv.unflatten(-1, (3, self.heads, self.head_dim)).unbind(-3)
        cdt = _compute_dtype(q.dtype)
        q = apply_rope(q.to(cdt), cos.to(cdt), sin.to(cdt)).to(v.dtype)
        k = apply_rope(k.to(cdt), cos.to(cdt), sin.to(cdt)).to(v.dtype)
        return q, k, v

    def _rope(self, T: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Token-position tables (T, 1, D) in float32 (float64 for float64 activations)."""
        cos, sin = rope_cos_sin(torch.arange(T, device=device), self.head_dim, base=self.rope_base,
                                dtype=_compute_dtype(dtype))
        return cos[:, None, :], sin[:, None, :]  # (T, 1, D): broadcast over heads

    def _tables(self, mode, cache, x):
        """The token RoPE rows of the positions this call writes: (T, 1, D) or, for a step, (1, D)."""
        if mode == "forward":
            return self._rope(x.shape[1], x.device, x.dtype)
        n = cache.rope_cos.shape[0]
        if mode == "prefill":
            T0 = x.shape[1]
            if T0 > n:
                raise ValueError(f"the cache holds max_len={n} tokens; the prompt has {T0}")
            return cache.rope_cos[:T0], cache.rope_sin[:T0]
        p = cache.state.pos
        if p >= n:
            raise ValueError(f"the cache holds max_len={n} tokens and is full")
        return cache.rope_cos[p], cache.rope_sin[p]

    def _proj(self, h, cos, sin):
        return self._qkv(h, cos, sin), ()

    def _out(self, o):
        return self.out_proj(o.flatten(-2))

    def init_cache(self, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype) -> LayerCache:
        state = self._impl_state(batch, max_len, torch.device(device), dtype)
        cos, sin = self._rope(max_len, torch.device(device), dtype)
        return LayerCache(state, cos, sin)


class SWALayer(AttentionLayer):
    """Sliding-window attention layer: AttentionLayer with a ``swa/*`` implementation and ``window``
    (t - window < s <= t; default 1024 keys; the authors' hybrid mask is window = 1025 here)."""

    kind = "swa"
    family = "swa"

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str = "swa/reference", *,
                 window: int = DEFAULT_WINDOW, rope_base: float = 10000.0, eps: float = 1e-6,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive int, got {window!r}")
        super().__init__(d_model, heads, head_dim, impl, rope_base=rope_base, eps=eps, device=device, dtype=dtype)
        self.window = window

    def _forward_impl(self, q, k, v):
        return _opaque(self.impl.forward, q, k, v, window=self.window)

    def _impl_state(self, batch, max_len, device, dtype):
        return self.impl.init_state(batch, self.heads, self.head_dim, max_len, device=device, dtype=dtype,
                                    window=self.window)

    def extra_repr(self) -> str:
        return f"impl={self.impl_name}, window={self.window}"


# ----- linear attention -------------------------------------------------------------------------
class LinearAttentionLayer(MixerLayer):
    """Linear attention: fused in_proj to q, k, v (identity feature map) and one decay logit per head,
    decay = logsigmoid(a) / 16 (or none), per-head RMSNorm on the output, out_proj."""

    kind = "linear"
    family = "linear"

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str = "linear/reference", *,
                 decay: bool = True, eps: float = 1e-6, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(d_model, heads, head_dim, impl, eps=eps, device=device, dtype=dtype)
        self.use_decay = bool(decay)
        inner = heads * head_dim
        self.in_proj = nn.Linear(d_model, 3 * inner + (heads if decay else 0), bias=False, device=device,
                                 dtype=dtype)
        self.out_norm = RMSNorm(head_dim, eps, device=device, dtype=dtype)
        self.out_proj = nn.Linear(inner, d_model, bias=False, device=device, dtype=dtype)

    def _project(self, h):
        inner = self.heads * self.head_dim
        x = self.in_proj(h)
        qkv, a = x[..., : 3 * inner], x[..., 3 * inner:]
        q, k, v = qkv.unflatten(-1, (3, self.heads, self.head_dim)).unbind(-3)
        decay = None
        if self.use_decay:  # (..., H) float32 log-gate <= 0
            decay = F.logsigmoid(a.to(_compute_dtype(a.dtype))) / LINEAR_DECAY_NORMALISER
        return q, k, v, decay

    def _proj(self, h):
        return self._project(h), ()

    def _out(self, o):
        return self.out_proj(self.out_norm(o).flatten(-2))

    def _forward_impl(self, q, k, v, decay):
        return _opaque(self.impl.forward, q, k, v, decay=decay)

    def init_cache(self, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype) -> LayerCache:
        return LayerCache(self.impl.init_state(batch, self.heads, self.head_dim, max_len, device=device,
                                               dtype=dtype))

    def decode_signature(self, cache: LayerCache, pos: int) -> Hashable:
        return ()  # the state S does not depend on the position

    def extra_repr(self) -> str:
        return f"impl={self.impl_name}, decay={self.use_decay}"


# ----- RAT and the RNN --------------------------------------------------------------------------
class RATLayer(MixerLayer):
    """The RAT layer of docs/rat-spec.md. chunk_size=None makes it the RNN (chunk = the whole sequence)."""

    kind = "rat"
    family = "rat"

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str = "rat/reference", *,
                 chunk_size: int | None = 16, groups: int = 2, rope: bool = True, gate_init_span: int | None = None,
                 eps: float = 1e-6, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(d_model, heads, head_dim, impl, eps=eps, device=device, dtype=dtype)
        if heads * head_dim != d_model:
            raise ValueError(f"the RAT layer splits z, v, g of width d_model into heads: need heads * head_dim "
                             f"== d_model, got {heads} * {head_dim} != {d_model}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise ValueError(f"chunk_size must be a positive int (or None for the RNN), got {chunk_size!r}")
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or heads % groups:
            raise ValueError(f"groups must be a positive int dividing heads={heads}, got {groups!r}")
        self.chunk_size, self.groups, self.rope = chunk_size, groups, bool(rope)
        # gate bias ~ log(U[1, span - 1]) with span = L (the chunk size) unless given; the RNN has no fixed
        # L at construction, so it uses gate_init_span (default 16, the paper's chunk size for RAT)
        span = gate_init_span if gate_init_span is not None else (chunk_size if chunk_size is not None else 16)
        if isinstance(span, bool) or not isinstance(span, int) or span < 2:
            raise ValueError(f"the gate bias is initialised to log(U[1, span - 1]): need span >= 2, got {span!r}")
        self.gate_init_span = span
        self.in_proj = nn.Linear(d_model, 3 * d_model + 2 * groups * head_dim, bias=False, device=device,
                                 dtype=dtype)
        self.gate_bias = nn.Parameter(torch.empty(d_model, device=device, dtype=dtype))
        self.out_proj = nn.Linear(d_model, d_model, bias=False, device=device, dtype=dtype)
        self.reset_gate_bias()

    @torch.no_grad()
    def reset_gate_bias(self, generator: torch.Generator | None = None) -> None:
        """gate_bias <- log(U[1, span - 1]) (chrono-style init: f = sigmoid(bias) in [1/2, 1 - 1/span])."""
        u = torch.rand(self.gate_bias.shape, generator=generator, dtype=torch.float64)
        self.gate_bias.copy_(torch.log(1 + u * (self.gate_init_span - 2)).to(self.gate_bias))

    def _project(self, h):
        """h (..., Dm) -> z (..., Dm), q, k, v, f (..., H, D); q, k tiled: head h uses group h % G."""
        Dm, G, D, H = self.d_model, self.groups, self.head_dim, self.heads
        z, v, g, q, k = self.in_proj(h).split([Dm, Dm, Dm, G * D, G * D], dim=-1)
        lead = h.shape[:-1]
        reps = (1,) * len(lead) + (H // G, 1)
        q = q.unflatten(-1, (G, D)).repeat(reps)
        k = k.unflatten(-1, (G, D)).repeat(reps)
        v = v.unflatten(-1, (H, D))
        cdt = _compute_dtype(g.dtype)
        f = torch.sigmoid(g.to(cdt) + self.gate_bias.to(cdt)).unflatten(-1, (H, D)).to(q.dtype)
        return z, q, k, v, f

    def _proj(self, h):
        z, q, k, v, f = self._project(h)
        return (q, k, v, f), (z,)

    def _out(self, y, z):
        return self.out_proj(torch.sigmoid(z) * y.flatten(-2))

    def _forward_impl(self, q, k, v, f):
        L = q.shape[1] if self.chunk_size is None else self.chunk_size
        return _opaque(self.impl.forward, q, k, v, f, chunk_size=L, rope=self.rope)

    def decode_chunk_size(self, max_len: int) -> int:
        """The chunk size of the decode state; for the RNN one chunk covering max_len tokens, rounded up
        to a power of two (any L >= max_len is the same single chunk; kernels prefer powers of two)."""
        if self.chunk_size is not None:
            return self.chunk_size
        return 1 << max(0, (max_len - 1).bit_length())

    def init_cache(self, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype) -> LayerCache:
        return LayerCache(self.impl.init_state(batch, self.heads, self.head_dim, max_len, device=device, dtype=dtype,
                                               chunk_size=self.decode_chunk_size(max_len), rope=self.rope))

    def decode_signature(self, cache: LayerCache, pos: int) -> Hashable:
        # per docs/rat-spec.md a step depends on the position only through the chunk c and whether l == 0
        c, l = divmod(pos, cache.state.chunk_size)
        return (c, l == 0)

    def extra_repr(self) -> str:
        L = "T (RNN)" if self.chunk_size is None else self.chunk_size
        return f"impl={self.impl_name}, chunk_size={L}, groups={self.groups}, rope={self.rope}"


class RNNLayer(RATLayer):
    """The RNN of the paper: the RAT layer with chunk_size = T (y = vt, no inter-chunk attention)."""

    kind = "rnn"

    def __init__(self, d_model: int, heads: int, head_dim: int, impl: str = "rat/reference", *,
                 groups: int = 2, rope: bool = True, gate_init_span: int = 16, eps: float = 1e-6,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(d_model, heads, head_dim, impl, chunk_size=None, groups=groups, rope=rope,
                         gate_init_span=gate_init_span, eps=eps, device=device, dtype=dtype)


# ----- feed-forward -----------------------------------------------------------------------------
class FeedForward(_GlueCompile, nn.Module):
    """x + fc2(GELU(fc1(RMSNorm(x)))), hidden = mult * Dm, bias-free."""

    kind = "ffn"
    GLUE = ("_ffn",)

    def __init__(self, d_model: int, mult: int = 4, *, eps: float = 1e-6, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.d_model = d_model
        self.norm = RMSNorm(d_model, eps, device=device, dtype=dtype)
        self.fc1 = nn.Linear(d_model, mult * d_model, bias=False, device=device, dtype=dtype)
        self.fc2 = nn.Linear(mult * d_model, d_model, bias=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        glue = getattr(self, "_glue", None)
        if glue is None:
            return self._ffn(x)
        _batch_dynamic(x)
        return glue[0](self, x)

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))

    # decode: position-free, no cache
    def init_cache(self, batch: int, max_len: int, device: torch.device | str, dtype: torch.dtype) -> LayerCache:
        return LayerCache(None)

    def prefill(self, cache: LayerCache, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)

    def step(self, cache: LayerCache, x_t: torch.Tensor) -> torch.Tensor:
        return self.forward(x_t)

    def decode_signature(self, cache: LayerCache, pos: int) -> Hashable:
        return ()


# ----- construction by kind ---------------------------------------------------------------------
MIXER_KINDS = ("attention", "swa", "linear", "rat", "rnn")
#: the family of implementation each mixer kind takes
KIND_FAMILY = {"attention": "full", "swa": "swa", "linear": "linear", "rat": "rat", "rnn": "rat"}


def build_mixer(kind: str, d_model: int, heads: int, head_dim: int, *, impl: str | None = None,
                chunk_size: int = 16, window: int = DEFAULT_WINDOW, groups: int = 2, linear_decay: bool = True,
                eps: float = 1e-6, device: torch.device | str | None = None,
                dtype: torch.dtype | None = None) -> MixerLayer:
    """One mixer layer of ``kind`` (attention, swa, linear, rat, rnn) with implementation ``impl``
    (default: the family's reference)."""
    if kind not in MIXER_KINDS:
        raise ValueError(f"unknown mixer kind {kind!r}; known: {', '.join(MIXER_KINDS)}")
    impl = impl or f"{KIND_FAMILY[kind]}/reference"
    kw: dict[str, Any] = {"eps": eps, "device": device, "dtype": dtype}
    if kind == "attention":
        return AttentionLayer(d_model, heads, head_dim, impl, **kw)
    if kind == "swa":
        return SWALayer(d_model, heads, head_dim, impl, window=window, **kw)
    if kind == "linear":
        return LinearAttentionLayer(d_model, heads, head_dim, impl, decay=linear_decay, **kw)
    if kind == "rat":
        return RATLayer(d_model, heads, head_dim, impl, chunk_size=chunk_size, groups=groups, **kw)
    return RNNLayer(d_model, heads, head_dim, impl, groups=groups, **kw)

