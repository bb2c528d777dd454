"""The RAT forward attention (docs/rat-spec.md, op step 3): one exact softmax per query over the chunk ends
of the earlier chunks and the query's own running state (the "self term").

fwd_kernel  grid (ceil(T / BM), B*H), the longest rows first. Tiling: BM query rows per program (two
            [BM, HALF] halves), chunk ends in blocks of BN (the flash loop of impls/attention_core.fwd_inner,
            wgmma on sm_90 for the products). Per program:
              q_r = RoPE_c(q) (float32, then the key dtype for the products);
              the self term starts the online softmax: m = s_self = q_r . RoPE_c(kt_t) scale2, l = 1, acc = vt_t;
              the flash loop over the chunk ends j < c(t): unmasked blocks [0, lo), then the few blocks that
              need the j < c(t) mask [lo, hi);
              o = acc / l (input dtype) and, for the backward, lse = m + log2(l) (base 2).
            Logits are base 2 (scale2 = scale * log2(e)). RoPE'd kt and vt come from scan_kernel, the chunk
            ends K_j, V_j (compact (B, H, C, D)) too.
Math: FlashAttention-2's online softmax (Dao 2023) with the self term merged exactly as the first entry.
"""
from __future__ import annotations

import triton
import triton.language as tl

# the flash-attention inner loop is the core shared with full/swa triton
from ratbench.impls.attention_core import fwd_inner
from ratbench.impls.rat.kernels.common import _rope_at


@triton.jit
def fwd_kernel(
    Q, KTR, VT, COS, SIN, KE, VE, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, STORE_LSE: tl.constexpr, PREC: tl.constexpr,
):
    pid = tl.num_programs(0) - 1 - tl.program_id(0)  # longest rows first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    t0 = pid * BM
    rows = t0 + tl.arange(0, BM)
    valid = rows < T
    vm = valid[:, None]
    offs_d = tl.arange(0, HALF)
    # scalar 64-bit tile bases, 32-bit offsets inside the tile (fewer live registers than 64-bit offsets)
    r = tl.arange(0, BM)
    Qt = Q + (b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    crow = rows // L
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        q1, q2 = _rope_at(q1, q2, COS, SIN, crow, offs_d, vm, HALF)
    # self term first (then q in float32, cos, sin and the state are dead during the loop): the row's
    # own running state starts the online softmax with m = s_self, l = 1, acc = vt
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    kr1 = tl.load(KTR + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    kr2 = tl.load(KTR + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    m_i = tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2
    l_i = tl.full([BM], 1.0, tl.float32)
    acc1 = tl.load(VT + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    acc2 = tl.load(VT + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    qb1 = q1.to(KE.dtype.element_ty)
    qb2 = q2.to(KE.dtype.element_ty)
    # keys j < c(t): every row sees j < c(t0); the last row sees j < c(t_last)
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    koff = tl.arange(0, BN)[:, None] * e_c + offs_d[None, :]
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, e_c, crow, crow,
                                     0, lo, scale2, BN, HALF, False, PREC, False)
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, e_c, crow, crow,
                                     lo, hi, scale2, BN, HALF, True, PREC, False)
    inv = 1.0 / l_i
    o1 = acc1 * inv[:, None]
    o2 = acc2 * inv[:, None]
    tl.store(O + o_base + optr, o1.to(O.dtype.element_ty), mask=vm)
    tl.store(O + o_base + optr + HALF, o2.to(O.dtype.element_ty), mask=vm)
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_i + tl.log2(l_i), mask=valid)
