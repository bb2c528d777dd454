"""The full-attention family's declaration (impls/spec.py): causal softmax attention, no parameter."""
from __future__ import annotations

from ratbench.impls.spec import FamilySpec


def _forward(impl, x, params):  # type: ignore[no-untyped-def]
    return impl.forward(x["q"], x["k"], x["v"], causal=True)


SPEC = FamilySpec(
    name="full",
    description="causal softmax attention",
    forward=_forward,
    cost="ratbench.bench.costs:full_cost",
    stage_cost="ratbench.bench.costs:forward_backward_costs",
    wrap_callable="ratbench.impls.full.callable:wrap",
)
