"""Triton kernels for full (causal or not) and sliding-window softmax attention: FlashAttention-2
forward and backward (Dao 2023) and a split-KV decode step. The inner loops are the shared core in
impls/attention_core.py (the same loops rat/triton runs over its chunk ends); these kernels own the
tiles and the key ranges. Layout (B, T, H, D); q, k, v share strides s_*, o / dO / dq / dk / dv share
o_*; lse and Delta are float32 (B*H, T), base 2. Window convention: row t sees t - window < s <= t.

Kernels (launchers in impls/full/triton.py):
  fwd_kernel     grid (ceil(T / BM), B*H), longest rows first: BM query rows, online softmax over
                 the key blocks they see (window: masked lower-edge blocks, unmasked middle, masked
                 diagonal; causal: unmasked blocks below the diagonal, then masked); writes o, lse.
  bwd_pre_kernel Delta = rowsum(dO * o).
  bwd_dkv_kernel grid (ceil(T / BN), B*H): dK, dV of BN keys over the query rows that see them
                 (unmasked rows, then the masked diagonal / window-edge rows), rows last-to-first.
  bwd_dq_kernel  grid (ceil(T / BM), B*H): dq of BM rows over their keys (same ranges as forward).
                 Or (fused_dq): bwd_dkv_kernel adds dS K to a float32 dq accumulator with atomics
                 (FA2's 5-product backward) and dq_finish_kernel scales and casts it.
  decode_kernel  grid (B*H, SPLITS): one new token; split 0 writes its k, v into the cache slot and
                 starts the softmax with it; every split attends over its share of the older slots;
                 the last split to finish merges (one launch, graph-capturable).
"""
from __future__ import annotations

import triton
import triton.language as tl

from ratbench.impls.attention_core import LOG2E, decode_finish, decode_inner, dkv_inner, dq_inner, fwd_inner

__all__ = [
    "LOG2E",
    "bwd_dkv_kernel",
    "bwd_dq_kernel",
    "bwd_pre_kernel",
    "decode_kernel",
    "dq_finish_kernel",
    "fwd_kernel",
]


