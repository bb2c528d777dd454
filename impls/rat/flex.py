"""RAT as its authors formulate it (the paper's speed baseline), written from docs/rat-spec.md:

1. intra-chunk gated recurrence of keys and values with ONE associative scan over the chunk axis, in
   float32: elements (f, (1-f) k, (1-f) v), combine (a1, b1), (a2, b2) -> (a1 a2, a2 b1 + b2) (the
   first-order linear recurrence x_l = a_l x_{l-1} + b_l; x_{-1} = 0 because every chunk is scanned
   on its own);
2. chunk-index RoPE on q and the scanned keys (impls/rope.py tables, position = t // L);
3. FlexAttention of every query over the chunk-end states K_j, V_j with the block mask
   ``q_idx // L > kv_idx`` (strictly earlier chunks), returning the log-sum-exp;
4. the exact merge with the self term s = scale q.kt[c,l]: with m = max(lse, s),
   y = (e^(lse-m) o_inter + e^(s-m) vt) / (e^(lse-m) + e^(s-m)); chunk 0 has lse = -inf, so y = vt.

The scan's backward is one reverse associative scan with the same combine (ChunkScan below: O(1) extra
memory); torch's own associative_scan backward, which builds an L x L matrix per element, is kept as
``RATFlex(scan_backward="torch")`` for comparison. On CUDA steps 1-4 run as one torch.compile'd graph
(fullgraph, static shapes) and the block mask is built compiled; the mask is cached per (T, L, device) and
T = 131072 never materialises a dense mask. FlexAttention runs in the input dtype (bf16 on the GPU), the
scan, the self term and the merge in float32.
On CUDA the scan is ``associative_scan(combine_mode="pointwise")`` (a Triton scan, the authors' path).
The CPU path runs the SAME function EAGERLY, with nothing compiled by inductor (the block mask included:
impls/peer_utils.py): PyTorch refuses the pointwise scan off CUDA ("all input tensors need to be on
CUDA"), so it uses ``combine_mode="generic"`` (same combine, same math); compiled FlexAttention on the CPU
does not return the log-sum-exp (torch 2.13: "torch.compile on CPU only supports inference and
`return_lse` is not supported yet"), and inductor's C++ flex and block-mask kernels are not trusted on the
CPU anyway (wrong results or compile errors depending on the x86 CPU, issue 14), so flex runs eagerly
there (its unfused path). There is no FlexAttention backward on the CPU, so train mode is CUDA only.

Decode: the chunk cache (post-RoPE chunk-end keys, values) and the running float32 pre-RoPE states;
a step updates the running states, writes slot c and attends over slots 0..c with SDPA (PyTorch's
backend choice). Prefill pads the prompt to a whole chunk with f = 1, k = v = 0 (which leaves the
running state unchanged), so the padded chunk's end state is the prompt's last running state.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch._higher_order_ops import associative_scan
from torch.nn.attention.flex_attention import flex_attention

from ratbench.impls.peer_utils import (
    FLEX_CPU_EAGER_WHY,
    FlexPeer,
    block_mask,
    compile_strict,
    eager_flex,
    flex_compiled_on,
    flex_lse_kwargs,
    sdpa_decode,
    split_flex_lse,
)
from ratbench.impls.rat.base import RAT, RATState
from ratbench.impls.rope import apply_rope, rope_cos_sin

_LSE_KW = flex_lse_kwargs()


def _combine(x, y):
    a1, bk1, bv1 = x
    a2, bk2, bv2 = y
    return a1 * a2, a2 * bk1 + bk2, a2 * bv1 + bv2


class ChunkScan(torch.autograd.Function):
    """kt, vt = the chunked scan of (a, bk, bv) along dim 2 (the position in the chunk), with an O(1)-memory
    backward that is itself one reverse associative scan with the same combine:
        g_l = gk_l + a_{l+1} g_{l+1}   (g_L = 0),   d bk_l = g_l,   d a_l = g_l . kt_{l-1} (+ the same for v).
    torch's built-in associative_scan backward instead materialises an L x L transition matrix per element
    (16x the scanned tensors at L = 16); scan_backward="torch" selects it for comparison."""

    @staticmethod
    def forward(ctx, a, bk, bv, mode: str):
        _, kt, vt = associative_scan(_combine, (a, bk, bv), dim=2, combine_mode=mode)
        ctx.save_for_backward(a, kt, vt)
        ctx.mode = mode
        return kt, vt

    @staticmethod
    def backward(ctx, gk, gv):
        a, kt, vt = ctx.saved_tensors
        gk = torch.zeros_like(kt) if gk is None else gk
        gv = torch.zeros_like(vt) if gv is None else gv
        a_next = F.pad(a[:, :, 1:], (0, 0, 0, 0, 0, 1))  # element l carries a_{l+1}
        _, g_k, g_v = associative_scan(_combine, (a_next, gk, gv), dim=2, reverse=True, combine_mode=ctx.mode)
        prev = (0, 0, 0, 0, 1, 0)  # x_{l-1}, with x_{-1} = 0
        da = g_k * F.pad(kt[:, :, :-1], prev) + g_v * F.pad(vt[:, :, :-1], prev)
        return da, g_k, g_v, None


def chunk_scan(a, bk, bv, mode: str, backward: str):
    if backward == "reverse-scan":
        return ChunkScan.apply(a, bk, bv, mode)
    _, kt, vt = associative_scan(_combine, (a, bk, bv), dim=2, combine_mode=mode)
    return kt, vt


def rat_core(q, k, v, f, cos, sin, bmask, chunk_size: int, scale: float, scan_mode: str, with_state: bool,
             scan_backward: str = "reverse-scan", flex_fn=flex_attention):
    """Steps 1-4 for (B, T, H, D) inputs, T a multiple of chunk_size. cos/sin: (T, D) float32 chunk-index
    tables or None (no RoPE). Returns y (dtype of q), plus (pre-RoPE chunk-end keys, chunk-end values),
    both (B, C, H, D) float32, when with_state. ``flex_fn``: flex_attention (traced into the compiled graph
    on CUDA) or peer_utils.eager_flex (the CPU)."""
    B, T, H, D = q.shape
    L = chunk_size
    C = T // L
    f32 = torch.float32
    a = f.to(f32).reshape(B, C, L, H, D)
    bk = (1 - a) * k.to(f32).reshape(B, C, L, H, D)
    bv = (1 - a) * v.to(f32).reshape(B, C, L, H, D)
    kt, vt = chunk_scan(a, bk, bv, scan_mode, scan_backward)
    kt = kt.reshape(B, T, H, D)
    vt = vt.reshape(B, T, H, D)
    qf = q.to(f32)
    if cos is not None:
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        qf = apply_rope(qf, c, s)
        kr = apply_rope(kt, c, s)
    else:
        kr = kt
    own = scale * (qf * kr).sum(-1)  # (B, T, H): the query's own running state
    K = kr[:, L - 1 :: L]  # (B, C, H, D) chunk-end states
    V = vt[:, L - 1 :: L]
    dt = q.dtype
    res = flex_fn(qf.to(dt).transpose(1, 2), K.to(dt).transpose(1, 2), V.to(dt).transpose(1, 2),
                         block_mask=bmask, scale=scale, **_LSE_KW)
    o, lse = split_flex_lse(res)
    o = o.transpose(1, 2).to(f32)  # (B, T, H, D)
    lse = lse.transpose(1, 2).to(f32)  # (B, T, H)
    m = torch.maximum(lse, own)
    w_inter = torch.exp(lse - m)
    w_own = torch.exp(own - m)
    y = (w_inter[..., None] * o + w_own[..., None] * vt) / (w_inter + w_own)[..., None]
    y = y.to(dt)
    if with_state:
        return y, kt[:, L - 1 :: L], V
    return y


@functools.cache
def _compiled_core():
    return compile_strict(rat_core)


_ROPE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def chunk_rope(T: int, L: int, D: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    key = (T, L, D, str(device))
    if key not in _ROPE:
        _ROPE[key] = rope_cos_sin(torch.arange(T, device=device) // L, D, dtype=torch.float32)
    return _ROPE[key]


_SLOT_ROPE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def slot_rope(n_slots: int, D: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (n_slots, D) float32 for chunk positions 0..n_slots-1 (decode: row c for chunk c)."""
    key = (n_slots, D, str(device))
    if key not in _SLOT_ROPE:
        _SLOT_ROPE[key] = rope_cos_sin(torch.arange(n_slots, device=device), D, dtype=torch.float32)
    return _SLOT_ROPE[key]


