"""Triton kernels for RAT (../shared/spec/rat.md): fused intra-chunk scan, chunk-index RoPE and a
flash-style softmax over earlier chunks' final states with the self term merged exactly.

Notation: token t = (c, l), c = t // L; kt/vt are the float32 scanned states; K_j = RoPE_j(kt at the
end of chunk j), V_j = vt at the end of chunk j ("chunk ends", compact (B, H, C, D)). Every kernel
works on the head dim in two halves [0, D/2) and [D/2, D): rotate-half RoPE then needs no shuffles.
Logits are kept in base 2 (scale2 = scale * log2(e)); lse is base 2 too.

Kernels (launchers at the bottom):
  chunk_end_kernel  scan of k, v per tile; writes K_j (RoPE'd, input dtype) and V_j, optionally the
                    float32 state entering each BM-row tile (carries, needed when L > BM) and the
                    pre-RoPE float32 state at token T-1 (decode running state).
  fwd_kernel        one program per BM query rows: softmax over chunk ends j < c(t) (flash loop),
                    then the scan of its own rows (self term) merged into the same softmax.
  bwd_pre_kernel    Delta = rowsum(dO * o) and q after RoPE (input dtype) for the dK/dV kernel.
  bwd_dkv_kernel    one program per BN chunk ends: dK_j, dV_j over all queries t with c(t) > j.
  bwd_dq_kernel     one program per row group (BM rows, or one chunk when L > BM, its tiles in
                    reverse): dq (keys + self term), then the reverse scan that turns gradients of
                    kt, vt (self term + chunk ends) into dk, dv, df.
  step_kernel       one decode token: running-state update, slot write, softmax over slots 0..c,
                    optionally split over slots with an in-kernel merge (one launch).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def _lin_combine(a1, bk1, bv1, a2, bk2, bv2):
    # x -> a * x + b, applied left then right: (a1 a2, a2 b1 + b2). With reverse=True Triton feeds
    # (acc from the later side, earlier element), giving z_i = a_i z_{i+1} + b_i.
    return a1 * a2, bk1 * a2 + bk2, bv1 * a2 + bv2


@triton.jit
def _rope(x1, x2, cos, sin):
    return x1 * cos - x2 * sin, x2 * cos + x1 * sin


@triton.jit
def _rope_t(d1, d2, cos, sin):
    # transpose of _rope (the inverse rotation): gradient w.r.t. the un-rotated halves
    return d1 * cos + d2 * sin, d2 * cos - d1 * sin


@triton.jit
def _scan_half(K, V, F, roff, rows, T, ck, cv, offs_d, L: tl.constexpr):
    """kt, vt (float32, [BM, HALF]) for rows `rows` (a tile inside one chunk group) of one half of the
    head dim; ck, cv: state entering the tile (zeros at a chunk start)."""
    m = (rows < T)[:, None]
    ptr = roff[:, None] + offs_d[None, :]
    k = tl.load(K + ptr, mask=m, other=0.0).to(tl.float32)
    v = tl.load(V + ptr, mask=m, other=0.0).to(tl.float32)
    f = tl.load(F + ptr, mask=m, other=1.0).to(tl.float32)
    a = tl.where((rows % L == 0)[:, None], 0.0, f)
    A, zk, zv = tl.associative_scan((a, (1.0 - f) * k, (1.0 - f) * v), 0, _lin_combine)
    return zk + A * ck[None, :], zv + A * cv[None, :]


@triton.jit
def _last_row(x, BM: tl.constexpr):
    r = tl.arange(0, BM)
    return tl.sum(tl.where((r == BM - 1)[:, None], x, 0.0), axis=0)


@triton.jit
def _first_row(x, BM: tl.constexpr):
    r = tl.arange(0, BM)
    return tl.sum(tl.where((r == 0)[:, None], x, 0.0), axis=0)


# ------------------------------------------------------------------------------------------------
# 1. chunk ends
# Grid (row groups, B*H). A row group is BM rows (L <= BM: BM / L whole chunks) or one chunk of L
# rows scanned as L / BM tiles in order, the float32 state carried in registers.
@triton.jit
def chunk_end_kernel(
    K, V, F, COS, SIN, KE, VE, CK, CV, STK, STV,
    s_b, s_t, s_h, e_b, e_h, e_c, T, H, n_tiles,
    L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, ITERS: tl.constexpr,
    ROPE: tl.constexpr, HAS_CARRY: tl.constexpr, WRITE_LAST: tl.constexpr,
):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    offs_d = tl.arange(0, HALF)
    ck1 = tl.zeros([HALF], tl.float32)
    ck2 = tl.zeros([HALF], tl.float32)
    cv1 = tl.zeros([HALF], tl.float32)
    cv2 = tl.zeros([HALF], tl.float32)
    for it in range(ITERS):
        t0 = (pid * ITERS + it) * BM
        rows = t0 + tl.arange(0, BM)
        if HAS_CARRY:
            tile = pid * ITERS + it
            cptr = bh.to(tl.int64) * n_tiles * 2 * HALF + tile * 2 * HALF + offs_d
            inb = tile < n_tiles
            tl.store(CK + cptr, ck1, mask=inb)
            tl.store(CK + cptr + HALF, ck2, mask=inb)
            tl.store(CV + cptr, cv1, mask=inb)
            tl.store(CV + cptr + HALF, cv2, mask=inb)
        roff = in_off + rows.to(tl.int64) * s_t
        kt1, vt1 = _scan_half(K, V, F, roff, rows, T, ck1, cv1, offs_d, L)
        kt2, vt2 = _scan_half(K, V, F, roff, rows, T, ck2, cv2, offs_d + HALF, L)
        ck1 = _last_row(kt1, BM)
        ck2 = _last_row(kt2, BM)
        cv1 = _last_row(vt1, BM)
        cv2 = _last_row(vt2, BM)
        valid = rows < T
        if WRITE_LAST:
            lm = (rows == T - 1)[:, None]
            sptr = bh.to(tl.int64) * 2 * HALF + offs_d[None, :] + 0 * rows[:, None]
            tl.store(STK + sptr, kt1, mask=lm)
            tl.store(STK + sptr + HALF, kt2, mask=lm)
            tl.store(STV + sptr, vt1, mask=lm)
            tl.store(STV + sptr + HALF, vt2, mask=lm)
        end = valid & ((rows % L == L - 1) | (rows == T - 1))
        c = rows // L
        if ROPE:
            tptr = c[:, None] * HALF + offs_d[None, :]
            cos = tl.load(COS + tptr, mask=end[:, None], other=1.0)
            sin = tl.load(SIN + tptr, mask=end[:, None], other=0.0)
            kt1, kt2 = _rope(kt1, kt2, cos, sin)
        eptr = e_off + c.to(tl.int64)[:, None] * e_c + offs_d[None, :]
        em = end[:, None]
        tl.store(KE + eptr, kt1.to(KE.dtype.element_ty), mask=em)
        tl.store(KE + eptr + HALF, kt2.to(KE.dtype.element_ty), mask=em)
        tl.store(VE + eptr, vt1.to(VE.dtype.element_ty), mask=em)
        tl.store(VE + eptr + HALF, vt2.to(VE.dtype.element_ty), mask=em)


# ------------------------------------------------------------------------------------------------
# 2. forward attention
@triton.jit
def _fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE, VE, e_off, e_c, crow, lo, hi, scale2,
               offs_d, BN: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr):
    for start in range(lo, hi, BN):
        offs_n = start + tl.arange(0, BN)
        kptr = e_off + offs_n.to(tl.int64)[:, None] * e_c + offs_d[None, :]
        if MASK:
            nm = (offs_n < hi)[:, None]
            k1 = tl.load(KE + kptr, mask=nm, other=0.0)
            k2 = tl.load(KE + kptr + HALF, mask=nm, other=0.0)
            v1 = tl.load(VE + kptr, mask=nm, other=0.0)
            v2 = tl.load(VE + kptr + HALF, mask=nm, other=0.0)
        else:
            k1 = tl.load(KE + kptr)
            k2 = tl.load(KE + kptr + HALF)
            v1 = tl.load(VE + kptr)
            v2 = tl.load(VE + kptr + HALF)
        s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
        s = tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)
        s = s * scale2
        if MASK:
            s = tl.where(offs_n[None, :] < crow[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_safe)
        p = tl.exp2(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        pb = p.to(v1.dtype)
        acc1 = tl.dot(pb, v1, acc1 * alpha[:, None], input_precision=PREC)
        acc2 = tl.dot(pb, v2, acc2 * alpha[:, None], input_precision=PREC)
        m_i = m_new
    return acc1, acc2, l_i, m_i


@triton.jit
def fwd_kernel(
    Q, K, V, F, COS, SIN, KE, VE, CK, CV, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, n_tiles, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, HAS_CARRY: tl.constexpr, STORE_LSE: tl.constexpr, PREC: tl.constexpr,
):
    pid = tl.num_programs(0) - 1 - tl.program_id(0)  # longest rows first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    t0 = pid * BM
    rows = t0 + tl.arange(0, BM)
    valid = rows < T
    roff = in_off + rows.to(tl.int64) * s_t
    offs_d = tl.arange(0, HALF)
    ptr = roff[:, None] + offs_d[None, :]
    crow = rows // L
    tptr = crow[:, None] * HALF + offs_d[None, :]
    q1 = tl.load(Q + ptr, mask=valid[:, None], other=0.0).to(tl.float32)
    q2 = tl.load(Q + ptr + HALF, mask=valid[:, None], other=0.0).to(tl.float32)
    if ROPE:
        cos = tl.load(COS + tptr, mask=valid[:, None], other=1.0)
        sin = tl.load(SIN + tptr, mask=valid[:, None], other=0.0)
        q1, q2 = _rope(q1, q2, cos, sin)
    qb1 = q1.to(KE.dtype.element_ty)
    qb2 = q2.to(KE.dtype.element_ty)
    # keys j < c(t): all rows see j < t0 // L; rows see up to c(t_last) - 1
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    m_i = tl.full([BM], float("-inf"), tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc1 = tl.zeros([BM, HALF], tl.float32)
    acc2 = tl.zeros([BM, HALF], tl.float32)
    acc1, acc2, l_i, m_i = _fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE, VE, e_off, e_c, crow, 0, lo,
                                      scale2, offs_d, BN, HALF, False, PREC)
    acc1, acc2, l_i, m_i = _fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE, VE, e_off, e_c, crow, lo, hi,
                                      scale2, offs_d, BN, HALF, True, PREC)
    # self term: the scan of this tile (float32), RoPE'd with the row's chunk index
    if HAS_CARRY:
        cptr = bh.to(tl.int64) * n_tiles * 2 * HALF + pid * 2 * HALF + offs_d
        ck1 = tl.load(CK + cptr)
        ck2 = tl.load(CK + cptr + HALF)
        cv1 = tl.load(CV + cptr)
        cv2 = tl.load(CV + cptr + HALF)
    else:
        ck1 = tl.zeros([HALF], tl.float32)
        ck2 = ck1
        cv1 = ck1
        cv2 = ck1
    kt1, vt1 = _scan_half(K, V, F, roff, rows, T, ck1, cv1, offs_d, L)
    kt2, vt2 = _scan_half(K, V, F, roff, rows, T, ck2, cv2, offs_d + HALF, L)
    if ROPE:
        kt1, kt2 = _rope(kt1, kt2, cos, sin)
    s_self = tl.sum(q1 * kt1 + q2 * kt2, 1) * scale2
    m_new = tl.maximum(m_i, s_self)
    alpha = tl.exp2(m_i - m_new)
    p_s = tl.exp2(s_self - m_new)
    l_i = l_i * alpha + p_s
    inv = 1.0 / l_i
    o1 = (acc1 * alpha[:, None] + p_s[:, None] * vt1) * inv[:, None]
    o2 = (acc2 * alpha[:, None] + p_s[:, None] * vt2) * inv[:, None]
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + offs_d[None, :]
    tl.store(O + optr, o1.to(O.dtype.element_ty), mask=valid[:, None])
    tl.store(O + optr + HALF, o2.to(O.dtype.element_ty), mask=valid[:, None])
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_new + tl.log2(l_i), mask=valid)


# ------------------------------------------------------------------------------------------------
# 3. backward
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
        tptr = (rows // L)[:, None] * HALF + offs_d[None, :]
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        q1, q2 = _rope(q1, q2, cos, sin)
    rptr = bh.to(tl.int64) * T * 2 * HALF + rows.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(QR + rptr, q1.to(QR.dtype.element_ty), mask=vm)
    tl.store(QR + rptr + HALF, q2.to(QR.dtype.element_ty), mask=vm)


@triton.jit
def _dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QR, DO, LSE, DELTA, bh, do_off, o_t, offs_n, lo, hi, T,
               scale2, offs_d, L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr,
               PREC: tl.constexpr):
    for t0 in range(lo, hi, BM):
        rows = t0 + tl.arange(0, BM)
        vm = (rows < T)[:, None]
        rptr = bh.to(tl.int64) * T * 2 * HALF + rows.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
        qr1 = tl.load(QR + rptr, mask=vm, other=0.0)
        qr2 = tl.load(QR + rptr + HALF, mask=vm, other=0.0)
        dptr = do_off + rows.to(tl.int64)[:, None] * o_t + offs_d[None, :]
        do1 = tl.load(DO + dptr, mask=vm, other=0.0)
        do2 = tl.load(DO + dptr + HALF, mask=vm, other=0.0)
        lse = tl.load(LSE + bh.to(tl.int64) * T + rows, mask=rows < T, other=float("inf"))
        delta = tl.load(DELTA + bh.to(tl.int64) * T + rows, mask=rows < T, other=0.0)
        st = tl.dot(k1, tl.trans(qr1), input_precision=PREC)
        st = tl.dot(k2, tl.trans(qr2), st, input_precision=PREC)  # [BN, BM]
        pt = tl.exp2(st * scale2 - lse[None, :])
        if MASK:
            pt = tl.where(offs_n[:, None] < (rows // L)[None, :], pt, 0.0)
        pb = pt.to(do1.dtype)
        dv1 = tl.dot(pb, do1, dv1, input_precision=PREC)
        dv2 = tl.dot(pb, do2, dv2, input_precision=PREC)
        dpt = tl.dot(v1, tl.trans(do1), input_precision=PREC)
        dpt = tl.dot(v2, tl.trans(do2), dpt, input_precision=PREC)
        dst = (pt * (dpt - delta[None, :])).to(qr1.dtype)
        dk1 = tl.dot(dst, qr1, dk1, input_precision=PREC)
        dk2 = tl.dot(dst, qr2, dk2, input_precision=PREC)
    return dk1, dk2, dv1, dv2


@triton.jit
def bwd_dkv_kernel(
    QR, DO, LSE, DELTA, KE, VE, DKE, DVE,
    o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, PREC: tl.constexpr,
):
    pid = tl.program_id(0)  # key block 0 has the most queries: it starts first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    j0 = pid * BN
    offs_n = j0 + tl.arange(0, BN)
    nm = (offs_n < C)[:, None]
    offs_d = tl.arange(0, HALF)
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    kptr = e_off + offs_n.to(tl.int64)[:, None] * e_c + offs_d[None, :]
    k1 = tl.load(KE + kptr, mask=nm, other=0.0)
    k2 = tl.load(KE + kptr + HALF, mask=nm, other=0.0)
    v1 = tl.load(VE + kptr, mask=nm, other=0.0)
    v2 = tl.load(VE + kptr + HALF, mask=nm, other=0.0)
    dk1 = tl.zeros([BN, HALF], tl.float32)
    dk2 = tl.zeros([BN, HALF], tl.float32)
    dv1 = tl.zeros([BN, HALF], tl.float32)
    dv2 = tl.zeros([BN, HALF], tl.float32)
    do_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    # rows t see key j iff c(t) > j: masked rows [(j0+1) L, (j0+BN) L), all keys visible after
    lo = (((j0 + 1) * L) // BM) * BM
    mid = tl.minimum((((j0 + BN) * L + BM - 1) // BM) * BM, ((T + BM - 1) // BM) * BM)
    dk1, dk2, dv1, dv2 = _dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QR, DO, LSE, DELTA, bh, do_off, o_t,
                                    offs_n, lo, mid, T, scale2, offs_d, L, BM, HALF, True, PREC)
    dk1, dk2, dv1, dv2 = _dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QR, DO, LSE, DELTA, bh, do_off, o_t,
                                    offs_n, mid, T, T, scale2, offs_d, L, BM, HALF, False, PREC)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)


@triton.jit
def _dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE, VE, e_off, e_c, crow, lo, hi, scale2,
              offs_d, BN: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr):
    for start in range(lo, hi, BN):
        offs_n = start + tl.arange(0, BN)
        kptr = e_off + offs_n.to(tl.int64)[:, None] * e_c + offs_d[None, :]
        if MASK:
            nm = (offs_n < hi)[:, None]
            k1 = tl.load(KE + kptr, mask=nm, other=0.0)
            k2 = tl.load(KE + kptr + HALF, mask=nm, other=0.0)
            v1 = tl.load(VE + kptr, mask=nm, other=0.0)
            v2 = tl.load(VE + kptr + HALF, mask=nm, other=0.0)
        else:
            k1 = tl.load(KE + kptr)
            k2 = tl.load(KE + kptr + HALF)
            v1 = tl.load(VE + kptr)
            v2 = tl.load(VE + kptr + HALF)
        s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
        s = tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)
        p = tl.exp2(s * scale2 - lse[:, None])
        if MASK:
            p = tl.where(offs_n[None, :] < crow[:, None], p, 0.0)
        dp = tl.dot(db1, tl.trans(v1), input_precision=PREC)
        dp = tl.dot(db2, tl.trans(v2), dp, input_precision=PREC)
        ds = (p * (dp - delta[:, None])).to(k1.dtype)
        dq1 = tl.dot(ds, k1, dq1, input_precision=PREC)
        dq2 = tl.dot(ds, k2, dq2, input_precision=PREC)
    return dq1, dq2


@triton.jit
def bwd_dq_kernel(
    Q, K, V, F, DO, COS, SIN, KE, VE, CK, CV, DKE, DVE, LSE, DELTA, DQ, DK, DV, DF,
    s_b, s_t, s_h, o_b, o_t, o_h, g_b, g_t, g_h, e_b, e_h, e_c, T, H, C, n_tiles, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, ITERS: tl.constexpr,
    ROPE: tl.constexpr, HAS_CARRY: tl.constexpr, PREC: tl.constexpr,
):
    pid = tl.num_programs(0) - 1 - tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    do_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    g_off = b.to(tl.int64) * g_b + h.to(tl.int64) * g_h
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    offs_d = tl.arange(0, HALF)
    # gradient of kt, vt at the first row of the tile after this one (same chunk), carried backwards
    gk1 = tl.zeros([HALF], tl.float32)
    gk2 = tl.zeros([HALF], tl.float32)
    gv1 = tl.zeros([HALF], tl.float32)
    gv2 = tl.zeros([HALF], tl.float32)
    for it in range(ITERS):
        tile = pid * ITERS + (ITERS - 1 - it)
        t0 = tile * BM
        rows = t0 + tl.arange(0, BM)
        valid = rows < T
        vm = valid[:, None]
        rows64 = rows.to(tl.int64)
        roff = in_off + rows64 * s_t
        ptr = roff[:, None] + offs_d[None, :]
        crow = rows // L
        tptr = crow[:, None] * HALF + offs_d[None, :]
        # ---- dq over chunk ends j < c(t)
        q1 = tl.load(Q + ptr, mask=vm, other=0.0).to(tl.float32)
        q2 = tl.load(Q + ptr + HALF, mask=vm, other=0.0).to(tl.float32)
        if ROPE:
            cos = tl.load(COS + tptr, mask=vm, other=1.0)
            sin = tl.load(SIN + tptr, mask=vm, other=0.0)
            q1, q2 = _rope(q1, q2, cos, sin)
        dptr = do_off + rows64[:, None] * o_t + offs_d[None, :]
        db1 = tl.load(DO + dptr, mask=vm, other=0.0)
        db2 = tl.load(DO + dptr + HALF, mask=vm, other=0.0)
        lse = tl.load(LSE + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
        delta = tl.load(DELTA + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
        hi = (tl.minimum(t0 + BM, T) - 1) // L
        lo = ((t0 // L) // BN) * BN
        dq1 = tl.zeros([BM, HALF], tl.float32)
        dq2 = tl.zeros([BM, HALF], tl.float32)
        qb1 = q1.to(KE.dtype.element_ty)
        qb2 = q2.to(KE.dtype.element_ty)
        dq1, dq2 = _dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE, VE, e_off, e_c, crow, 0, lo, scale2,
                             offs_d, BN, HALF, False, PREC)
        dq1, dq2 = _dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE, VE, e_off, e_c, crow, lo, hi, scale2,
                             offs_d, BN, HALF, True, PREC)
        # ---- self term: rescan the tile
        if HAS_CARRY:
            cptr = bh.to(tl.int64) * n_tiles * 2 * HALF + tile * 2 * HALF + offs_d
            ck1 = tl.load(CK + cptr)
            ck2 = tl.load(CK + cptr + HALF)
            cv1 = tl.load(CV + cptr)
            cv2 = tl.load(CV + cptr + HALF)
        else:
            ck1 = tl.zeros([HALF], tl.float32)
            ck2 = ck1
            cv1 = ck1
            cv2 = ck1
        kt1, vt1 = _scan_half(K, V, F, roff, rows, T, ck1, cv1, offs_d, L)
        kt2, vt2 = _scan_half(K, V, F, roff, rows, T, ck2, cv2, offs_d + HALF, L)
        if ROPE:
            kr1, kr2 = _rope(kt1, kt2, cos, sin)
        else:
            kr1 = kt1
            kr2 = kt2
        do1 = db1.to(tl.float32)
        do2 = db2.to(tl.float32)
        p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
        ds_s = p_s * (tl.sum(do1 * vt1 + do2 * vt2, 1) - delta)
        dq1 = dq1 * scale + (scale * ds_s)[:, None] * kr1
        dq2 = dq2 * scale + (scale * ds_s)[:, None] * kr2
        dkr1 = (scale * ds_s)[:, None] * q1
        dkr2 = (scale * ds_s)[:, None] * q2
        dvt1 = p_s[:, None] * do1
        dvt2 = p_s[:, None] * do2
        if ROPE:
            dq1, dq2 = _rope_t(dq1, dq2, cos, sin)
        gptr = g_off + rows64[:, None] * g_t + offs_d[None, :]
        tl.store(DQ + gptr, dq1.to(DQ.dtype.element_ty), mask=vm)
        tl.store(DQ + gptr + HALF, dq2.to(DQ.dtype.element_ty), mask=vm)
        # chunk-end rows also carry dK_c, dV_c (gradients w.r.t. the RoPE'd end key and the end value)
        em = (valid & (rows % L == L - 1))[:, None]
        eptr = bh.to(tl.int64) * C * 2 * HALF + crow.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
        dkr1 += tl.load(DKE + eptr, mask=em, other=0.0)
        dkr2 += tl.load(DKE + eptr + HALF, mask=em, other=0.0)
        dvt1 += tl.load(DVE + eptr, mask=em, other=0.0)
        dvt2 += tl.load(DVE + eptr + HALF, mask=em, other=0.0)
        if ROPE:
            dkr1, dkr2 = _rope_t(dkr1, dkr2, cos, sin)
        # ---- reverse scan: g_t = d_t + f_{t+1} g_{t+1} inside a chunk
        nxt = rows + 1
        nm = ((nxt < T) & (nxt % L != 0))[:, None]
        nptr = (roff + s_t)[:, None] + offs_d[None, :]
        fn1 = tl.load(F + nptr, mask=nm, other=0.0).to(tl.float32)
        fn2 = tl.load(F + nptr + HALF, mask=nm, other=0.0).to(tl.float32)
        A1, zk1, zv1 = tl.associative_scan((fn1, dkr1, dvt1), 0, _lin_combine, reverse=True)
        A2, zk2, zv2 = tl.associative_scan((fn2, dkr2, dvt2), 0, _lin_combine, reverse=True)
        zk1 += A1 * gk1[None, :]
        zv1 += A1 * gv1[None, :]
        zk2 += A2 * gk2[None, :]
        zv2 += A2 * gv2[None, :]
        gk1 = _first_row(zk1, BM)
        gk2 = _first_row(zk2, BM)
        gv1 = _first_row(zv1, BM)
        gv2 = _first_row(zv2, BM)
        # ---- dk, dv, df; df needs the state before each row: scan of the rows shifted by one
        k1 = tl.load(K + ptr, mask=vm, other=0.0).to(tl.float32)
        k2 = tl.load(K + ptr + HALF, mask=vm, other=0.0).to(tl.float32)
        v1 = tl.load(V + ptr, mask=vm, other=0.0).to(tl.float32)
        v2 = tl.load(V + ptr + HALF, mask=vm, other=0.0).to(tl.float32)
        f1 = tl.load(F + ptr, mask=vm, other=0.0).to(tl.float32)
        f2 = tl.load(F + ptr + HALF, mask=vm, other=0.0).to(tl.float32)
        kp1, vp1 = _prev_state_half(K, V, F, roff, rows, t0, T, s_t, ck1, cv1, offs_d, L)
        kp2, vp2 = _prev_state_half(K, V, F, roff, rows, t0, T, s_t, ck2, cv2, offs_d + HALF, L)
        tl.store(DK + gptr, ((1.0 - f1) * zk1).to(DK.dtype.element_ty), mask=vm)
        tl.store(DK + gptr + HALF, ((1.0 - f2) * zk2).to(DK.dtype.element_ty), mask=vm)
        tl.store(DV + gptr, ((1.0 - f1) * zv1).to(DV.dtype.element_ty), mask=vm)
        tl.store(DV + gptr + HALF, ((1.0 - f2) * zv2).to(DV.dtype.element_ty), mask=vm)
        df1 = zk1 * (kp1 - k1) + zv1 * (vp1 - v1)
        df2 = zk2 * (kp2 - k2) + zv2 * (vp2 - v2)
        tl.store(DF + gptr, df1.to(DF.dtype.element_ty), mask=vm)
        tl.store(DF + gptr + HALF, df2.to(DF.dtype.element_ty), mask=vm)


@triton.jit
def _prev_state_half(K, V, F, roff, rows, t0, T, s_t, ck, cv, offs_d, L: tl.constexpr):
    """kt, vt at the row before each row (0 at a chunk start): scan of the inputs shifted down by one
    row, the first row seeded with the carried state entering the tile."""
    prev = rows - 1
    m = ((rows > t0) & (rows < T + 1))[:, None]
    ptr = (roff - s_t)[:, None] + offs_d[None, :]
    k = tl.load(K + ptr, mask=m, other=0.0).to(tl.float32)
    v = tl.load(V + ptr, mask=m, other=0.0).to(tl.float32)
    f = tl.load(F + ptr, mask=m, other=0.0).to(tl.float32)
    first = (rows == t0)[:, None]
    a = tl.where(first, 1.0, tl.where((prev % L == 0)[:, None], 0.0, f))
    bk = tl.where(first, 0.0, (1.0 - f) * k)
    bv = tl.where(first, 0.0, (1.0 - f) * v)
    A, zk, zv = tl.associative_scan((a, bk, bv), 0, _lin_combine)
    start = (rows % L == 0)[:, None]
    kp = tl.where(start, 0.0, zk + A * ck[None, :])
    vp = tl.where(start, 0.0, zv + A * cv[None, :])
    return kp, vp


# ------------------------------------------------------------------------------------------------
# 4. decode step
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
    for start in range(lo, hi, BN):
        offs_n = start + tl.arange(0, BN)
        nm = (offs_n < hi)[:, None]
        kptr = c_off + offs_n.to(tl.int64)[:, None] * c_c + offs_d[None, :]
        k1 = tl.load(KC + kptr, mask=nm, other=0.0).to(tl.float32)
        k2 = tl.load(KC + kptr + HALF, mask=nm, other=0.0).to(tl.float32)
        s = tl.sum(k1 * q1[None, :] + k2 * q2[None, :], 1) * scale2
        s = tl.where(offs_n < hi, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new)
        v1 = tl.load(VC + kptr, mask=nm, other=0.0).to(tl.float32)
        v2 = tl.load(VC + kptr + HALF, mask=nm, other=0.0).to(tl.float32)
        l_i = l_i * alpha + tl.sum(p, 0)
        acc1 = acc1 * alpha + tl.sum(p[:, None] * v1, 0)
        acc2 = acc2 * alpha + tl.sum(p[:, None] * v2, 0)
        m_i = m_new
    o_ptr = O + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + offs_d
    if SPLITS == 1:
        tl.store(o_ptr, (acc1 / l_i).to(O.dtype.element_ty))
        tl.store(o_ptr + HALF, (acc2 / l_i).to(O.dtype.element_ty))
    else:
        # workspace row per (bh, split): [m, l, acc (2 HALF)], padded to 2 HALF + 2
        W = 2 * HALF + 2
        wrow = WS + (bh.to(tl.int64) * SPLITS + sp) * W
        tl.store(wrow + 2 + offs_d, acc1)
        tl.store(wrow + 2 + HALF + offs_d, acc2)
        tl.store(wrow, m_i)
        tl.store(wrow + 1, l_i)
        tl.debug_barrier()
        done = tl.atomic_add(CNT + bh, 1, sem="acq_rel")
        if done == SPLITS - 1:
            offs_s = tl.arange(0, SPLITS)
            base = WS + (bh.to(tl.int64) * SPLITS + offs_s) * W
            ms = tl.load(base, cache_modifier=".cg")
            ls = tl.load(base + 1, cache_modifier=".cg")
            mx = tl.max(ms, 0)
            wgt = tl.where(ms == float("-inf"), 0.0, tl.exp2(ms - mx))
            lt = tl.sum(wgt * ls, 0)
            a1 = tl.load(base[:, None] + 2 + offs_d[None, :], cache_modifier=".cg")
            a2 = tl.load(base[:, None] + 2 + HALF + offs_d[None, :], cache_modifier=".cg")
            tl.store(o_ptr, (tl.sum(wgt[:, None] * a1, 0) / lt).to(O.dtype.element_ty))
            tl.store(o_ptr + HALF, (tl.sum(wgt[:, None] * a2, 0) / lt).to(O.dtype.element_ty))
            tl.store(CNT + bh, 0)
