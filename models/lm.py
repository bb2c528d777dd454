"""The paper's 1.3B-style language model with any mixer per layer, greedy generation through the
layers' decode caches, optional CUDA-graph decode, and a max-batch search for the harness.

Stack (docs/rat-spec.md): token embedding (vocab 32000, tied with the output head), n_layers x [pre-RMSNorm mixer
layer, pre-RMSNorm FFN 4*Dm GELU] (both with their residual), final RMSNorm, logits = h @ E^T. Random
weights: the model exists to be timed, not trained.

Mixers: ``mixer`` is one of attention, swa, linear, rat, rnn, or a hybrid "<even>-<odd>" that
alternates two kinds, layer 0 first: "rat-swa" is the paper's RAT-SWA (even layers RAT, odd layers
SWA), "attention-swa" alternates full attention and SWA. ``layer_kinds`` gives any explicit list.
The SWA window follows our convention (t - window < s <= t, default 1024 keys; the authors' mask
q - kv <= 1024 is window = 1025, models.layers.AUTHORS_HYBRID_WINDOW).

CUDA graphs for the decode step (``generate(..., graphs=...)``): implementations keep python-int
positions in their states and bake them into the kernels they launch, so a captured graph is valid
only for positions whose step launches the same kernels with the same arguments. Each layer says
which positions those are (``decode_signature``): every position for attention and SWA (so graphs
never pay there: each would serve one step), one class for linear attention (its state has no
position), and (chunk c, l == 0) for RAT (docs/rat-spec.md: a step uses the position only through its chunk
and the reset at a chunk start): with L = 16, steps l = 0 and 1 of a chunk run eagerly, l = 2 is
captured and l = 3..15 replay it. A graph is captured at the second occurrence of a signature that
recurs later; the first runs eagerly as the warm-up (Triton specialises kernels on integer arguments
such as the chunk index and the l == 0 flag, so each signature's kernels are compiled, autotuned and
cuBLAS initialised before a capture). After each replay the python positions are advanced by hand,
since replay does not run the python that does it; a graph whose signature does not occur again is
released. The decode loop itself stays in python (one replay per token).
A device-tensor position in the implementations' states would let one graph serve every step.
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ratbench.bench.memory import is_oom
from ratbench.bench.timing import capture_graph
from ratbench.models.layers import (
    DEFAULT_WINDOW,
    KIND_FAMILY,
    MIXER_KINDS,
    FeedForward,
    LayerCache,
    MixerLayer,
    build_mixer,
)
from ratbench.models.norm import RMSNorm

log = logging.getLogger(__name__)


@dataclass
class LMConfig:
    """Sizes and mixers of the model. Defaults: the paper's 1.3B configuration with RAT (L = 16)."""

    vocab_size: int = 32000
    d_model: int = 2048
    n_layers: int = 24
    heads: int = 16
    head_dim: int = 128
    ffn_mult: int = 4
    #: attention, swa, linear, rat, rnn, or "<even>-<odd>" (e.g. "rat-swa") alternating two kinds
    mixer: str = "rat"
    #: explicit per-layer kinds; overrides ``mixer`` when given
    layer_kinds: tuple[str, ...] | None = None
    #: implementation per family ("full", "swa", "linear", "rat"); missing families use "<family>/reference"
    impls: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 16
    window: int = DEFAULT_WINDOW
    groups: int = 2
    linear_decay: bool = True
    eps: float = 1e-6

    def kinds(self) -> list[str]:
        """The mixer kind of every layer."""
        if self.layer_kinds is not None:
            kinds = list(self.layer_kinds)
            if len(kinds) != self.n_layers:
                raise ValueError(f"layer_kinds has {len(kinds)} entries for n_layers={self.n_layers}")
        elif self.mixer in MIXER_KINDS:
            kinds = [self.mixer] * self.n_layers
        else:
            parts = self.mixer.split("-")
            if len(parts) != 2 or any(p not in MIXER_KINDS for p in parts):
                raise ValueError(f"mixer must be one of {', '.join(MIXER_KINDS)} or a hybrid '<even>-<odd>' of two "
                                 f"of them (e.g. 'rat-swa'), got {self.mixer!r}")
            kinds = [parts[i % 2] for i in range(self.n_layers)]
        for k in kinds:
            if k not in MIXER_KINDS:
                raise ValueError(f"unknown mixer kind {k!r}; known: {', '.join(MIXER_KINDS)}")
        for fam in self.impls:
            if fam not in KIND_FAMILY.values():
                raise ValueError(f"impls keys are families {sorted(set(KIND_FAMILY.values()))}, got {fam!r}")
        return kinds

    def impl_for(self, kind: str) -> str:
        fam = KIND_FAMILY[kind]
        return self.impls.get(fam, f"{fam}/reference")

    def n_params(self) -> int:
        """Parameter count (tied embedding counted once), from the built shapes' formula."""
        Dm, V = self.d_model, self.vocab_size
        inner = self.heads * self.head_dim
        n = V * Dm + Dm  # embedding + final norm
        for k in self.kinds():
            if k in ("attention", "swa"):
                n += Dm + 3 * Dm * inner + inner * Dm
            elif k == "linear":
                n += Dm + Dm * (3 * inner + (self.heads if self.linear_decay else 0)) + self.head_dim + inner * Dm
            else:
                n += Dm + Dm * (3 * Dm + 2 * self.groups * self.head_dim) + Dm + Dm * Dm
            n += Dm + 2 * self.ffn_mult * Dm * Dm
        return n


