"""Layer-level timed callables (the paper's protocol, docs/rat-spec.md) for the harness (bench/levels.py).

``layer_callable(LayerCase(...))`` builds a layer and its inputs once and returns a closure that does
one timed call:

- train: forward + ``out.mean().backward()`` under autocast (float32 weights, activations in
  ``dtype``); x requires grad, as for a layer inside a network, so the input gradient is computed too.
- prefill: forward under no_grad writing the layer's decode cache (allocated once, at seq_len; each
  call marks it empty first), autocast as in train.
- decode: one ``step`` at position seq_len - 1 of a cache filled by real prefills of seq_len - 1
  random tokens (in batch slices of about FILL_TOKENS tokens; ``fill="none"`` only sets the position);
  weights in ``dtype`` (a deployed model, no autocast). Each call resets the position to seq_len - 1, so every call is the same step.
  ``graph=True`` captures that step once as a CUDA graph and the closure replays it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ratbench.bench.timing import capture_graph
from ratbench.models.layers import DEFAULT_WINDOW, LayerCache, MixerLayer, build_mixer

#: tokens per prefill call when filling a decode cache
FILL_TOKENS = 262144
MODES = ("train", "prefill", "decode")


@dataclass
class LayerCase:
    """One layer-level measurement: mixer kind and implementation, mode and shape."""

    kind: str  # attention, swa, linear, rat, rnn
    impl: str  # registry name of the family's implementation
    mode: str  # train, prefill, decode
    batch: int
    seq_len: int
    d_model: int = 2048
    heads: int = 16
    head_dim: int = 128
    chunk_size: int = 16
    window: int = DEFAULT_WINDOW
    dtype: torch.dtype = torch.bfloat16
    device: str = "cuda"
    compile: bool = False  # torch.compile the layer (train, prefill)
    graph: bool = False  # decode: replay the step as a CUDA graph
    #: decode: "prefill" fills the cache with real prefills of seq_len - 1 random tokens; "none" only sets
    #: the position (zeros in the cache: the same kernels and bytes, no data-dependent work), much faster
    fill: str = "prefill"
    seed: int = 0


@dataclass
class LayerCallable:
    fn: Callable[[], None]
    layer: MixerLayer
    cache: LayerCache | None  # prefill, decode: the layer's decode cache

    @property
    def cache_bytes(self) -> int | None:
        """Bytes allocated by the layer's decode cache (None in train mode)."""
        return None if self.cache is None else self.cache.nbytes()


def _autocast(case: LayerCase):
    if case.dtype in (torch.float32, torch.float64):
        return contextlib.nullcontext()
    return torch.autocast(torch.device(case.device).type, dtype=case.dtype)


def build_layer(case: LayerCase) -> MixerLayer:
    torch.manual_seed(case.seed)
    return build_mixer(case.kind, case.d_model, case.heads, case.head_dim, impl=case.impl,
                       chunk_size=case.chunk_size, window=case.window, device=case.device)


def fill_cache(layer: MixerLayer, cache: LayerCache, batch: int, n_tokens: int, dtype: torch.dtype, device: str) -> None:
    """Prefill ``cache`` with n_tokens random tokens per sequence, a few sequences at a time."""
    per = max(1, FILL_TOKENS // max(n_tokens, 1))
    gen = torch.Generator(device=device).manual_seed(1)
    with torch.no_grad():
        for b0 in range(0, batch, per):
            sub = cache.batch_slice(b0, min(b0 + per, batch))
            x = torch.randn(min(per, batch - b0), n_tokens, layer.d_model, generator=gen, device=device, dtype=dtype)
            layer.prefill(sub, x)
    cache.state.pos = n_tokens


def layer_callable(case: LayerCase) -> LayerCallable:
    """The closure that does one timed call of ``case`` (module docstring)."""
    if case.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {case.mode!r}")
    layer = build_layer(case)
    dev, B, T = case.device, case.batch, case.seq_len
    gen = torch.Generator(device=dev).manual_seed(case.seed)
    if case.mode == "train":
        fwd = torch.compile(layer) if case.compile else layer
        x = torch.randn(B, T, case.d_model, generator=gen, device=dev, dtype=case.dtype, requires_grad=True)
        params = list(layer.parameters())

        def train() -> None:
            for p in params:
                p.grad = None
            x.grad = None
            with _autocast(case):
                out = fwd(x)
            out.mean().backward()

        return LayerCallable(train, layer, None)
    if case.mode == "prefill":
        cache = layer.init_cache(B, T, dev, case.dtype)
        x = torch.randn(B, T, case.d_model, generator=gen, device=dev, dtype=case.dtype)
        pre = torch.compile(layer.prefill) if case.compile else layer.prefill

        def prefill() -> None:
            cache.reset()
            with torch.no_grad(), _autocast(case):
                pre(cache, x)

        return LayerCallable(prefill, layer, cache)
    # decode: a deployed layer, weights in the activation dtype
    layer = layer.to(case.dtype)
    cache = layer.init_cache(B, T, dev, case.dtype)
    if case.fill not in ("prefill", "none"):
        raise ValueError(f"fill must be 'prefill' or 'none', got {case.fill!r}")
    if T > 1 and case.fill == "prefill":
        fill_cache(layer, cache, B, T - 1, case.dtype, dev)
    cache.state.pos = T - 1
    x_t = torch.randn(B, case.d_model, generator=gen, device=dev, dtype=case.dtype)

    def step() -> None:
        cache.state.pos = T - 1
        with torch.no_grad():
            layer.step(cache, x_t)

    return LayerCallable(graph_callable(step) if case.graph else step, layer, cache)


def graph_callable(fn: Callable[[], None]) -> Callable[[], None]:
    """Run fn once (warm-up: kernels compiled and autotuned outside the capture), capture one call of it
    as a CUDA graph and return the graph's replay. Only for closures that launch the same kernels with
    the same arguments every call (a decode step whose position is reset each call)."""
    if not torch.cuda.is_available():
        raise ValueError("CUDA graphs need a CUDA device")
    fn()
    torch.cuda.synchronize()
    g, _ = capture_graph(fn, None)
    return g.replay
