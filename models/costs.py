"""Cost model of the layers' dense parts, next to the layers (models/layers.py): the projections.

A layer call's FLOPs = projection FLOPs (this module) + the mixer op's FLOPs (bench/costs.py, one
formula per family, the FlashAttention convention). Conventions:
- a multiply-add is 2 FLOPs; a Linear Dm -> N over n tokens is 2 * n * Dm * N;
- train = forward + backward; the backward of a Linear is two matmuls of the forward's size (input
  gradient and weight gradient), so projections count 3 x forward in train (the mixer op counts 3.5 x,
  bench.costs.TRAIN_FACTOR);
- norms, RoPE, gates and residuals are elementwise and not counted (a few FLOPs per element of Dm
  against thousands per token in the projections);
- minimum bytes of the dense part: every weight read once (train: read twice and its gradient written
  once), the layer input read and its output written (train: and their gradients).
"""
from __future__ import annotations

#: backward of a Linear = 2 x its forward (input gradient + weight gradient)
PROJECTION_TRAIN_FACTOR = 3.0


def projection_out_features(kind: str, d_model: int, heads: int, head_dim: int, *, groups: int = 2,
                            linear_decay: bool = True, ffn_mult: int = 4) -> tuple[int, int]:
    """(in_proj output features, out_proj input features) of a layer of ``kind``; both projections take or
    give d_model on the other side. ffn: (fc1 out, fc2 in) = (mult * Dm, mult * Dm)."""
    inner = heads * head_dim
    if kind in ("attention", "swa"):
        return 3 * inner, inner  # fused QKV, out_proj
    if kind == "linear":
        return 3 * inner + (heads if linear_decay else 0), inner
    if kind in ("rat", "rnn"):
        return 3 * d_model + 2 * groups * head_dim, d_model  # z, v, g, q, k; out_proj
    if kind == "ffn":
        return ffn_mult * d_model, ffn_mult * d_model
    raise ValueError(f"no projection cost for layer kind {kind!r}")


def projection_flops(kind: str, tokens: int, d_model: int, heads: int, head_dim: int, *, groups: int = 2,
                     linear_decay: bool = True, ffn_mult: int = 4) -> float:
    """Forward FLOPs of the projections of one layer over ``tokens`` tokens (B * T, or B for a decode step)."""
    n_in, n_out = projection_out_features(kind, d_model, heads, head_dim, groups=groups, linear_decay=linear_decay,
                                          ffn_mult=ffn_mult)
    return 2.0 * tokens * d_model * (n_in + n_out)


def projection_weight_elements(kind: str, d_model: int, heads: int, head_dim: int, *, groups: int = 2,
                               linear_decay: bool = True, ffn_mult: int = 4) -> int:
    n_in, n_out = projection_out_features(kind, d_model, heads, head_dim, groups=groups, linear_decay=linear_decay,
                                          ffn_mult=ffn_mult)
    return d_model * (n_in + n_out)


def layer_flops(kind: str, mode: str, batch: int, seq_len: int, d_model: int, heads: int, head_dim: int,
                mixer_flops: float, *, groups: int = 2, linear_decay: bool = True) -> float:
    """FLOPs of one timed layer call: projections for the tokens the call processes (train, prefill: B * T;
    decode: B) times 3 in train, plus ``mixer_flops`` (the op's FLOPs for the same mode, train already
    including its backward)."""
    tokens = batch if mode == "decode" else batch * seq_len
    proj = projection_flops(kind, tokens, d_model, heads, head_dim, groups=groups, linear_decay=linear_decay)
    return (PROJECTION_TRAIN_FACTOR if mode == "train" else 1.0) * proj + mixer_flops


def layer_dense_bytes(kind: str, mode: str, batch: int, seq_len: int, d_model: int, heads: int, head_dim: int,
                      weight_bytes: int, act_bytes: int, *, groups: int = 2, linear_decay: bool = True) -> float:
    """Minimum bytes of the dense part of one layer call (module docstring): weights in ``weight_bytes``
    per element (float32 under autocast, the model dtype in decode), activations in ``act_bytes``."""
    w = projection_weight_elements(kind, d_model, heads, head_dim, groups=groups, linear_decay=linear_decay)
    tokens = batch if mode == "decode" else batch * seq_len
    x = tokens * d_model * act_bytes
    if mode == "train":
        return 3.0 * w * weight_bytes + 4.0 * x  # weights twice + gradient; x, out, d_out, d_x
    return float(w * weight_bytes + 2 * x)
