"""The sliding-window family's declaration (impls/spec.py): one parameter, the window (keys per query)."""
from __future__ import annotations

from ratbench.impls.spec import FamilyParam, FamilySpec


def _forward(impl, x, params):  # type: ignore[no-untyped-def]
    return impl.forward(x["q"], x["k"], x["v"], window=params["window"])


SPEC = FamilySpec(
    name="swa",
    description="causal attention over the last `window` keys",
    params=(FamilyParam("window", sweep_field="windows", state=True),),
    forward=_forward,
    cost="ratbench.bench.costs:swa_cost",
    stage_cost="ratbench.bench.costs:forward_backward_costs",
)
