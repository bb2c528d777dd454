"""Each implementation against its family's reference, on a small shape of the case's configuration,
before the case is timed. A wrong implementation is reported as 'wrong' and never timed.

The small shape: B = 2, H = 2, the case's head_dim, dtype, device and family parameters, and
T = min(case T, max(128, 4 L, W + 64)) rounded up to a multiple of lcm(L, 128), so that RAT has
several chunks, SWA's window is exceeded and tiled kernels see whole tiles. What is compared, per mode:
    train    the output and the gradient of every input, for one random output gradient
    prefill  the output of ``prefill`` on an empty state (``forward`` if there is no decode path)
    decode   prefill of T - n tokens then n steps (crossing a chunk boundary), against forward
The reference runs in float64 on the same (upcast) inputs. Pass: max|out - ref| <= atol + rtol *
max|ref| for every compared tensor (gradients get twice the tolerances).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import torch

from ratbench import impls
from ratbench.bench import cases as C
from ratbench.bench.sweep import Case
from ratbench.impls.base import Implementation

log = logging.getLogger(__name__)

#: (atol, rtol) per dtype and device type; float32 on CUDA allows TF32 matmuls
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("float64", "cpu"): (1e-8, 1e-8), ("float64", "cuda"): (1e-8, 1e-8),
    ("float32", "cpu"): (1e-4, 1e-4), ("float32", "cuda"): (5e-3, 5e-3),
    ("float16", "cpu"): (5e-3, 5e-3), ("float16", "cuda"): (5e-3, 5e-3),
    ("bfloat16", "cpu"): (1e-2, 1e-2), ("bfloat16", "cuda"): (1e-2, 1e-2),
}


@dataclass(frozen=True)
class AccuracyResult:
    #: True pass, False wrong, None not checked (see detail)
    ok: bool | None
    max_abs_err: float | None = None
    grad_max_abs_err: float | None = None
    tol: float | None = None
    detail: str | None = None
    #: per-tensor errors for the row's ``details`` (the FlashAttention rule, bench/fa_rule.py)
    details: dict | None = None


def small_case(case: Case) -> Case:
    L = case.chunk_size or 1
    want = max(128, 4 * L)
    if case.window is not None:
        want = max(want, case.window + 64)
    unit = math.lcm(L, 128)  # kernels often tile T by 64 or 128: check at a length they accept
    want = math.ceil(want / unit) * unit
    return dataclasses.replace(case, batch=2, heads=2, seq_len=min(case.seq_len, want))


def check_key(case: Case) -> tuple:
    """Cases with one key share one check."""
    s = small_case(case)
    return (s.impl, s.mode, s.seq_len, s.head_dim, s.chunk_size, s.window, s.decay, s.dtype, s.device, s.level,
            s.family_params)


def _err(a: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float) -> tuple[float, float]:
    if a.shape != ref.shape:
        raise ValueError(f"output has shape {tuple(a.shape)}, the reference {tuple(ref.shape)}")
    err = (a.detach().double() - ref.detach().double()).abs().max().item()
    bound = atol + rtol * ref.detach().double().abs().max().item()
    return (float("inf") if math.isnan(err) else err), bound


def _reference(case: Case) -> Implementation | None:
    try:
        return impls.get(impls.family(case.family).reference)
    except Exception as exc:  # noqa: BLE001 - no reference is 'not checked', not a crash
        log.warning("no reference for %s: %s", case.family, exc)
        return None


def check(impl: Implementation, case: Case, seed: int = 1234) -> AccuracyResult:
    """Compare ``impl`` on a small shape of ``case`` with the family reference (float64)."""
    if impl.is_reference:
        return AccuracyResult(ok=None, detail="the family reference itself")
    ref = _reference(case)
    if ref is None:
        return AccuracyResult(ok=None, detail=f"no {case.family}/reference to check against")
    s = small_case(case)
    atol, rtol = TOLERANCES.get((s.dtype, s.device), (1e-2, 1e-2))
    ref_case = dataclasses.replace(s, dtype="float64")
    B, T, H = s.batch, s.seq_len, s.heads

    x = C.make_inputs(s, B, T, H, seed=seed, requires_grad=s.mode == "train")
    xr = {k: t.detach().double().requires_grad_(s.mode == "train") for k, t in x.items()}
    out_err = bound = 0.0
    grad_err: float | None = None
    ok = True
    if s.mode == "train":
        y = C.forward(impl, s, x)
        yr = C.forward(ref, ref_case, xr)
        out_err, bound = _err(y, yr, atol, rtol)
        ok = out_err <= bound
        g = torch.randn(y.shape, generator=torch.Generator(device=s.device).manual_seed(seed + 1),
                        device=s.device, dtype=torch.float32).to(y.dtype)
        grads = torch.autograd.grad(y, list(x.values()), g)
        grads_r = torch.autograd.grad(yr, list(xr.values()), g.double())
        grad_err = 0.0
        for name, a, r in zip(x, grads, grads_r):
            e, b = _err(a, r, 2 * atol, 2 * rtol)
            grad_err = max(grad_err, e)
            if e > b:
                ok = False
                log.info("%s: gradient of %s off by %.3g (bound %.3g)", case.impl, name, e, b)
    elif s.mode == "prefill":
        with torch.no_grad():
            if impl.supports_decode:
                st = C.init_state(impl, s, B, T)
                y = C.prefill(impl, s, st, x)
            else:
                y = C.forward(impl, s, x)
            yr = C.forward(ref, ref_case, xr)
        out_err, bound = _err(y, yr, atol, rtol)
        ok = out_err <= bound
    else:  # decode
        n = min(T - 1, (s.chunk_size or 1) + 2) if T > 1 else 0  # L + 2 steps cross a chunk boundary
        T0 = T - n
        with torch.no_grad():
            st = C.init_state(impl, s, B, T)
            outs = []
            if T0:
                outs.append(C.prefill(impl, s, st, {k: t[:, :T0] for k, t in x.items()}))
            for t in range(T0, T):
                outs.append(C.step(impl, s, st, {k: v[:, t] for k, v in x.items()})[:, None])
            y = torch.cat(outs, dim=1)
            yr = C.forward(ref, ref_case, xr)
        out_err, bound = _err(y, yr, atol, rtol)
        ok = out_err <= bound
    detail = None
    if not ok:
        detail = (f"differs from {case.family}/reference at B={B} T={T} H={H}: max abs err {out_err:.3g}"
                  + (f", gradients {grad_err:.3g}" if grad_err is not None else "") + f" (bound {bound:.3g})")
    return AccuracyResult(ok=ok, max_abs_err=out_err, grad_max_abs_err=grad_err, tol=bound, detail=detail)
