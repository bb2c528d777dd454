"""One declaration per attention family: what the harness needs to know to sweep, run, check and cost it.

A family (full, swa, linear, rat, or one registered from outside the package) is a ``FamilySpec``:
its parameters (how a sweep expands them), its inputs and their shapes, the modes it has, how forward,
init_state, prefill and step are called, what it refuses, its float64 reference and its cost model.
bench/ (sweep, cases, accuracy, costs, levels, static gate) looks the family up here and calls the
declaration; it never branches on a family's name.

    from ratbench.impls.spec import FamilyParam, FamilySpec, register_family
    register_family(FamilySpec(name="mine", forward=..., cost="mypkg.costs:mine_cost", ...))
    impls.register("mine/reference", "mypkg.mine:MineReference")

Declarations hold plain functions, not bench objects: ``cost`` and ``stage_cost`` are "module:function"
strings imported when first used (as the implementation registry's targets), so impls/ never imports bench/.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

#: the modes a case can have (bench.sweep.MODES is this tuple)
MODES = ("train", "prefill", "decode")
#: the Case fields that hold the built-in families' parameters; any other parameter lives in
#: Case.family_params and prints as "name=value" in case keys and labels
CASE_FIELDS = ("chunk_size", "window", "decay")

Params = Mapping[str, Any]
#: randn(shape) -> a float32 standard-normal tensor on the case's device (bench.cases draws it from the
#: case's seeded generator; the static gate passes empty meta tensors)
Randn = Callable[[tuple[int, ...]], torch.Tensor]


@dataclass(frozen=True)
class FamilyParam:
    """One family parameter: a keyword of forward (and init_state when ``state`` is set).

    name         the keyword, e.g. "chunk_size"; one of CASE_FIELDS lives in that Case field (keys and
                 labels as before: "L16", "L=16"), any other in Case.family_params ("name=value")
    sweep_field  the SweepSpec list with its values ("chunk_sizes"); None: SweepSpec.family_params[name],
                 else ``default``
    layer_field  a SweepSpec list that overrides sweep_field at layer level when set ("layer_chunk_sizes")
    state        passed to init_state as well as to forward
    parse        reads one CLI value ("16", "yes"); used by ``run_bench.py --param name=v1,v2``
    """

    name: str
    sweep_field: str | None = None
    layer_field: str | None = None
    default: tuple[Any, ...] = ()
    state: bool = False
    parse: Callable[[str], Any] = int

    def values(self, spec: Any, *, layer: bool = False) -> list[Any]:
        """The values a sweep spec gives this parameter (op level, or layer level with ``layer``)."""
        if layer and self.layer_field and getattr(spec, self.layer_field, None):
            return list(getattr(spec, self.layer_field))
        if self.sweep_field is not None:
            return list(getattr(spec, self.sweep_field))
        extra = getattr(spec, "family_params", None) or {}
        return list(extra.get(self.name, self.default))


def _no_extra(shape: tuple[int, ...], params: Params, randn: Randn, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {}


def _no_args(x: Mapping[str, torch.Tensor]) -> tuple[Any, ...]:
    return ()


def _no_problem(seq_len: int, head_dim: int, params: Params) -> str | None:
    return None


@dataclass(frozen=True)
class FamilySpec:
    """The declaration of one attention family (module docstring).

    name            the family, the "<family>" of "<family>/<impl>" registry names
    params          its parameters (FamilyParam), in the order a sweep nests them
    inputs          the op's (B, T, H, D) inputs, q, k, v first (one token: (B, H, D))
    head_inputs     inputs of shape (B, T, H) (one token: (B, H)), e.g. linear's decay
    extra_inputs    (shape, params, randn, dtype) -> the inputs beyond q, k, v, drawn after them from randn
    forward         (impl, x, params) -> output: one forward call with the case's parameters
    decode_args     (x) -> what prefill and step take after q, k, v
    modes           the modes the family has; a case of another mode is 'unsupported'
    problem         (seq_len, head_dim, params) -> why the family refuses a configuration, or None
    cost            "module:function", Case -> bench.costs.Cost (FLOPs and minimum bytes of one timed call)
    stage_cost      "module:function", Case -> {stage: Cost} for `run_bench.py profile`, or None
    reference       the registry name of the float64 oracle (default "<name>/reference")
    wrap_callable   "module:function", (fn, description, devices) -> an implementation class that calls a
                    plain function of the user's (bench.api.register_callable), or None: not offered
    """

    name: str
    forward: Callable[[Any, Mapping[str, torch.Tensor], Params], torch.Tensor]
    cost: str
    description: str = ""
    params: tuple[FamilyParam, ...] = ()
    inputs: tuple[str, ...] = ("q", "k", "v")
    head_inputs: tuple[str, ...] = ()
    extra_inputs: Callable[[tuple[int, ...], Params, Randn, torch.dtype], dict[str, torch.Tensor]] = _no_extra
    decode_args: Callable[[Mapping[str, torch.Tensor]], tuple[Any, ...]] = _no_args
    modes: tuple[str, ...] = MODES
    problem: Callable[[int, int, Params], str | None] = _no_problem
    stage_cost: str | None = None
    reference: str = ""
    wrap_callable: str | None = None
    _resolved: dict[str, Callable[..., Any]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "+" in self.name:
            raise ValueError(f"a family name is a non-empty word without '/' or '+', got {self.name!r}")
        if self.inputs[:3] != ("q", "k", "v"):
            raise ValueError(f"family {self.name!r}: inputs must start with q, k, v, got {self.inputs}")
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"family {self.name!r}: modes must be among {MODES}, got {self.modes}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"family {self.name!r}: parameter names repeat: {names}")
        for target in (self.cost, self.stage_cost):
            if target is not None and ":" not in target:
                raise ValueError(f"family {self.name!r}: cost models are 'module:function', got {target!r}")
        if not self.reference:
            object.__setattr__(self, "reference", f"{self.name}/reference")

    # ----- calling an implementation -----------------------------------------------------------------
    def make_inputs(self, shape: tuple[int, ...], params: Params, randn: Randn,
                    dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """q, k, v (randn(shape) cast to ``dtype``) and the family's other inputs, in that draw order."""
        x = {n: randn(shape).to(dtype) for n in ("q", "k", "v")}
        x.update(self.extra_inputs(shape, params, randn, dtype))
        return x

    def state_kwargs(self, params: Params) -> dict[str, Any]:
        """The keywords of init_state beyond the shapes (the parameters declared with ``state``)."""
        return {p.name: params.get(p.name) for p in self.params if p.state}

    def call_forward(self, impl: Any, x: Mapping[str, torch.Tensor], params: Params) -> torch.Tensor:
        return self.forward(impl, x, params)

    def call_prefill(self, impl: Any, state: Any, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return impl.prefill(state, x["q"], x["k"], x["v"], *self.decode_args(x))

    def call_step(self, impl: Any, state: Any, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return impl.step(state, x["q"], x["k"], x["v"], *self.decode_args(x))

    def refuses(self, mode: str, seq_len: int, head_dim: int, params: Params) -> str | None:
        """Why the family refuses this configuration (an 'unsupported' row), or None."""
        if mode not in self.modes:
            return f"the {self.name} family has no {mode} mode (it has {', '.join(self.modes)})"
        return self.problem(seq_len, head_dim, params)

    # ----- cost model --------------------------------------------------------------------------------
    def _load(self, target: str) -> Callable[..., Any]:
        if target not in self._resolved:
            module, _, fn = target.partition(":")
            self._resolved[target] = getattr(importlib.import_module(module), fn)
        return self._resolved[target]

    def cost_of(self, case: Any) -> Any:
        """FLOPs and minimum bytes of one timed call of an op-level ``case`` (a bench.costs.Cost)."""
        return self._load(self.cost)(case)

    def stage_costs_of(self, case: Any) -> dict[str, Any]:
        """Costs per profile stage, {} when the family declares no stage model."""
        return self._load(self.stage_cost)(case) if self.stage_cost else {}


_FAMILIES: dict[str, FamilySpec] = {}


class UnknownFamilyError(ValueError):
    pass


def register_family(spec: FamilySpec, *, replace: bool = False) -> FamilySpec:
    """Register a family declaration. A name registered twice is an error unless ``replace``."""
    if not isinstance(spec, FamilySpec):
        raise TypeError(f"register_family takes a FamilySpec, got {type(spec).__name__}")
    if spec.name in _FAMILIES and not replace:
        raise ValueError(f"family {spec.name!r} is registered twice")
    _FAMILIES[spec.name] = spec
    return spec


def unregister_family(name: str) -> None:
    """Remove a family declaration (tests that register a temporary family)."""
    _FAMILIES.pop(name, None)


def family(name: str) -> FamilySpec:
    """The declaration of family ``name``; UnknownFamilyError (a ValueError) if none is registered."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise UnknownFamilyError(f"unknown family {name!r}; families are {', '.join(_FAMILIES)}") from None


def families() -> tuple[str, ...]:
    """The registered family names, in registration order."""
    return tuple(_FAMILIES)