class RATFlex(FlexPeer, RAT):
    description = ("the RAT authors' formulation: compiled associative scan (float32; backward = reverse scan) + "
                   "compiled FlexAttention over chunk states (mask q//L > kv, lse) + exact merge with the self term; "
                   "decode via SDPA over the chunk cache. CPU: the same function eager (generic scan, eager flex, "
                   f"block mask without compiling; no inductor: {FLEX_CPU_EAGER_WHY})")
    def __init__(self, scan_backward: str = "reverse-scan") -> None:
        if scan_backward not in ("reverse-scan", "torch"):
            raise ValueError(f"scan_backward must be 'reverse-scan' or 'torch', got {scan_backward!r}")
        self.scan_backward = scan_backward

    def _run(self, q, k, v, f, chunk_size, rope, scale, with_state):
        T, D = q.shape[1], q.shape[3]
        if rope and D % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {D}")
        cos, sin = chunk_rope(T, chunk_size, D, q.device) if rope else (None, None)
        bm = block_mask("chunk", chunk_size, T, T // chunk_size, q.device)
        if flex_compiled_on(q.device):
            return _compiled_core()(q, k, v, f, cos, sin, bm, chunk_size, scale, "pointwise", with_state,
                                    self.scan_backward)
        # CPU: the same function, eager; see the module docstring for why
        return rat_core(q, k, v, f, cos, sin, bm, chunk_size, scale, "generic", with_state, self.scan_backward,
                        flex_fn=eager_flex)

    def _forward(self, q, k, v, f, *, chunk_size, rope, scale):
        return self._run(q, k, v, f, chunk_size, rope, scale, False)

    def _prefill(self, state: RATState, q, k, v, f):
        B, T0, H, D = q.shape
        L = state.chunk_size
        pad = math.ceil(T0 / L) * L - T0
        if pad:  # f = 1, k = v = 0 keeps the running state: the padded chunk ends in the state at T0 - 1
            zeros = q.new_zeros(B, pad, H, D)
            q, k, v = (torch.cat([x, zeros], 1) for x in (q, k, v))
            f = torch.cat([f, torch.ones_like(zeros)], 1)
        with torch.no_grad():
            y, k_end, v_end = self._run(q, k, v, f, L, state.rope, state.scale, True)
            C = k_end.shape[1]
            kc = k_end
            if state.rope:
                cos, sin = slot_rope(state.k_cache.shape[2], D, q.device)
                kc = apply_rope(k_end, cos[None, :C, None], sin[None, :C, None])
            state.k_cache[:, :, :C] = kc.transpose(1, 2).to(state.k_cache.dtype)
            state.v_cache[:, :, :C] = v_end.transpose(1, 2).to(state.v_cache.dtype)
            state.kt.copy_(k_end[:, -1])
            state.vt.copy_(v_end[:, -1])
        state.pos = T0
        return y[:, :T0]

    def _step(self, state: RATState, q, k, v, f):
        sdt = state.kt.dtype
        c, l = divmod(state.pos, state.chunk_size)
        if l == 0:
            state.kt.zero_()
            state.vt.zero_()
        fs = f.to(sdt)
        state.kt.mul_(fs).add_((1 - fs) * k.to(sdt))
        state.vt.mul_(fs).add_((1 - fs) * v.to(sdt))
        key = state.kt
        if state.rope:
            cos, sin = slot_rope(state.k_cache.shape[2], q.shape[-1], q.device)
            cos, sin = cos[c].to(sdt), sin[c].to(sdt)
            key = apply_rope(key, cos, sin)
            q = apply_rope(q.to(sdt), cos, sin).to(q.dtype)
        state.k_cache[:, :, c] = key.to(state.k_cache.dtype)
        state.v_cache[:, :, c] = state.vt.to(state.v_cache.dtype)
        o = sdpa_decode(None, q.to(state.k_cache.dtype), state.k_cache, state.v_cache, c + 1, state.scale, self.name)
        state.pos += 1
        return o.to(q.dtype)
