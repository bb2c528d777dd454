"""The query-side passes of the RAT backward (docs/rat-spec.md, op step 3): Delta, RoPE(q) and dq.

Two backward paths ship (impls.rat.triton.RATTritonConfig.backward):
  "dq_first" (16-bit inputs): bwd_dq_pre_kernel first (Delta, RoPE(q) and dq in one pass), then the dK/dV
             kernel (backward_dkv.bwd_dkv_early_kernel), then the backward scan;
  "plain" (float32 inputs): bwd_pre_kernel (Delta, RoPE(q)), backward_dkv.bwd_dkv_kernel, bwd_dq_kernel,
             then the backward scan.
bwd_pre_kernel     grid (ceil(T / BM), B*H), BM rows: Delta = rowsum(dO * o) (float32) and RoPE_c(q) in the
                   input dtype, (B*H, T, D) (what the dK/dV kernels read).
bwd_dq_kernel      grid (ceil(T / BM), B*H), the longest rows first; BM query rows, chunk ends in blocks of BN
                   (impls/attention_core.dq_inner: unmasked blocks, then the masked ones), then the self term:
                   dq = RoPE_c^T(scale * (sum_j dS_tj K_j + dS_t,self RoPE_c(kt_t))).
bwd_dq_pre_kernel  bwd_pre_kernel and bwd_dq_kernel in one launch (same grid and tiles): Delta, RoPE_c(q) stored,
                   the self term formed before the key loop (it starts the dq accumulator), then dq_inner.
The self term's gradients of kt and vt are the backward scan's (scan.py). Logits in base 2, lse base 2.
Math: FlashAttention-2's backward (Dao 2023): P = exp2(S scale2 - lse), dS = P (dP - Delta),
Delta = rowsum(dO * o); RoPE's transpose rotates dq back.
"""
from __future__ import annotations

import triton
import triton.language as tl

# the flash-attention dq loop is the core shared with full/swa triton
from ratbench.impls.attention_core import dq_inner
from ratbench.impls.rat.kernels.common import _rope, _rope_at, _rope_t


