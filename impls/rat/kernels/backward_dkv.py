"""dK, dV of the RAT chunk ends (docs/rat-spec.md, op step 3: the keys and values of the softmax are the
chunk ends K_j = RoPE_j(kt at the end of chunk j), V_j; their gradients reach k, v, f through the backward
scan, scan.py).

bwd_dkv_kernel        the "plain" backward (float32 inputs). Grid (ceil(C / BN), B*H): BN chunk ends per
                      program (k, v as two [BN, HALF] halves), the query rows t with c(t) > j in tiles of BM,
                      walked last to first (the key blocks of a head then read the same rows at about the
                      same time: shared in L2; NOTES.md v4): rows that see every key of the block [mid, T),
                      then the masked rows [lo, mid). Per tile (impls/attention_core.dkv_inner, CHUNK):
                      S^T = K Q_r^T, P^T = exp2(S^T scale2 - lse), dV += P^T dO, dP^T = V dO^T,
                      dS^T = P^T (dP^T - Delta), dK += dS^T Q_r (4 products). Writes float32 dK (scaled), dV.
bwd_dkv_early_kernel  the "dq_first" backward's dK/dV (16-bit inputs): the same grid, tiles and walk with the
                      products reordered (_dkv_early_inner): dP^T is issued before the exponentials of P^T
                      (it does not need P), so its second half runs on the tensor cores while they do (NOTES.md
                      v8: dK/dV 17.15 vs 17.76 ms at 3 stages on the H200).
Both read RoPE(q) (B*H, T, D) and Delta from the dq-side pass (backward_dq.py); lse and Delta are base 2 / float32.
Math: FlashAttention-2's backward (Dao 2023), dS = P (dP - Delta), at chunk granularity: key j is visible
to row t iff j < t // L.
"""
from __future__ import annotations

import triton
import triton.language as tl

# the flash-attention dK/dV loop is the core shared with full/swa triton
from ratbench.impls.attention_core import dkv_inner


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
    QRb = QR + bh.to(tl.int64) * T * 2 * HALF
    DOb = DO + do_off
    LSEb = LSE + bh.to(tl.int64) * T
    DELTAb = DELTA + bh.to(tl.int64) * T
    # dkv_inner: last-to-first walk (REVERSE), no dq atomics (its dq accumulator argument is not read: DKE),
    # chunk-causal mask (CHUNK), no window
    dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DKE, 2 * HALF, o_t,
                                   offs_n, mid, T, T, scale2, 0, L, BM, HALF, False, PREC, True, False, True,
                                   False)
    dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DKE, 2 * HALF, o_t,
                                   offs_n, lo, mid, T, scale2, 0, L, BM, HALF, True, PREC, True, False, True,
                                   False)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)


@triton.jit
def _dkv_early_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, q_t, o_t, offs_n, lo, hi, T,
                        scale2, L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr,
                        PREC: tl.constexpr):
    """attention_core.dkv_inner for RAT (CHUNK, REVERSE, no window, no dq atomics) with the products
    reordered: S^T = K Q^T, then dP^T = V dO^T (it does not need P), then P^T = exp2(S^T scale2 - lse),
    dV += P^T dO, dS^T = P^T (dP^T - Delta), dK += dS^T Q. On sm_90 Triton issues each two-half product
    as wgmma, wait(0), wgmma (async): the second half of dP^T is in flight while the exponentials of
    P^T run (in dkv_inner the exponentials sit between S^T and dV with no product in flight)."""
    r = tl.arange(0, BM)
    d = tl.arange(0, HALF)
    qoff = r[:, None] * q_t + d[None, :]
    ooff = r[:, None] * o_t + d[None, :]
    n = (hi - lo + BM - 1) // BM
    first = lo + (n - 1) * BM
    qp = QRb + first.to(tl.int64) * q_t + qoff
    op = DOb + first.to(tl.int64) * o_t + ooff
    for i in range(n):
        rows = first - i * BM + r
        vm = (rows < T)[:, None]
        qr1 = tl.load(qp, mask=vm, other=0.0)
        qr2 = tl.load(qp + HALF, mask=vm, other=0.0)
        do1 = tl.load(op, mask=vm, other=0.0)
        do2 = tl.load(op + HALF, mask=vm, other=0.0)
        lse = tl.load(LSEb + rows, mask=rows < T, other=float("inf"))
        delta = tl.load(DELTAb + rows, mask=rows < T, other=0.0)
        st = tl.dot(k1, tl.trans(qr1), input_precision=PREC)
        st = tl.dot(k2, tl.trans(qr2), st, input_precision=PREC)  # [BN, BM]
        dpt = tl.dot(v1, tl.trans(do1), input_precision=PREC)
        dpt = tl.dot(v2, tl.trans(do2), dpt, input_precision=PREC)
        pt = tl.exp2(st * scale2 - lse[None, :])
        if MASK:
            pt = tl.where(offs_n[:, None] < (rows // L)[None, :], pt, 0.0)
        pb = pt.to(do1.dtype)
        dv1 = tl.dot(pb, do1, dv1, input_precision=PREC)
        dv2 = tl.dot(pb, do2, dv2, input_precision=PREC)
        dst = (pt * (dpt - delta[None, :])).to(qr1.dtype)
        dk1 = tl.dot(dst, qr1, dk1, input_precision=PREC)
        dk2 = tl.dot(dst, qr2, dk2, input_precision=PREC)
        qp -= BM * q_t
        op -= BM * o_t
    return dk1, dk2, dv1, dv2


@triton.jit
def bwd_dkv_early_kernel(
    QR, DO, LSE, DELTA, KE, VE, DKE, DVE,
    o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, PREC: tl.constexpr,
):
    """bwd_dkv_kernel (grid (ceil(C / BN), B*H), last-to-first walk, no dq atomics) with the inner loop
    _dkv_early_inner."""
    pid = tl.program_id(0)
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
    lo = (((j0 + 1) * L) // BM) * BM
    mid = tl.minimum((((j0 + BN) * L + BM - 1) // BM) * BM, ((T + BM - 1) // BM) * BM)
    QRb = QR + bh.to(tl.int64) * T * 2 * HALF
    DOb = DO + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    LSEb = LSE + bh.to(tl.int64) * T
    DELTAb = DELTA + bh.to(tl.int64) * T
    dk1, dk2, dv1, dv2 = _dkv_early_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, 2 * HALF,
                                             o_t, offs_n, mid, T, T, scale2, L, BM, HALF, False, PREC)
    dk1, dk2, dv1, dv2 = _dkv_early_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, 2 * HALF,
                                             o_t, offs_n, lo, mid, T, scale2, L, BM, HALF, True, PREC)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)
