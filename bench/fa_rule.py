"""The FlashAttention error rule (``--accuracy fa-rule``): an implementation against the float64 reference,
at the case's own shape, judged by how far the same math in the case's dtype is from float64.

Per compared tensor x (train: the output and the gradient of every input for one random output gradient;
prefill: the output of ``prefill`` on an empty state, ``forward`` without a decode path; decode: prefill of
T - n tokens then n steps crossing a chunk boundary, against forward), with ref64 the family reference on the
float64-upcast inputs and low the same reference math run in the case's dtype (``low_precision_forward``):

    bf16 / fp16   pass if x is finite and max|x - ref64| <= 2 * max|low - ref64| + 1e-6
    fp32          pass if x is finite and ||x - ref64|| / ||ref64|| <= 1e-4 (tf32x3 products on a GPU)
    fp64          pass if x is finite and ||x - ref64|| / ||ref64|| <= 1e-10
    ref64 == 0    (RAT with one chunk: dq and dk are exactly 0) pass if x is finite and max|x| <= 1e-4

This is the rule the per-kernel GPU scripts (scripts/gpu_rat_triton.py ``check``, gpu_full_swa_triton.py,
gpu_rat_long_chunk.py; removed, see git history before this module) applied; it replaces the harness's
small-shape tolerance check (bench.accuracy) for the run it is asked for. The float64 reference runs at the
case's shape, so use it at shapes where that fits (the ``check-triton`` preset: T <= 4k, B = 1, H = 4).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import torch

from ratbench import impls
from ratbench.bench import cases as C
from ratbench.bench.accuracy import AccuracyResult
from ratbench.bench.sweep import Case
from ratbench.impls.base import Implementation

log = logging.getLogger(__name__)

RULES = ("tolerance", "fa-rule")
#: relative L2 bound per dtype that is judged by it (no low-precision reference to compare with)
REL_L2: dict[str, float] = {"float32": 1e-4, "float64": 1e-10}
ZERO_REF_ATOL = 1e-4
SLACK = 1e-6


@dataclass(frozen=True)
class TensorVerdict:
    """One compared tensor: our max abs error, the low-precision reference's, our relative L2 error,
    the bound applied to the measure the rule uses (``measure``) and the outcome."""

    name: str
    err: float
    low_err: float | None
    rel_l2: float | None
    bound: float
    measure: str
    finite: bool
    ok: bool

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FAResult:
    ok: bool
    tensors: list[TensorVerdict] = field(default_factory=list)

    @property
    def max_abs_err(self) -> float | None:
        return self.tensors[0].err if self.tensors else None

    @property
    def grad_max_abs_err(self) -> float | None:
        g = [t.err for t in self.tensors[1:]]
        return max(g) if g else None

    @property
    def tol(self) -> float | None:
        return self.tensors[0].bound if self.tensors else None

    def detail(self, case: Case) -> str | None:
        bad = [t for t in self.tensors if not t.ok]
        if not bad:
            return None
        what = "; ".join(f"{t.name}: {t.measure} {t.err if t.measure != 'rel_l2' else t.rel_l2:.3g} > {t.bound:.3g}"
                         + ("" if t.finite else " (not finite)") for t in bad)
        return (f"fails the FlashAttention rule against {case.family}/reference (float64) at B={case.batch} "
                f"T={case.seq_len} H={case.heads}: {what}")

    def details(self) -> dict[str, object]:
        return {"accuracy_rule": "fa-rule", "tensors": {t.name: t.to_dict() for t in self.tensors}}

    def as_accuracy(self, case: Case) -> AccuracyResult:
        """In the form the runner records (bench.accuracy.AccuracyResult, per-tensor errors in ``details``)."""
        return AccuracyResult(ok=self.ok, max_abs_err=self.max_abs_err, grad_max_abs_err=self.grad_max_abs_err,
                              tol=self.tol, detail=self.detail(case), details=self.details())


def judge(name: str, x: torch.Tensor, ref64: torch.Tensor, low: torch.Tensor | None, dtype: str) -> TensorVerdict:
    """The rule for one tensor (module docstring). ``low`` is needed for bf16 / fp16 only."""
    if x.shape != ref64.shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, the reference {tuple(ref64.shape)}")
    xd, rd = x.detach().double(), ref64.detach().double()
    finite = bool(torch.isfinite(xd).all())
    diff = (xd - rd).nan_to_num(nan=math.inf)
    err = diff.abs().max().item() if diff.numel() else 0.0
    rnorm = rd.norm().item()
    rel = diff.norm().item() / rnorm if rnorm > 0 else None
    low_err = None
    if low is not None:
        low_err = (low.detach().double() - rd).nan_to_num(nan=math.inf).abs().max().item() if rd.numel() else 0.0
    if rd.numel() and rd.abs().max().item() == 0.0:
        measure, bound, value = "max_abs", ZERO_REF_ATOL, err
    elif dtype in REL_L2:
        measure, bound, value = "rel_l2", REL_L2[dtype], (rel if rel is not None else err)
    else:
        if low_err is None:
            raise ValueError(f"the FlashAttention rule for {dtype} needs the {dtype} reference of {name}")
        measure, bound, value = "max_abs", 2 * low_err + SLACK, err
    ok = finite and value <= bound
    return TensorVerdict(name, err, low_err, rel, bound, measure, finite, ok)


# ----- the same reference math in the case's dtype --------------------------------------------------
def low_precision_forward(case: Case, x: dict[str, torch.Tensor]) -> torch.Tensor:
    """The family reference's math run in the inputs' dtype (the references themselves upcast to float32)."""
    q, k, v = x["q"], x["k"], x["v"]
    T, D = q.shape[1], q.shape[-1]
    scale = D ** -0.5
    fam = case.family
    if fam in ("full", "swa"):
        from ratbench.impls.full.reference import attention, causal_mask
        from ratbench.impls.swa.reference import window_mask

        mask = causal_mask(T, q.device) if fam == "full" else window_mask(T, case.window, q.device)  # type: ignore[arg-type]
        return attention(q, k, v, mask, scale)
    if fam == "rat":
        from ratbench.impls.rat.reference import rat_attention

        return rat_attention(q, k, v, x["f"], case.chunk_size, True, scale)[0]  # type: ignore[arg-type]
    if fam == "linear":
        from ratbench.impls.linear.reference import decay_matrix

        decay = x.get("decay")
        B, _, H, _ = q.shape
        M = decay_matrix(decay.float() if decay is not None else None, B, T, H, q.device, torch.float32).to(q.dtype)
        s = torch.einsum("bthd,bshd->bhts", q, k) * M
        return scale * torch.einsum("bhts,bshd->bthd", s, v)
    raise ValueError(f"no low-precision reference for family {fam!r}")


def _poison(case: Case, numel: int) -> None:
    """CUDA: fill that much of the caching allocator's free memory with NaN, so that outputs a kernel leaves
    unwritten show up as NaN (not finite) instead of stale values."""
    if case.device == "cuda":
        torch.cuda.empty_cache()
        junk = torch.full((numel,), float("nan"), device="cuda", dtype=torch.float32)
        del junk


def _outputs(impl: Implementation, case: Case, x: dict[str, torch.Tensor], g: torch.Tensor | None,
             fn=None) -> list[torch.Tensor]:
    """[output] (+ [d/dx for x in inputs] when ``g`` is given) of ``impl`` (or ``fn(x)``) on fresh leaves."""
    leaves = {n: t.detach().clone().requires_grad_(g is not None) for n, t in x.items()}
    if g is None:
        with torch.no_grad():
            return [(fn(leaves) if fn else C.forward(impl, case, leaves)).detach()]
    y = fn(leaves) if fn else C.forward(impl, case, leaves)
    grads = torch.autograd.grad(y, list(leaves.values()), g.to(y.dtype))
    return [y.detach()] + [t.detach() for t in grads]


def check_row(impl: Implementation, case: Case, seed: int = 1234) -> AccuracyResult:
    """What the runner records for ``accuracy_rule = "fa-rule"``: the family reference itself is not checked."""
    if impl.is_reference:
        return AccuracyResult(ok=None, detail="the family reference itself")
    return check(impl, case, seed).as_accuracy(case)


def check(impl: Implementation, case: Case, seed: int = 1234) -> FAResult:
    """The FlashAttention rule for ``impl`` at ``case``'s own shape (module docstring)."""
    ref = impls.get(f"{case.family}/reference")
    B, T, H = case.batch, case.seq_len, case.heads
    ref_case = dataclasses.replace(case, dtype="float64")
    x = C.make_inputs(case, B, T, H, seed=seed)
    x64 = {n: t.double() for n, t in x.items()}
    low_fn = (lambda xs: low_precision_forward(case, xs)) if case.dtype not in REL_L2 else None
    if case.mode == "train":
        g = torch.randn(x["q"].shape, generator=torch.Generator(device=case.device).manual_seed(seed + 1),
                        device=case.device, dtype=torch.float32).to(x["q"].dtype)
        names = ["o"] + [f"d{n}" for n in x]
        r64 = _outputs(ref, ref_case, x64, g.double())
        low = _outputs(impl, case, x, g, fn=low_fn) if low_fn else [None] * len(names)
        _poison(case, 16 * x["q"].numel())
        ours = _outputs(impl, case, x, g)
    else:
        names = ["o"]
        r64 = _outputs(ref, ref_case, x64, None)
        low = _outputs(impl, case, x, None, fn=low_fn) if low_fn else [None]
        _poison(case, 16 * x["q"].numel())
        with torch.no_grad():
            if case.mode == "prefill":
                if impl.supports_decode:
                    y = C.prefill(impl, case, C.init_state(impl, case, B, T), x)
                else:
                    y = C.forward(impl, case, x)
            else:  # decode: L + 2 steps cross a chunk boundary
                n = min(T - 1, (case.chunk_size or 1) + 2) if T > 1 else 0
                T0 = T - n
                st = C.init_state(impl, case, B, T)
                outs = [C.prefill(impl, case, st, {k: t[:, :T0] for k, t in x.items()})] if T0 else []
                for t in range(T0, T):
                    outs.append(C.step(impl, case, st, {k: v[:, t] for k, v in x.items()})[:, None])
                y = torch.cat(outs, dim=1)
        ours = [y]
    verdicts = [judge(n, a, r, lo, case.dtype) for n, a, r, lo in zip(names, ours, r64, low)]
    for t in verdicts:
        if not t.ok:
            log.info("%s: %s fails the FlashAttention rule (%s)", case.impl, t.name, t)
    return FAResult(ok=all(t.ok for t in verdicts), tensors=verdicts)
