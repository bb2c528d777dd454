"""A family declared outside impls/ (test-only): "toy" attention, registered through the public API only.

    o_t = sum_{s <= t} softmax_s(sharpness * scale * q_t . k_s + bias_s) v_s

q, k, v (B, T, H, D) and a per-key bias (B, T, H); one parameter of its own, ``sharpness`` (an int >= 1, no
Case field of its own: it lives in Case.family_params). Train and prefill only (no decode state). Importing
this module registers the family (so ``run_bench.py --register toy/sdpa=fake_family:ToySDPA`` finds it);
the implementations are registered by the tests (impls.register or --register).
"""
from __future__ import annotations

import torch

from ratbench.bench.costs import TRAIN_FACTOR, Cost
from ratbench.bench.sweep import Case, torch_dtype
from ratbench.impls.base import Implementation
from ratbench.impls.spec import FamilyParam, FamilySpec, register_family
from ratbench.impls.validation import check_qkv, compute_dtype, resolve_scale

#: the toy family refuses seq_len above this (a rule of the family, not of an implementation)
MAX_T = 96


class ToyAttention(Implementation):
    """The toy family's interface: forward(q, k, v, bias, *, sharpness, scale=None)."""

    family = "toy"
    supports_decode = False

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, *, sharpness: int,
                scale: float | None = None) -> torch.Tensor:
        B, T, H, D = check_qkv(q, k, v)
        if bias.shape != (B, T, H):
            raise ValueError(f"bias must have shape {(B, T, H)} (B, T, H), got {tuple(bias.shape)}")
        self.check_runnable(q)
        return self._forward(q, k, v, bias, sharpness=sharpness, scale=sharpness * resolve_scale(scale, D))

    def _forward(self, q, k, v, bias, *, sharpness, scale):  # type: ignore[no-untyped-def]
        raise NotImplementedError


class ToyReference(ToyAttention):
    description = "test-only: the toy family's oracle, plain PyTorch in float32/float64"
    is_reference = True

    def _forward(self, q, k, v, bias, *, sharpness, scale):  # type: ignore[no-untyped-def]
        cdt = compute_dtype(q.dtype)
        qf, kf, vf, bf = (t.to(cdt) for t in (q, k, v, bias))
        s = torch.einsum("bthd,bshd->bhts", qf, kf) * scale + bf.permute(0, 2, 1)[:, :, None, :]
        T = q.shape[1]
        s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(), float("-inf"))
        return torch.einsum("bhts,bshd->bthd", s.softmax(-1), vf).to(q.dtype)


class ToySDPA(ToyAttention):
    description = "test-only: the toy family through torch's scaled_dot_product_attention with a float mask"

    def _forward(self, q, k, v, bias, *, sharpness, scale):  # type: ignore[no-untyped-def]
        T = q.shape[1]
        causal = torch.zeros(T, T, dtype=q.dtype, device=q.device).masked_fill(
            ~torch.ones(T, T, dtype=torch.bool, device=q.device).tril(), float("-inf"))
        mask = causal + bias.permute(0, 2, 1)[:, :, None, :].to(q.dtype)  # (B, H, T, T)
        o = torch.nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                             attn_mask=mask, scale=scale)
        return o.transpose(1, 2)


class ToyNoSharpness(ToySDPA):
    description = "test-only: forgets the sharpness (right at sharpness 1 only): the accuracy check must catch it"

    def _forward(self, q, k, v, bias, *, sharpness, scale):  # type: ignore[no-untyped-def]
        return super()._forward(q, k, v, bias, sharpness=1, scale=scale / sharpness)


# ----- the declaration ----------------------------------------------------------------------------------
def toy_cost(case: Case) -> Cost:
    """Causal attention's FLOPs (2 * B * H * T^2 * D forward) and the inputs read once, the output written."""
    B, T, H, D = case.batch, case.seq_len, case.heads, case.head_dim
    e = torch.empty((), dtype=torch_dtype(case.dtype)).element_size()
    fwd = 2.0 * B * H * T * T * D
    nbytes = (4.0 * B * T * H * D + B * T * H) * e
    return Cost(TRAIN_FACTOR * fwd if case.mode == "train" else fwd, 3.0 * nbytes if case.mode == "train" else nbytes)


def _extra_inputs(shape, params, randn, dtype):  # type: ignore[no-untyped-def]
    return {"bias": (randn(shape[:-1]) / 2).to(dtype)}


def _forward(impl, x, params):  # type: ignore[no-untyped-def]
    return impl.forward(x["q"], x["k"], x["v"], x["bias"], sharpness=params["sharpness"])


def _problem(seq_len, head_dim, params):  # type: ignore[no-untyped-def]
    if params["sharpness"] < 1:
        return f"sharpness must be >= 1, got {params['sharpness']}"
    if seq_len > MAX_T:
        return f"the toy family stops at seq_len {MAX_T}, got {seq_len}"
    return None


SPEC = FamilySpec(
    name="toy",
    description="test-only: causal softmax attention with a sharpness and a per-key bias",
    params=(FamilyParam("sharpness", default=(1,)),),
    head_inputs=("bias",),
    extra_inputs=_extra_inputs,
    forward=_forward,
    modes=("train", "prefill"),
    problem=_problem,
    cost=f"{__name__}:toy_cost",
)

register_family(SPEC, replace=True)