@triton.jit
def bwd_pre_kernel(
    Q, O, DO, COS, SIN, DELTA, QR,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H,
    L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid * BM + tl.arange(0, BM)
    valid = rows < T
    vm = valid[:, None]
    offs_d = tl.arange(0, HALF)
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + offs_d[None, :]
    o1 = tl.load(O + optr, mask=vm, other=0.0).to(tl.float32)
    o2 = tl.load(O + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    do1 = tl.load(DO + optr, mask=vm, other=0.0).to(tl.float32)
    do2 = tl.load(DO + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    tl.store(DELTA + bh.to(tl.int64) * T + rows, tl.sum(o1 * do1 + o2 * do2, 1), mask=valid)
    qptr = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + rows.to(tl.int64)[:, None] * s_t + offs_d[None, :]
    q1 = tl.load(Q + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Q + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        q1, q2 = _rope_at(q1, q2, COS, SIN, rows // L, offs_d, vm, HALF)
    rptr = bh.to(tl.int64) * T * 2 * HALF + rows.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(QR + rptr, q1.to(QR.dtype.element_ty), mask=vm)
    tl.store(QR + rptr + HALF, q2.to(QR.dtype.element_ty), mask=vm)


@triton.jit
def bwd_dq_kernel(
    Q, KTR, VT, DO, COS, SIN, KE, VE, LSE, DELTA, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, PREC: tl.constexpr,
):
    """dq = RoPE_c^T(scale * (sum_j dS_tj K_j + dS_t,self kt_t)). KTR, VT, DO, DQ share the strides o_*;
    Q has s_*. The self term is added after the loop (its gradients of kt, vt are bwd_scan_kernel's)."""
    pid = tl.num_programs(0) - 1 - tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    offs_d = tl.arange(0, HALF)
    t0 = pid * BM
    rows = t0 + tl.arange(0, BM)
    valid = rows < T
    vm = valid[:, None]
    # scalar 64-bit tile bases, 32-bit offsets inside the tile (fewer live registers than 64-bit offsets)
    r = tl.arange(0, BM)
    Qt = Q + (b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    crow = rows // L
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        tptr = crow[:, None] * HALF + offs_d[None, :]
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        q1, q2 = _rope(q1, q2, cos, sin)
    qb1 = q1.to(KE.dtype.element_ty)
    qb2 = q2.to(KE.dtype.element_ty)
    db1 = tl.load(DO + o_base + optr, mask=vm, other=0.0)
    db2 = tl.load(DO + o_base + optr + HALF, mask=vm, other=0.0)
    lse = tl.load(LSE + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
    delta = tl.load(DELTA + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
    dq1 = tl.zeros([BM, HALF], tl.float32)
    dq2 = tl.zeros([BM, HALF], tl.float32)
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    koff = tl.arange(0, BN)[:, None] * e_c + offs_d[None, :]
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, 0,
                        lo, scale2, BN, HALF, False, PREC, False)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, lo,
                        hi, scale2, BN, HALF, True, PREC, False)
    # self term (q is re-read and re-rotated here: not kept live in float32 through the loop)
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        q1, q2 = _rope(q1, q2, cos, sin)
    kr1 = tl.load(KTR + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    kr2 = tl.load(KTR + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
    vt1 = tl.load(VT + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    vt2 = tl.load(VT + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    ds_s = p_s * (tl.sum(db1.to(tl.float32) * vt1 + db2.to(tl.float32) * vt2, 1) - delta)
    dq1 = (dq1 + ds_s[:, None] * kr1) * scale
    dq2 = (dq2 + ds_s[:, None] * kr2) * scale
    if ROPE:
        dq1, dq2 = _rope_t(dq1, dq2, cos, sin)
    tl.store(DQ + o_base + optr, dq1.to(DQ.dtype.element_ty), mask=vm)
    tl.store(DQ + o_base + optr + HALF, dq2.to(DQ.dtype.element_ty), mask=vm)


@triton.jit
def bwd_dq_pre_kernel(
    Q, O, KTR, VT, DO, COS, SIN, KE, VE, LSE, DELTA, QR, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, PREC: tl.constexpr,
):
    """bwd_pre_kernel and bwd_dq_kernel in one launch, run before the dK/dV kernel. Grid (ceil(T / BM), B*H),
    longest rows first (as bwd_dq_kernel). Per BM query rows: Delta = rowsum(dO * o) (float32; written for
    the dK/dV kernel and the backward scan, and used here), RoPE_c(q) (written to QR, (B*H, T, D) in the
    input dtype, for the dK/dV kernel), then dq = RoPE_c^T(scale * (dS_t,self kt_t + sum_j dS_tj K_j)).
    The self term is formed before the key loop and starts the dq accumulator, so q, kt, vt are read once
    (bwd_dq_kernel re-reads q after the loop). O, KTR, VT, DO, DQ share the strides o_*; Q has s_*.
    Math: FlashAttention-2's backward (Dao 2023), dS = P (dP - Delta); the key loop is attention_core.dq_inner."""
    pid = tl.num_programs(0) - 1 - tl.program_id(0)  # longest rows first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    offs_d = tl.arange(0, HALF)
    t0 = pid * BM
    rows = t0 + tl.arange(0, BM)
    valid = rows < T
    vm = valid[:, None]
    # scalar 64-bit tile bases, 32-bit offsets inside the tile
    r = tl.arange(0, BM)
    Qt = Q + (b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    r_base = bh.to(tl.int64) * T
    crow = rows // L
    # Delta = rowsum(dO * o) (dO stays live in the input dtype for the key loop; o is dead after this)
    db1 = tl.load(DO + o_base + optr, mask=vm, other=0.0)
    db2 = tl.load(DO + o_base + optr + HALF, mask=vm, other=0.0)
    o1 = tl.load(O + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    o2 = tl.load(O + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    delta = tl.sum(o1 * db1.to(tl.float32) + o2 * db2.to(tl.float32), 1)
    tl.store(DELTA + r_base + rows, delta, mask=valid)
    # RoPE'd q: float32 for the self term, input dtype for the products and for QR
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        tptr = crow[:, None] * HALF + offs_d[None, :]
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        q1, q2 = _rope(q1, q2, cos, sin)
    qb1 = q1.to(KE.dtype.element_ty)
    qb2 = q2.to(KE.dtype.element_ty)
    rptr = (r_base + t0) * (2 * HALF) + (r[:, None] * (2 * HALF) + offs_d[None, :])
    tl.store(QR + rptr, qb1.to(QR.dtype.element_ty), mask=vm)
    tl.store(QR + rptr + HALF, qb2.to(QR.dtype.element_ty), mask=vm)
    # self term: p_s = exp2(q_r . RoPE(kt) scale2 - lse), dS_s = p_s (dO . vt - Delta); dq starts at dS_s RoPE(kt)
    lse = tl.load(LSE + r_base + rows, mask=valid, other=0.0)
    kr1 = tl.load(KTR + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    kr2 = tl.load(KTR + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
    vt1 = tl.load(VT + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    vt2 = tl.load(VT + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    ds_s = p_s * (tl.sum(db1.to(tl.float32) * vt1 + db2.to(tl.float32) * vt2, 1) - delta)
    dq1 = ds_s[:, None] * kr1
    dq2 = ds_s[:, None] * kr2
    # chunk ends j < c(t): unmasked blocks, then the few that need the mask (as bwd_dq_kernel)
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    koff = tl.arange(0, BN)[:, None] * e_c + offs_d[None, :]
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, 0,
                        lo, scale2, BN, HALF, False, PREC, False)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, lo,
                        hi, scale2, BN, HALF, True, PREC, False)
    dq1 = dq1 * scale
    dq2 = dq2 * scale
    if ROPE:  # the tables again (not kept live through the loop)
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        dq1, dq2 = _rope_t(dq1, dq2, cos, sin)
    tl.store(DQ + o_base + optr, dq1.to(DQ.dtype.element_ty), mask=vm)
    tl.store(DQ + o_base + optr + HALF, dq2.to(DQ.dtype.element_ty), mask=vm)