@triton.jit
def _key_ranges(t0, T, window, BM: tl.constexpr, BN: tl.constexpr, CAUSAL: tl.constexpr, WINDOW: tl.constexpr):
    """Key ranges of the query tile [t0, t0 + BM): (a_lo, a_hi) masked lower window edge, (a_hi, d_lo)
    fully visible, (d_lo, hi) masked (diagonal, or the partial last block without a causal mask)."""
    last = tl.minimum(t0 + BM, T) - 1  # last valid row
    if CAUSAL:
        hi = last + 1
        d_lo = ((t0 + 1) // BN) * BN  # keys < t0 + 1 are seen by every row of the tile
    else:
        hi = T
        d_lo = (T // BN) * BN
    if WINDOW:
        a_lo = (tl.maximum(t0 - window + 1, 0) // BN) * BN
        all_lo = tl.maximum(last - window + 1, 0)  # first key every valid row sees
        a_hi = tl.minimum(tl.maximum(((all_lo + BN - 1) // BN) * BN, a_lo), d_lo)
    else:
        a_lo = 0
        a_hi = 0
    return a_lo, a_hi, d_lo, hi


@triton.jit
def fwd_kernel(
    Q, K, V, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, window, scale2,
    BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, CAUSAL: tl.constexpr, WINDOW: tl.constexpr,
    STORE_LSE: tl.constexpr, PREC: tl.constexpr,
):
    pid = tl.num_programs(0) - 1 - tl.program_id(0)  # longest rows first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    t0 = pid * BM
    r = tl.arange(0, BM)
    rows = t0 + r
    valid = rows < T
    vm = valid[:, None]
    offs_d = tl.arange(0, HALF)
    hb = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    Qt = Q + (hb + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    qb1 = tl.load(Qt + qptr, mask=vm, other=0.0)
    qb2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0)
    m_i = tl.full([BM], float("-inf"), tl.float32)
    l_i = tl.zeros([BM], tl.float32)
    acc1 = tl.zeros([BM, HALF], tl.float32)
    acc2 = tl.zeros([BM, HALF], tl.float32)
    if CAUSAL:
        kend = rows + 1
    else:
        kend = tl.full([BM], 0, tl.int32) + T
    kbeg = rows - window + 1
    a_lo, a_hi, d_lo, hi = _key_ranges(t0, T, window, BM, BN, CAUSAL, WINDOW)
    koff = tl.arange(0, BN)[:, None] * s_t + offs_d[None, :]
    Kb = K + hb
    Vb = V + hb
    if WINDOW:
        acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, Kb, Vb, koff, s_t, kend, kbeg,
                                         a_lo, a_hi, scale2, BN, HALF, True, PREC, True)
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, Kb, Vb, koff, s_t, kend, kbeg,
                                     a_hi, d_lo, scale2, BN, HALF, False, PREC, False)
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, Kb, Vb, koff, s_t, kend, kbeg,
                                     d_lo, hi, scale2, BN, HALF, True, PREC, WINDOW)
    inv = 1.0 / l_i
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    tl.store(O + o_base + optr, (acc1 * inv[:, None]).to(O.dtype.element_ty), mask=vm)
    tl.store(O + o_base + optr + HALF, (acc2 * inv[:, None]).to(O.dtype.element_ty), mask=vm)
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_i + tl.log2(l_i), mask=valid)


@triton.jit
def bwd_pre_kernel(O, DO, DELTA, o_b, o_t, o_h, T, H, BM: tl.constexpr, HALF: tl.constexpr):
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


@triton.jit
def bwd_dkv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV, DQA,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, window, scale, scale2,
    BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, CAUSAL: tl.constexpr, WINDOW: tl.constexpr,
    PREC: tl.constexpr, REVERSE: tl.constexpr, DQ_ATOMIC: tl.constexpr, SAME_T: tl.constexpr,
):
    """DQ_ATOMIC: also add this key block's dS K to the float32 (B*H, T, D) dq accumulator DQA
    (5 products per tile instead of 4 here + 3 in bwd_dq_kernel; dq_finish_kernel scales it).
    SAME_T: q's row stride equals dO's (o_t): the loop keeps one offset tensor for both (sm_90, D = 128:
    10 instead of 14 spilled words causal, 23 instead of 45 windowed)."""
    pid = tl.program_id(0)  # key block 0 has the most query rows: it starts first
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    j0 = pid * BN
    offs_n = j0 + tl.arange(0, BN)
    nm = (offs_n < T)[:, None]
    offs_d = tl.arange(0, HALF)
    hb = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    kptr = hb + offs_n.to(tl.int64)[:, None] * s_t + offs_d[None, :]
    k1 = tl.load(K + kptr, mask=nm, other=0.0)
    k2 = tl.load(K + kptr + HALF, mask=nm, other=0.0)
    v1 = tl.load(V + kptr, mask=nm, other=0.0)
    v2 = tl.load(V + kptr + HALF, mask=nm, other=0.0)
    dk1 = tl.zeros([BN, HALF], tl.float32)
    dk2 = tl.zeros([BN, HALF], tl.float32)
    dv1 = tl.zeros([BN, HALF], tl.float32)
    dv2 = tl.zeros([BN, HALF], tl.float32)
    QRb = Q + hb
    if SAME_T:  # q rows and dO rows have one stride: one offset tensor for both
        q_t = o_t
    else:
        q_t = s_t
    DOb = DO + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    LSEb = LSE + bh.to(tl.int64) * T
    DELTAb = DELTA + bh.to(tl.int64) * T
    DQAb = DQA + bh.to(tl.int64) * T * 2 * HALF
    t_pad = ((T + BM - 1) // BM) * BM
    # row tiles: [lo, mid) masked (diagonal), [mid, mid2) see every key of the block, [mid2, end)
    # masked (window's far edge: rows t < s + window)
    if CAUSAL:
        lo = (j0 // BM) * BM
        mid = tl.minimum(((j0 + BN - 1 + BM - 1) // BM) * BM, t_pad)
    else:
        lo = j0 * 0  # tensors, not python ints (T == 1 arrives as a constexpr)
        mid = j0 * 0
    if WINDOW:
        mid2 = tl.maximum(tl.minimum(((j0 + window) // BM) * BM, t_pad), mid)
        end = tl.minimum(((j0 + BN - 1 + window + BM - 1) // BM) * BM, t_pad)
    else:
        mid2 = T
        end = T
    dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, q_t, o_t,
                                   offs_n, mid, mid2, T, scale2, window, 1, BM, HALF, False, PREC, REVERSE,
                                   DQ_ATOMIC, False, False)
    if WINDOW:
        dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, q_t,
                                       o_t, offs_n, mid2, end, T, scale2, window, 1, BM, HALF, True, PREC,
                                       REVERSE, DQ_ATOMIC, False, True)
    if CAUSAL:
        dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, q_t,
                                       o_t, offs_n, lo, mid, T, scale2, window, 1, BM, HALF, True, PREC,
                                       REVERSE, DQ_ATOMIC, False, WINDOW)
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + offs_n.to(tl.int64)[:, None] * o_t + offs_d[None, :]
    tl.store(DK + optr, (dk1 * scale).to(DK.dtype.element_ty), mask=nm)
    tl.store(DK + optr + HALF, (dk2 * scale).to(DK.dtype.element_ty), mask=nm)
    tl.store(DV + optr, dv1.to(DV.dtype.element_ty), mask=nm)
    tl.store(DV + optr + HALF, dv2.to(DV.dtype.element_ty), mask=nm)


@triton.jit
def bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, window, scale, scale2,
    BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, CAUSAL: tl.constexpr, WINDOW: tl.constexpr,
    PREC: tl.constexpr,
):
    pid = tl.num_programs(0) - 1 - tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    t0 = pid * BM
    r = tl.arange(0, BM)
    rows = t0 + r
    valid = rows < T
    vm = valid[:, None]
    offs_d = tl.arange(0, HALF)
    hb = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    Qt = Q + (hb + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    qb1 = tl.load(Qt + qptr, mask=vm, other=0.0)
    qb2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0)
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    db1 = tl.load(DO + o_base + optr, mask=vm, other=0.0)
    db2 = tl.load(DO + o_base + optr + HALF, mask=vm, other=0.0)
    lse = tl.load(LSE + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
    delta = tl.load(DELTA + bh.to(tl.int64) * T + rows, mask=valid, other=0.0)
    dq1 = tl.zeros([BM, HALF], tl.float32)
    dq2 = tl.zeros([BM, HALF], tl.float32)
    if CAUSAL:
        kend = rows + 1
    else:
        kend = tl.full([BM], 0, tl.int32) + T
    kbeg = rows - window + 1
    a_lo, a_hi, d_lo, hi = _key_ranges(t0, T, window, BM, BN, CAUSAL, WINDOW)
    koff = tl.arange(0, BN)[:, None] * s_t + offs_d[None, :]
    Kb = K + hb
    Vb = V + hb
    if WINDOW:
        dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, Kb, Vb, koff, s_t, kend, kbeg, a_lo, a_hi,
                            scale2, BN, HALF, True, PREC, True)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, Kb, Vb, koff, s_t, kend, kbeg, a_hi, d_lo,
                        scale2, BN, HALF, False, PREC, False)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, Kb, Vb, koff, s_t, kend, kbeg, d_lo, hi,
                        scale2, BN, HALF, True, PREC, WINDOW)
    tl.store(DQ + o_base + optr, (dq1 * scale).to(DQ.dtype.element_ty), mask=vm)
    tl.store(DQ + o_base + optr + HALF, (dq2 * scale).to(DQ.dtype.element_ty), mask=vm)


@triton.jit
def dq_finish_kernel(DQA, DQ, o_b, o_t, o_h, T, H, scale, BM: tl.constexpr, HALF: tl.constexpr):
    """dq = scale * the float32 accumulator of bwd_dkv_kernel (DQ_ATOMIC), in dq's dtype and layout."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid * BM + tl.arange(0, BM)
    vm = (rows < T)[:, None]
    offs_d = tl.arange(0, HALF)
    aptr = (bh.to(tl.int64) * T + rows)[:, None] * (2 * HALF) + offs_d[None, :]
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + offs_d[None, :]
    tl.store(DQ + optr, (scale * tl.load(DQA + aptr, mask=vm, other=0.0)).to(DQ.dtype.element_ty), mask=vm)
    tl.store(DQ + optr + HALF, (scale * tl.load(DQA + aptr + HALF, mask=vm, other=0.0)).to(DQ.dtype.element_ty),
             mask=vm)


@triton.jit
def decode_kernel(
    Q, K, V, KC, VC, O, WS, CNT,
    s_b, s_h, o_b, o_h, c_b, c_h, c_c, H, n_old, cur, n_per_split, scale2,
    HALF: tl.constexpr, BN: tl.constexpr, SKIP: tl.constexpr, SPLITS: tl.constexpr,
):
    """Grid (B*H, SPLITS). Split 0 writes the new k, v into slot ``cur`` and starts the softmax with
    them (m = q.k scale2, l = 1, acc = v); split s attends over the older slots [s n, (s+1) n) of
    [0, n_old) (SKIP: leaving out slot cur, the ring slot this token overwrites)."""
    bh = tl.program_id(0)
    sp = tl.program_id(1)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, HALF)
    x_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    c_off = b.to(tl.int64) * c_b + h.to(tl.int64) * c_h
    q1 = tl.load(Q + x_off + offs_d).to(tl.float32)
    q2 = tl.load(Q + x_off + HALF + offs_d).to(tl.float32)
    kn1 = tl.load(K + x_off + offs_d)
    kn2 = tl.load(K + x_off + HALF + offs_d)
    vn1 = tl.load(V + x_off + offs_d)
    vn2 = tl.load(V + x_off + HALF + offs_d)
    own = sp == 0
    slot = c_off + cur * c_c + offs_d  # (cur may arrive as a constexpr 1: no .to())
    tl.store(KC + slot, kn1.to(KC.dtype.element_ty), mask=own)
    tl.store(KC + slot + HALF, kn2.to(KC.dtype.element_ty), mask=own)
    tl.store(VC + slot, vn1.to(VC.dtype.element_ty), mask=own)
    tl.store(VC + slot + HALF, vn2.to(VC.dtype.element_ty), mask=own)
    # the new token, rounded to the cache dtype as the other slots are
    k1 = kn1.to(KC.dtype.element_ty).to(tl.float32)
    k2 = kn2.to(KC.dtype.element_ty).to(tl.float32)
    s_new = tl.sum(q1 * k1 + q2 * k2, 0) * scale2
    m_i = tl.where(own, s_new, float("-inf"))
    l_i = tl.where(own, 1.0, 0.0)
    acc1 = vn1.to(VC.dtype.element_ty).to(tl.float32) * l_i
    acc2 = vn2.to(VC.dtype.element_ty).to(tl.float32) * l_i
    lo = sp * n_per_split
    hi = tl.minimum(lo + n_per_split, n_old)
    acc1, acc2, l_i, m_i = decode_inner(acc1, acc2, l_i, m_i, q1, q2, KC, VC, c_off, c_c, lo, hi, cur, scale2,
                                        BN, HALF, SKIP)
    o_ptr = O + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + offs_d
    decode_finish(o_ptr, acc1, acc2, l_i, m_i, WS, CNT, bh, sp, HALF, SPLITS)
