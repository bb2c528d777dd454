"""Correctness of a layer with one implementation before it is timed (bench/levels.py).

``check_layer`` builds the layer twice with the same weights, once with the implementation under test and
once with the family's reference, runs both on the same input under the same autocast, and compares:
- the mixer output (before the residual, which would swamp a wrong mixer in bf16);
- train: the gradient of the layer input for ``out.mean()`` (when the implementation has a backward
  on this device);
- decode: the layer's prefill of T - n tokens + n steps (n = chunk + 2, crossing a chunk boundary) against
  its own forward (implementations with a decode path).
Errors are relative: ||a - b|| / ||b||. A wrong implementation is never timed.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from ratbench.models.layers import DEFAULT_WINDOW, KIND_FAMILY, build_mixer

#: relative error bound per dtype of the activations (bf16/fp16 q, k, v carry ~3 significant digits;
#: float32 on CUDA may use TF32 matmuls)
REL_TOL = {torch.bfloat16: 3e-2, torch.float16: 3e-2, torch.float32: 1e-4, torch.float64: 1e-9}
REL_TOL_CUDA_FP32 = 1e-2


@dataclass
class LayerCheck:
    ok: bool
    rel_err: float | None = None  # mixer output vs the reference layer
    rel_err_grad: float | None = None  # input gradient vs the reference layer (train)
    rel_err_decode: float | None = None  # prefill + steps vs forward (own layer)
    tol: float | None = None
    error: str | None = None

    @property
    def detail(self) -> str:
        if self.error:
            return self.error
        parts = [f"{n} {v:.3g}" for n, v in (("output", self.rel_err), ("input grad", self.rel_err_grad),
                                             ("decode vs forward", self.rel_err_decode)) if v is not None]
        return "relative errors: " + ", ".join(parts) + f" (bound {self.tol:.3g})"


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    e = float((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30))
    return float("inf") if math.isnan(e) else e


def _autocast(device: str, dtype: torch.dtype):
    if dtype in (torch.float32, torch.float64):
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def check_layer(kind: str, impl: str, *, mode: str = "prefill", d_model: int, heads: int, head_dim: int,
                chunk_size: int = 16, window: int = DEFAULT_WINDOW, batch: int = 2, seq_len: int = 512,
                device: str = "cpu", dtype: torch.dtype = torch.float32, tol: float | None = None,
                seed: int = 0) -> LayerCheck:
    """Compare the ``kind`` layer with ``impl`` to the same layer with the family reference (module doc).
    ``mode`` decides what is compared beyond the output: train the input gradient, decode prefill + steps.
    Weights are float32 (float64 for float64 activations) and the activations run under autocast to
    ``dtype``, as in models.cases.layer_callable's train and prefill."""
    ref_name = f"{KIND_FAMILY[kind]}/reference"
    wdt = torch.float64 if dtype == torch.float64 else torch.float32
    if tol is None:
        tol = REL_TOL_CUDA_FP32 if (dtype == torch.float32 and device == "cuda") else REL_TOL.get(dtype, 3e-2)
    kw = {"chunk_size": chunk_size, "window": window, "device": device, "dtype": wdt}
    torch.manual_seed(seed)
    lay = build_mixer(kind, d_model, heads, head_dim, impl=impl, **kw)
    ref = build_mixer(kind, d_model, heads, head_dim, impl=ref_name, **kw)
    ref.load_state_dict(lay.state_dict())
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    x = torch.randn(batch, seq_len, d_model, generator=gen, device=device, dtype=torch.float32).to(
        dtype if dtype == torch.float64 else wdt)
    out = LayerCheck(ok=True, tol=tol)
    grad = mode == "train" and device in lay.impl.backward_devices
    with _autocast(device, dtype):
        xs = [x.clone().requires_grad_(grad) for _ in range(2)]
        with torch.set_grad_enabled(grad):
            hs = [m.norm(xi) for m, xi in zip((lay, ref), xs)]
            y, yr = lay._mix(hs[0]), ref._mix(hs[1])
        out.rel_err = rel(y.detach(), yr.detach())
        if grad:
            (xs[0] + y).float().mean().backward()
            (xs[1] + yr).float().mean().backward()
            out.rel_err_grad = rel(xs[0].grad, xs[1].grad)
        if mode == "decode" and lay.impl.supports_decode and seq_len > 1:
            with torch.no_grad():
                h = hs[0].detach()
                L = seq_len if chunk_size is None or kind == "rnn" else chunk_size
                n = min(seq_len - 1, L + 2)
                T0 = seq_len - n
                # the cache holds what the projections produce under autocast (``dtype``), as in
                # models.cases and the model's init_caches; h (the norm's output) stays float32
                cache = lay.init_cache(batch, seq_len, device, dtype)
                outs = [lay._mix_prefill(cache, h[:, :T0])] if T0 else []
                outs += [lay._mix_step(cache, h[:, t])[:, None] for t in range(T0, seq_len)]
                out.rel_err_decode = rel(torch.cat(outs, 1), y.detach())
    errs = [e for e in (out.rel_err, out.rel_err_grad, out.rel_err_decode) if e is not None]
    out.ok = all(math.isfinite(e) and e <= tol for e in errs)
    return out
