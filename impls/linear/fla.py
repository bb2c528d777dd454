"""flash-linear-attention (fla-core) as the linear-attention peer, pinned to compute exactly our op:

    S_t = exp(decay_t) S_{t-1} + k_t v_t^T,    o_t = scale * q_t S_t

- no decay: ``fla.ops.linear_attn.chunk_linear_attn(q, k, v, scale=scale, normalize=False)``. In
  fla-core 0.6.0 this is ``chunk_simple_gla`` without a gate: no feature map, no normalisation
  (normalize=False drops the q.cumsum(k) denominator), q multiplied by ``scale`` once.
- decay: ``fla.ops.simple_gla.chunk_simple_gla(q, k, v, g=decay, scale=scale)``; fla's g is the same
  per-(B, T, H) log-gate (its state update is S = exp(g_t) S + k_t v_t^T), passed in float32.
- layout: fla-core 0.6.0 takes [B, T, H, D] only (head_first was removed), the same as ours.
- decode: ``fused_recurrent_linear_attn`` / ``fused_recurrent_simple_gla`` with T = 1, starting from
  and returning the float32 state S (B, H, K, V) (fla's [K, V] state layout = our LinearState.S).

Limits: fla's chunked kernels do not run in Triton's CPU interpreter (they call ``.to()`` on
``range()`` loop indices, plain ints there), so this peer needs a CUDA GPU; its fused recurrent
(decode) kernel does run interpreted. fla refuses the BACKWARD of its gated kernels on Hopper with
triton >= 3.4 and < 3.7.1 (wrong results, fla issue #640): train mode with a decay is then unsupported
(``unsupported_reason(mode='train', decay=True)`` says so, and forward raises before running).
"""
from __future__ import annotations

import torch

from ratbench.impls.base import UnavailableError
from ratbench.impls.linear.base import LinearAttention, LinearState
from ratbench.impls.peer_utils import cuda_capability, has_module


def gated_backward_refusal() -> str | None:
    """fla-core 0.6.0's own condition for refusing gated backward (fla/ops/common/chunk_o.py)."""
    cap = cuda_capability()
    if cap is None or cap[0] != 9:
        return None
    import triton
    from packaging import version

    tv = version.parse(triton.__version__)
    if version.parse("3.4.0") <= tv < version.parse("3.7.1") and not has_module("tilelang"):
        return (f"fla refuses the backward of its gated kernels (chunk_simple_gla with a decay) on Hopper with "
                f"triton {triton.__version__} (needs >= 3.7.1: wrong results with older triton, fla issue #640)")
    return None


class LinearFLA(LinearAttention):
    description = ("fla-core chunk_linear_attn(normalize=False) / chunk_simple_gla(g=decay); "
                   "decode via fused_recurrent kernels")
    requires = ("fla", "einops", "packaging")
    triton = True
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    # fla's kernels: chunk_fwd_kernel_h/_o, chunk_bwd_kernel_dh/_dqkwg/_dv*, chunk_local_cumsum_* (decay),
    # fused_recurrent_fwd_kernel (decode)
    profile_stages = (("decode step", r"fused_recurrent"), ("gate cumsum", r"cumsum"),
                      ("forward", r"chunk\w*fwd"), ("backward", r"chunk\w*bwd"))

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        if device == "cpu":
            return ("fla-core's chunked kernels do not run in Triton's CPU interpreter (they call .to() on "
                    "range() loop indices, plain ints there); needs a CUDA GPU")
        return None

    def unsupported_reason(self, *, mode, device, dtype, head_dim, **params):
        reason = super().unsupported_reason(mode=mode, device=device, dtype=dtype, head_dim=head_dim, **params)
        gated = params.get("decay") is not None and params.get("decay") is not False
        if reason is None and mode == "train" and gated and device == "cuda":
            reason = gated_backward_refusal()
        return reason

    def _chunk(self, q, k, v, decay, scale, final_state: bool):
        if decay is None:
            from fla.ops.linear_attn import chunk_linear_attn

            return chunk_linear_attn(q, k, v, scale=scale, normalize=False, output_final_state=final_state)
        if torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, decay)):
            refusal = gated_backward_refusal() if q.is_cuda else None
            if refusal:
                raise UnavailableError(f"{self.name}: {refusal}")
        from fla.ops.simple_gla import chunk_simple_gla

        return chunk_simple_gla(q, k, v, g=decay.float(), scale=scale, output_final_state=final_state)

    def _forward(self, q, k, v, *, decay, scale):
        return self._chunk(q, k, v, decay, scale, False)[0]

    def _prefill(self, state: LinearState, q, k, v, decay):
        o, S = self._chunk(q, k, v, decay, state.scale, True)
        state.S.copy_(S)
        state.pos = q.shape[1]
        return o

    def _step(self, state: LinearState, q, k, v, decay):
        args = (q[:, None], k[:, None], v[:, None])
        if decay is None:
            from fla.ops.linear_attn import fused_recurrent_linear_attn

            o, S = fused_recurrent_linear_attn(*args, scale=state.scale, initial_state=state.S,
                                               output_final_state=True, normalize=False)
        else:
            from fla.ops.simple_gla import fused_recurrent_simple_gla

            o, S = fused_recurrent_simple_gla(*args, g=decay[:, None].float(), scale=state.scale,
                                              initial_state=state.S, output_final_state=True)
        state.S.copy_(S)
        state.pos += 1
        return o[:, 0].to(q.dtype)
