"""The linear-attention family's declaration (impls/spec.py): one parameter, whether a per-head decay is
given; with it the op takes decay = logsigmoid(randn) / 16, (B, T, H), float32 (float64 for float64 inputs)."""
from __future__ import annotations

import torch

from ratbench.impls.spec import FamilyParam, FamilySpec


def _yes_no(text: str) -> bool:
    table = {"no": False, "off": False, "false": False, "0": False, "yes": True, "on": True, "true": True, "1": True}
    try:
        return table[text.strip().lower()]
    except KeyError:
        raise ValueError(f"cannot read {text!r} as yes/no") from None


def _extra_inputs(shape, params, randn, dtype):  # type: ignore[no-untyped-def]
    if not params.get("decay"):
        return {}
    ddt = torch.float64 if dtype == torch.float64 else torch.float32
    return {"decay": (torch.nn.functional.logsigmoid(randn(shape[:-1])) / 16).to(ddt)}


def _forward(impl, x, params):  # type: ignore[no-untyped-def]
    return impl.forward(x["q"], x["k"], x["v"], decay=x.get("decay"))


def _decode_args(x):  # type: ignore[no-untyped-def]
    return (x.get("decay"),)


SPEC = FamilySpec(
    name="linear",
    description="linear attention, optionally with a scalar per-head decay",
    params=(FamilyParam("decay", sweep_field="decays", parse=_yes_no),),
    head_inputs=("decay",),
    extra_inputs=_extra_inputs,
    forward=_forward,
    decode_args=_decode_args,
    cost="ratbench.bench.costs:linear_cost",
    stage_cost="ratbench.bench.costs:forward_backward_costs",
)