@dataclass
class GenerateResult:
    """Tokens and measurements of one ``generate`` call (times are wall seconds, synchronised)."""

    tokens: torch.Tensor  # (B, n_new) generated ids
    batch: int
    prompt_len: int
    n_new: int
    prefill_s: float
    decode_s: float  # the n_new - 1 decode steps, including any graph capture
    capture_s: float  # part of decode_s spent capturing CUDA graphs
    cache_bytes: int  # allocated decode cache, all layers
    decode_mode: str  # "eager" or "cuda-graph"
    graph_note: str | None  # why graphs were not used, or how many were captured / replayed
    n_graphs: int = 0
    graph_steps: int = 0  # decode steps served by a graph replay

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second, prefill included (the paper's Table 1 counts generation)."""
        return self.batch * self.n_new / max(self.prefill_s + self.decode_s, 1e-12)

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens per second of the decode steps alone."""
        return self.batch * max(self.n_new - 1, 0) / max(self.decode_s, 1e-12)


class LanguageModel(nn.Module):
    def __init__(self, config: LMConfig, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.config = config
        c = config
        kw: dict[str, Any] = {"eps": c.eps, "device": device, "dtype": dtype}
        self.embed = nn.Embedding(c.vocab_size, c.d_model, device=device, dtype=dtype)
        nn.init.normal_(self.embed.weight, std=0.02)
        layers: list[nn.Module] = []
        for kind in c.kinds():
            layers.append(build_mixer(kind, c.d_model, c.heads, c.head_dim, impl=c.impl_for(kind),
                                      chunk_size=c.chunk_size, window=c.window, groups=c.groups,
                                      linear_decay=c.linear_decay, **kw))
            layers.append(FeedForward(c.d_model, c.ffn_mult, **kw))
        self.layers = nn.ModuleList(layers)  # mixer, ffn, mixer, ffn, ...
        self.norm = RMSNorm(c.d_model, c.eps, device=device, dtype=dtype)

    def compile_glue(self, enabled: bool = True, backend: str = "inductor") -> None:
        """torch.compile every layer's glue (norms, projections, gates, RoPE, FFN, residuals) for prefill and
        decode steps; the mixers' implementations run as themselves (models.layers). Compiles at the first
        calls (about once per layer class and input rank: the batch dim is dynamic)."""
        for layer in self.layers:
            layer.compile_glue(enabled, backend)

    @property
    def mixers(self) -> list[MixerLayer]:
        return [m for m in self.layers if isinstance(m, MixerLayer)]

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(h), self.embed.weight)  # tied output head

    def _check_ids(self, ids: torch.Tensor, ndim: int) -> None:
        if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int32, torch.int64):
            raise TypeError("token ids must be an int32/int64 torch.Tensor")
        if ids.dim() != ndim:
            raise ValueError(f"token ids must have {ndim} dims ({'(B, T)' if ndim == 2 else '(B,)'}), "
                             f"got shape {tuple(ids.shape)}")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> logits (B, T, vocab)."""
        self._check_ids(ids, 2)
        h = self.embed(ids)
        for layer in self.layers:
            h = layer(h)
        return self._logits(h)

    # ----- decode -----------------------------------------------------------------------------
    def init_caches(self, batch: int, max_len: int, device: torch.device | str | None = None,
                    dtype: torch.dtype | None = None) -> list[LayerCache]:
        """One cache per layer (FFN layers get an empty one). dtype: the dtype the mixers' projections
        produce (default: the parameters' dtype)."""
        device = device or self.embed.weight.device
        dtype = dtype or self.embed.weight.dtype
        return [layer.init_cache(batch, max_len, device, dtype) for layer in self.layers]

    @staticmethod
    def cache_bytes(caches: list[LayerCache]) -> int:
        """Bytes allocated by the decode caches of all layers."""
        return sum(c.nbytes() for c in caches)

    def cache_report(self, caches: list[LayerCache]) -> dict[str, int]:
        """Allocated cache bytes per mixer kind and in total."""
        out: dict[str, int] = {}
        for layer, c in zip(self.layers, caches):
            if isinstance(layer, MixerLayer):
                out[layer.kind] = out.get(layer.kind, 0) + c.nbytes()
        out["total"] = sum(out.values())
        return out

    def prefill(self, caches: list[LayerCache], ids: torch.Tensor, *, prefill_batch: int | None = None) -> torch.Tensor:
        """Run the prompt ids (B, T0) through every layer writing the caches; returns the logits of the
        last prompt token (B, vocab). ``prefill_batch`` prefills that many sequences at a time (views of
        the same caches), which bounds the activation memory at large batch."""
        self._check_ids(ids, 2)
        B = ids.shape[0]
        step = prefill_batch or B
        if step >= B:
            h = self.embed(ids)
            for layer, c in zip(self.layers, caches):
                h = layer.prefill(c, h)
            return self._logits(h[:, -1])
        outs, subs = [], []
        for b0 in range(0, B, step):
            sub = [c.batch_slice(b0, b0 + step) for c in caches]  # views: empty states at pos 0
            h = self.embed(ids[b0:b0 + step])
            for layer, c in zip(self.layers, sub):
                views = c.state_tensors()
                h = layer.prefill(c, h)
                if any(a is not b for a, b in zip(views, c.state_tensors())):
                    raise RuntimeError(f"{getattr(layer, 'impl_name', layer)} replaced a decode-state tensor during "
                                       "prefill instead of writing it in place; prefill_batch needs in-place writes")
            outs.append(self._logits(h[:, -1]))
            subs.append(sub)
        for c, s in zip(caches, subs[0]):  # the views carried the positions; set them on the full caches
            if c.state is not None:
                c.state.pos = s.state.pos
        return torch.cat(outs)

    def decode_step(self, caches: list[LayerCache], tok: torch.Tensor) -> torch.Tensor:
        """One token per sequence, tok (B,) -> logits (B, vocab)."""
        self._check_ids(tok, 1)
        h = self.embed(tok)
        for layer, c in zip(self.layers, caches):
            h = layer.step(c, h)
        return self._logits(h)

    def _next_token(self, caches: list[LayerCache], tok: torch.Tensor) -> torch.Tensor:
        return self.decode_step(caches, tok).argmax(-1)

    def decode_signature(self, caches: list[LayerCache], pos: int) -> tuple[Hashable, ...]:
        return tuple(layer.decode_signature(c, pos) for layer, c in zip(self.layers, caches))

    @torch.no_grad()
    def generate(self, prompt_ids: torch.Tensor, n_new: int, *, graphs: str = "off",
                 prefill_batch: int | None = None, cache_dtype: torch.dtype | None = None) -> GenerateResult:
        """Greedy generation of n_new tokens after prompt_ids (B, T0): a real prefill of the prompt,
        then n_new - 1 decode steps through the caches. graphs: "off", "auto" (capture CUDA graphs where
        a step recurs, else run eagerly and say why) or "on" (like auto, but raise if no graph can be
        used)."""
        self._check_ids(prompt_ids, 2)
        if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 1:
            raise ValueError(f"n_new must be a positive int, got {n_new!r}")
        if graphs not in ("off", "auto", "on"):
            raise ValueError(f"graphs must be 'off', 'auto' or 'on', got {graphs!r}")
        B, T0 = prompt_ids.shape
        dev = prompt_ids.device
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        caches = self.init_caches(B, T0 + n_new - 1, dev, cache_dtype)
        tokens = torch.empty(B, n_new, dtype=torch.long, device=dev)
        sync()
        t0 = time.perf_counter()
        tokens[:, 0] = self.prefill(caches, prompt_ids, prefill_batch=prefill_batch).argmax(-1)
        sync()
        t1 = time.perf_counter()
        runner = _GraphDecoder(self, caches, graphs, n_new - 1) if graphs != "off" else None
        tok = tokens[:, 0].clone()
        for i in range(1, n_new):
            tok = runner.step(tok) if runner else self._next_token(caches, tok)
            tokens[:, i] = tok
        sync()
        t2 = time.perf_counter()
        if runner is None:
            mode, note, n_graphs, g_steps, cap = "eager", "CUDA graphs off", 0, 0, 0.0
        else:
            mode = "cuda-graph" if runner.graph_steps else "eager"
            note, n_graphs, g_steps, cap = runner.note(), runner.n_captured, runner.graph_steps, runner.capture_s
            if graphs == "on" and not runner.graph_steps and n_new > 2:
                raise RuntimeError(f"graphs='on' but no decode step ran as a CUDA graph: {note}")
        return GenerateResult(tokens, B, T0, n_new, t1 - t0, t2 - t1, cap, self.cache_bytes(caches), mode, note,
                              n_graphs, g_steps)


def graphs_unsupported_reason(device: torch.device) -> str | None:
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device; the model is on {device.type}"
    return None


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class _GraphDecoder:
    """Decode steps through CUDA graphs, one graph per recurring step signature (module docstring)."""

    def __init__(self, model: LanguageModel, caches: list[LayerCache], mode: str, n_steps: int) -> None:
        self.model, self.caches, self.mode = model, caches, mode
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self.pool = None
        self.eager_steps = 0
        self.graph_steps = 0
        self.n_captured = 0
        self.seen: set[tuple] = set()  # signatures that ran eagerly (kernels compiled for their arguments)
        self.capture_s = 0.0
        self.disabled: str | None = None
        self.static_tok: torch.Tensor | None = None
        self.states = [c.state for c in caches if c.state is not None]
        self.disabled = graphs_unsupported_reason(model.embed.weight.device)
        # how often each step signature occurs among the steps still to run
        pos0 = self._pos()
        self.remaining: dict[tuple, int] = {}
        for p in range(pos0, pos0 + n_steps):
            sig = model.decode_signature(caches, p)
            self.remaining[sig] = self.remaining.get(sig, 0) + 1
        # mixer kinds whose step differs at every position (the ones that rule graphs out)
        self.per_position_kinds = {
            m.kind for m, c in zip(model.layers, caches) if isinstance(m, MixerLayer) and n_steps > 1
            and len({m.decode_signature(c, p) for p in range(pos0, pos0 + n_steps)}) == n_steps}

    def _pos(self) -> int:
        return self.states[0].pos if self.states else 0

    def note(self) -> str:
        if self.graph_steps:
            return (f"{self.n_captured} graphs captured, {self.graph_steps} steps replayed, "
                    f"{self.eager_steps} eager")
        if self.disabled:
            return self.disabled
        return ("no decode step signature recurs: the step of "
                + ", ".join(sorted(self.per_position_kinds))
                + " layers bakes the (python-int) position into its kernels, so a graph would serve one step")

    def step(self, tok: torch.Tensor) -> torch.Tensor:
        model, caches = self.model, self.caches
        pos = self._pos()
        sig = model.decode_signature(caches, pos)
        self.remaining[sig] -= 1
        if self.disabled is None:
            if sig in self.graphs:
                g, out = self.graphs[sig]
                self.static_tok.copy_(tok)
                g.replay()
                for s in self.states:
                    s.pos += 1
                self.graph_steps += 1
                out = out.clone()
                if self.remaining[sig] == 0:  # never replayed again: release it
                    del self.graphs[sig]
                return out
            if self.remaining[sig] > 0 and sig in self.seen:  # recurs, and ran eagerly once: capture
                out = self._capture(sig, tok)
                if out is not None:
                    return out
        self.seen.add(sig)
        self.eager_steps += 1
        return model._next_token(caches, tok)

    def _capture(self, sig: tuple, tok: torch.Tensor) -> torch.Tensor | None:
        """Capture this step as a graph and replay it once; None (positions restored) if capture fails."""
        saved = [s.pos for s in self.states]
        if self.static_tok is None:
            self.static_tok = tok.clone()
        self.static_tok.copy_(tok)
        _sync()
        t = time.perf_counter()
        if self.pool is None and torch.cuda.is_available():
            self.pool = torch.cuda.graph_pool_handle()  # one memory pool for every graph of this generate
        try:
            g, out = capture_graph(lambda: self.model._next_token(self.caches, self.static_tok), self.pool)
        except Exception as exc:
            for s, p in zip(self.states, saved):
                s.pos = p
            _sync()
            self.disabled = f"the decode step could not be captured as a CUDA graph: {type(exc).__name__}: {exc}"
            if self.mode == "on":
                raise RuntimeError(self.disabled) from exc
            log.warning("%s; decoding eagerly", self.disabled)
            return None
        # capture ran the python (positions advanced once) but no kernels: run them now
        for s, p in zip(self.states, saved):
            if s.pos != p + 1:
                raise RuntimeError(f"a decode step advanced a state from position {p} to {s.pos}, expected {p + 1}")
        g.replay()
        _sync()
        self.capture_s += time.perf_counter() - t
        self.graphs[sig] = (g, out)
        self.n_captured += 1
        self.graph_steps += 1
        return out.clone()


# ----- max batch ----------------------------------------------------------------------------------
@dataclass
class MaxBatch:
    """Result of ``find_max_batch``: the largest batch that ran, and every (batch, ran) tried."""

    batch: int
    tried: list[tuple[int, bool]]
    limit_reached: bool


def find_max_batch(run: Callable[[int], Any], *, start: int = 1, limit: int = 1 << 16, multiple: int = 1) -> MaxBatch:
    """The largest batch b (a multiple of ``multiple``, start <= b <= limit) for which ``run(b)`` does not
    run out of memory: doubling from ``start``, then bisection between the last success and the first
    out-of-memory (below ``start`` too if ``start`` does not fit). Other exceptions propagate. Frees the
    CUDA cache between tries. Assumes memory grows with the batch. batch = 0 when nothing fits."""
    for n, v in (("start", start), ("limit", limit), ("multiple", multiple)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{n} must be a positive int, got {v!r}")
    tried: list[tuple[int, bool]] = []

    def attempt(b: int) -> bool:
        ok = True
        try:
            run(b)
        except Exception as exc:
            if not is_oom(exc):
                raise
            ok = False
        if torch.cuda.is_available():  # free what the failed try held (tracebacks keep tensors alive)
            gc.collect()
            torch.cuda.empty_cache()
        tried.append((b, ok))
        log.info("max batch search: batch %d %s", b, "fits" if ok else "out of memory")
        return ok

    def align(b: int) -> int:
        return max(multiple, b // multiple * multiple)

    lim = align(limit)
    good, bad = 0, None
    b = min(align(start), lim)
    while True:  # doubling until out of memory or the limit
        if not attempt(b):
            bad = b
            break
        good = b
        if b >= lim:
            return MaxBatch(good, tried, True)
        b = min(align(b * 2), lim)
    lo, hi = good, bad  # lo fits (or is 0), hi does not
    while hi - lo > multiple:  # bisection
        mid = max(align((lo + hi) // 2), lo + multiple)
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    return MaxBatch(lo, tried, False)


def memory_probe(model: LanguageModel, batch: int, prompt_len: int, n_new: int, *, prefill_batch: int | None = None,
                 decode_steps: int = 2, cache_dtype: torch.dtype | None = None) -> None:
    """Allocate and exercise what ``generate(ids (batch, prompt_len), n_new, prefill_batch=...)`` needs at its
    peak, quickly: the decode caches of the whole batch at full length, a real prefill of one prefill
    piece (the other pieces reuse the same activation memory), and ``decode_steps`` real decode steps of
    the whole batch (the caches of the sequences not prefilled hold zeros, which changes no memory).
    Raises torch.OutOfMemoryError when it does not fit."""
    dev = model.embed.weight.device
    piece = min(prefill_batch or batch, batch)
    with torch.no_grad():
        caches = model.init_caches(batch, prompt_len + n_new - 1, dev, cache_dtype)
        ids = torch.randint(0, model.config.vocab_size, (piece, prompt_len), device=dev)
        sub = [c.batch_slice(0, piece) for c in caches]
        h = model.embed(ids)
        for layer, c in zip(model.layers, sub):
            h = layer.prefill(c, h)
        model._logits(h[:, -1])
        del h
        for c in caches:
            if c.state is not None:
                c.state.pos = prompt_len
        tok = torch.zeros(batch, dtype=torch.long, device=dev)
        for _ in range(min(decode_steps, n_new - 1)):
            tok = model._next_token(caches, tok)
        _sync()


def max_generate_batch(model: LanguageModel, prompt_len: int, n_new: int, *, prefill_batch: int | None = None,
                       start: int = 16, limit: int = 1 << 14, multiple: int = 8) -> MaxBatch:
    """The largest batch (a multiple of ``multiple``) at which ``model.generate`` of n_new tokens after a
    prompt_len-token prompt fits in memory, by ``find_max_batch`` over ``memory_probe``. Leave room for
    CUDA graph pools by taking a smaller ``limit`` or a margin if you decode with graphs."""
    return find_max_batch(lambda b: memory_probe(model, b, prompt_len, n_new, prefill_batch=prefill_batch),
                          start=start, limit=limit, multiple=multiple)
