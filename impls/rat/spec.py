"""RAT's declaration (impls/spec.py): one parameter, the chunk size L; a forget gate f = sigmoid(randn) of
q's shape as a fourth input; T must be a multiple of L and the head dim even (chunk-index RoPE)."""
from __future__ import annotations

import torch

from ratbench.impls.spec import FamilyParam, FamilySpec


def _extra_inputs(shape, params, randn, dtype):  # type: ignore[no-untyped-def]
    return {"f": torch.sigmoid(randn(shape)).to(dtype)}


def _forward(impl, x, params):  # type: ignore[no-untyped-def]
    return impl.forward(x["q"], x["k"], x["v"], x["f"], chunk_size=params["chunk_size"])


def _decode_args(x):  # type: ignore[no-untyped-def]
    return (x["f"],)


def _problem(seq_len, head_dim, params):  # type: ignore[no-untyped-def]
    L = params["chunk_size"]
    if seq_len % L:
        return f"seq_len {seq_len} is not a multiple of chunk_size {L}"
    if head_dim % 2:
        return f"RAT's RoPE needs an even head_dim, got {head_dim}"
    return None


SPEC = FamilySpec(
    name="rat",
    description="RAT: chunked gated recurrence + softmax attention over chunk states",
    params=(FamilyParam("chunk_size", sweep_field="chunk_sizes", layer_field="layer_chunk_sizes", state=True),),
    inputs=("q", "k", "v", "f"),
    extra_inputs=_extra_inputs,
    forward=_forward,
    decode_args=_decode_args,
    problem=_problem,
    cost="ratbench.bench.costs:rat_cost",
)
