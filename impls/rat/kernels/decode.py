"""The RAT decode step (docs/rat-spec.md, "Decode"): one token per sequence against the chunk cache.

step_kernel  grid (B*H, SPLITS), one launch, CUDA-graph capturable. Per (b, h): the running state update
             kt = f kt + (1 - f) k, vt = f vt + (1 - f) v (float32; reset at a chunk start), slot c of the
             cache <- RoPE_c(kt), vt, then one softmax of RoPE_c(q) over slots 0..c-1 (finished chunks) and
             the self term (the running state, slot c): split s attends over slots [s n, min((s+1) n, c)) in
             steps of BN slots (impls/attention_core.decode_inner, CUDA cores: one query per program).
             With SPLITS > 1 each split writes (m, l, acc) to a float32 workspace and the last to finish
             (atomic counter) merges them (impls/attention_core.decode_finish). impls.rat.triton.step_launch
             picks SPLITS, BN and warps (measured on the H200, NOTES.md session 4).
Math: an online softmax over the slots (FlashAttention-2, Dao 2023) and, for splits, the log-sum-exp merge
of partial softmaxes (flash-decoding).
"""
from __future__ import annotations

import triton
import triton.language as tl

# the decode loop and the split merge are the core shared with full/swa triton
from ratbench.impls.attention_core import decode_finish, decode_inner
from ratbench.impls.rat.kernels.common import _rope


@triton.jit
def step_kernel(
    Q, K, V, F, KT, VT, KC, VC, COS, SIN, O, WS, CNT,
    s_b, s_h, o_b, o_h, c_b, c_h, c_c, H, c, reset, n_per_split, scale2,
    HALF: tl.constexpr, BN: tl.constexpr, ROPE: tl.constexpr, SPLITS: tl.constexpr,
):
    """Grid (B*H, SPLITS). Split 0 updates the running state (float32), writes slot c (RoPE'd key,
    value) and owns the self term; split s attends over slots [s n, min((s+1) n, c)). With SPLITS > 1
    each split writes (m, l, acc) to WS and the last one to finish (atomic counter CNT) merges them,
    writes o and re-arms the counter: one launch, no host sync, CUDA-graph capturable."""
    bh = tl.program_id(0)
    sp = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, HALF)
    x_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    c_off = b.to(tl.int64) * c_b + h.to(tl.int64) * c_h
    q1 = tl.load(Q + x_off + offs_d).to(tl.float32)
    q2 = tl.load(Q + x_off + HALF + offs_d).to(tl.float32)
    if ROPE:
        cos = tl.load(COS + c * HALF + offs_d)
        sin = tl.load(SIN + c * HALF + offs_d)
        q1, q2 = _rope(q1, q2, cos, sin)
    # running state (every split computes it, split 0 stores it)
    st = bh.to(tl.int64) * 2 * HALF + offs_d
    keep = 1.0 - reset
    kt1 = tl.load(KT + st) * keep
    kt2 = tl.load(KT + st + HALF) * keep
    vt1 = tl.load(VT + st) * keep
    vt2 = tl.load(VT + st + HALF) * keep
    f1 = tl.load(F + x_off + offs_d).to(tl.float32)
    f2 = tl.load(F + x_off + HALF + offs_d).to(tl.float32)
    kt1 = f1 * kt1 + (1.0 - f1) * tl.load(K + x_off + offs_d).to(tl.float32)
    kt2 = f2 * kt2 + (1.0 - f2) * tl.load(K + x_off + HALF + offs_d).to(tl.float32)
    vt1 = f1 * vt1 + (1.0 - f1) * tl.load(V + x_off + offs_d).to(tl.float32)
    vt2 = f2 * vt2 + (1.0 - f2) * tl.load(V + x_off + HALF + offs_d).to(tl.float32)
    own = sp == 0
    tl.store(KT + st, kt1, mask=own)
    tl.store(KT + st + HALF, kt2, mask=own)
    tl.store(VT + st, vt1, mask=own)
    tl.store(VT + st + HALF, vt2, mask=own)
    if ROPE:
        kr1, kr2 = _rope(kt1, kt2, cos, sin)
    else:
        kr1 = kt1
        kr2 = kt2
    slot = c_off + c * c_c + offs_d
    tl.store(KC + slot, kr1.to(KC.dtype.element_ty), mask=own)
    tl.store(KC + slot + HALF, kr2.to(KC.dtype.element_ty), mask=own)
    tl.store(VC + slot, vt1.to(VC.dtype.element_ty), mask=own)
    tl.store(VC + slot + HALF, vt2.to(VC.dtype.element_ty), mask=own)
    # self term (split 0 only)
    s_self = tl.sum(q1 * kr1 + q2 * kr2, 0) * scale2
    m_i = tl.where(own, s_self, float("-inf"))
    l_i = tl.where(own, 1.0, 0.0)
    acc1 = vt1 * l_i
    acc2 = vt2 * l_i
    lo = sp * n_per_split
    hi = tl.minimum(lo + n_per_split, c)
    acc1, acc2, l_i, m_i = decode_inner(acc1, acc2, l_i, m_i, q1, q2, KC, VC, c_off, c_c, lo, hi, c, scale2,
                                        BN, HALF, False)
    o_ptr = O + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + offs_d
    decode_finish(o_ptr, acc1, acc2, l_i, m_i, WS, CNT, bh, sp, HALF, SPLITS)
