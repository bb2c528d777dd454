"""The flash-attention core shared by full/triton, swa/triton and rat/triton: the inner loops of the
forward (online softmax), the dq and the dK/dV passes, and the split-over-slots decode loop with its
in-kernel merge. Outer kernels (impls/full/triton_kernels.py, impls/rat/kernels/) own the
tile, the key source and the ranges; these loops own the math (FlashAttention-2, Dao 2023).

Conventions (every caller):
- the head dim is handled as two halves [0, D/2) and [D/2, D) (HALF = D/2): every product over D is
  two products of K = HALF (RAT's rotate-half RoPE needs no shuffles; full/swa use the same core).
- logits in base 2: scale2 = scale * log2(e); lse is base 2.
- key visibility, a key index s against a query row t (what MASK=True applies; MASK=False blocks are
  ones the caller knows to be fully visible):
    forward / dq loops: s < kend[t] and, with WINDOW, s >= kbeg[t] (tensors the caller computes:
      RAT kend = t // L (chunk-causal over chunk ends), causal kend = t + 1, non-causal kend = T;
      window kbeg = t - window + 1);
    dK/dV loop: CHUNK: s < t // L (RAT); else s <= t; with WINDOW also t - s < window.
- the forward loop keeps m finite (RAT starts it with the self term; causal rows always see key 0 in
  their first block); only WINDOW blocks can hold rows that see no key yet, so only those guard
  m = -inf (exp2(-inf - -inf) would be NaN).
"""
from __future__ import annotations

import triton
import triton.language as tl

LOG2E = 1.4426950408889634


@triton.jit
def fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KEb, VEb, koff, e_c, kend, kbeg, lo, hi, scale2,
              BN: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr,
              WINDOW: tl.constexpr):
    """Online softmax of the BM query rows (qb1, qb2: [BM, HALF] in the key dtype) over keys [lo, hi)
    in blocks of BN. KEb, VEb: this head's keys/values; koff: int32 [BN, HALF] offsets of a key block
    (key row stride e_c). Returns the updated (acc1, acc2, l_i, m_i)."""
    for start in range(lo, hi, BN):
        kp = KEb + start * e_c + koff
        vp = VEb + start * e_c + koff
        if MASK:
            offs_n = start + tl.arange(0, BN)
            nm = (offs_n < hi)[:, None]
            k1 = tl.load(kp, mask=nm, other=0.0)
            k2 = tl.load(kp + HALF, mask=nm, other=0.0)
            v1 = tl.load(vp, mask=nm, other=0.0)
            v2 = tl.load(vp + HALF, mask=nm, other=0.0)
        else:
            k1 = tl.load(kp)
            k2 = tl.load(kp + HALF)
            v1 = tl.load(vp)
            v2 = tl.load(vp + HALF)
        s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
        s = tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)
        s = s * scale2
        if MASK:
            s = tl.where(offs_n[None, :] < kend[:, None], s, float("-inf"))
            if WINDOW:
                s = tl.where(offs_n[None, :] >= kbeg[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        if WINDOW:
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_use = m_new
        alpha = tl.exp2(m_i - m_use)
        p = tl.exp2(s - m_use[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        pb = p.to(v1.dtype)
        acc1 = tl.dot(pb, v1, acc1 * alpha[:, None], input_precision=PREC)
        acc2 = tl.dot(pb, v2, acc2 * alpha[:, None], input_precision=PREC)
        m_i = m_new
    return acc1, acc2, l_i, m_i


@triton.jit
def dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KEb, VEb, koff, e_c, kend, kbeg, lo, hi, scale2,
             BN: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr,
             WINDOW: tl.constexpr):
    """dq (unscaled: sum_s dS_ts K_s) of BM rows over keys [lo, hi): P = exp2(S scale2 - lse),
    dS = P (dO V^T - Delta). db1, db2: the rows' dO halves; lse, delta: [BM]."""
    for start in range(lo, hi, BN):
        kp = KEb + start * e_c + koff
        vp = VEb + start * e_c + koff
        if MASK:
            offs_n = start + tl.arange(0, BN)
            nm = (offs_n < hi)[:, None]
            k1 = tl.load(kp, mask=nm, other=0.0)
            k2 = tl.load(kp + HALF, mask=nm, other=0.0)
            v1 = tl.load(vp, mask=nm, other=0.0)
            v2 = tl.load(vp + HALF, mask=nm, other=0.0)
        else:
            k1 = tl.load(kp)
            k2 = tl.load(kp + HALF)
            v1 = tl.load(vp)
            v2 = tl.load(vp + HALF)
        s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
        s = tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)
        p = tl.exp2(s * scale2 - lse[:, None])
        if MASK:
            p = tl.where(offs_n[None, :] < kend[:, None], p, 0.0)
            if WINDOW:
                p = tl.where(offs_n[None, :] >= kbeg[:, None], p, 0.0)
        dp = tl.dot(db1, tl.trans(v1), input_precision=PREC)
        dp = tl.dot(db2, tl.trans(v2), dp, input_precision=PREC)
        ds = (p * (dp - delta[:, None])).to(k1.dtype)
        dq1 = tl.dot(ds, k1, dq1, input_precision=PREC)
        dq2 = tl.dot(ds, k2, dq2, input_precision=PREC)
    return dq1, dq2


@triton.jit
def dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, q_t, o_t, offs_n, lo, hi, T,
              scale2, window,
              L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr,
              REVERSE: tl.constexpr, DQ_ATOMIC: tl.constexpr, CHUNK: tl.constexpr, WINDOW: tl.constexpr):
    """dK, dV (unscaled dK) of one key block (k1, k2, v1, v2: [BN, HALF]; offs_n its key indices) over
    the query rows [lo, hi) in tiles of BM. QRb: this head's q rows (row stride q_t; RAT: RoPE'd q);
    DOb: dO rows (stride o_t); LSEb, DELTAb: (T,). DQ_ATOMIC also adds dS K to a float32 (T, D) dq
    accumulator DQAb with atomics. REVERSE walks the query tiles from the last one down: every key
    block of a head then reads the same rows at about the same time (shared in L2)."""
    r = tl.arange(0, BM)
    d = tl.arange(0, HALF)
    qoff = r[:, None] * q_t + d[None, :]
    aoff = r[:, None] * (2 * HALF) + d[None, :]
    ooff = r[:, None] * o_t + d[None, :]
    n = (hi - lo + BM - 1) // BM
    if REVERSE:
        first = lo + (n - 1) * BM
        step = -BM
    else:
        first = lo
        step = BM
    qp = QRb + first.to(tl.int64) * q_t + qoff  # pointers move by BM rows per step (no
    op = DOb + first.to(tl.int64) * o_t + ooff  # 32-bit overflow of t0 * o_t at 1M tokens)
    ap = DQAb + first.to(tl.int64) * (2 * HALF) + aoff
    for i in range(n):
        t0 = first + i * step
        rows = t0 + r
        vm = (rows < T)[:, None]
        qr1 = tl.load(qp, mask=vm, other=0.0)
        qr2 = tl.load(qp + HALF, mask=vm, other=0.0)
        do1 = tl.load(op, mask=vm, other=0.0)
        do2 = tl.load(op + HALF, mask=vm, other=0.0)
        lse = tl.load(LSEb + rows, mask=rows < T, other=float("inf"))
        delta = tl.load(DELTAb + rows, mask=rows < T, other=0.0)
        st = tl.dot(k1, tl.trans(qr1), input_precision=PREC)
        st = tl.dot(k2, tl.trans(qr2), st, input_precision=PREC)  # [BN, BM]
        pt = tl.exp2(st * scale2 - lse[None, :])
        if MASK:
            if CHUNK:
                pt = tl.where(offs_n[:, None] < (rows // L)[None, :], pt, 0.0)
            else:
                pt = tl.where(offs_n[:, None] <= rows[None, :], pt, 0.0)
            if WINDOW:
                pt = tl.where(rows[None, :] - offs_n[:, None] < window, pt, 0.0)
        pb = pt.to(do1.dtype)
        dv1 = tl.dot(pb, do1, dv1, input_precision=PREC)
        dv2 = tl.dot(pb, do2, dv2, input_precision=PREC)
        dpt = tl.dot(v1, tl.trans(do1), input_precision=PREC)
        dpt = tl.dot(v2, tl.trans(do2), dpt, input_precision=PREC)
        dst = (pt * (dpt - delta[None, :])).to(qr1.dtype)
        dk1 = tl.dot(dst, qr1, dk1, input_precision=PREC)
        dk2 = tl.dot(dst, qr2, dk2, input_precision=PREC)
        if DQ_ATOMIC:  # this key block's share of dq (unscaled), summed in float32
            ds = tl.trans(dst)
            tl.atomic_add(ap, tl.dot(ds, k1, input_precision=PREC), mask=vm, sem="relaxed")
            tl.atomic_add(ap + HALF, tl.dot(ds, k2, input_precision=PREC), mask=vm, sem="relaxed")
            ap += step * (2 * HALF)
        qp += step * q_t
        op += step * o_t
    return dk1, dk2, dv1, dv2


# ------------------------------------------------------------------------------------------------
# decode: one query per program against cached slots, split over slots, merged in-kernel
@triton.jit
def decode_inner(acc1, acc2, l_i, m_i, q1, q2, KC, VC, c_off, c_c, lo, hi, skip, scale2,
                 BN: tl.constexpr, HALF: tl.constexpr, SKIP: tl.constexpr):
    """Online softmax of one float32 query (q1, q2: [HALF]) over cache slots [lo, hi) (slot stride
    c_c from KC + c_off); SKIP leaves out slot ``skip`` (a ring slot being overwritten by this step)."""
    offs_d = tl.arange(0, HALF)
    for start in range(lo, hi, BN):
        offs_n = start + tl.arange(0, BN)
        if SKIP:
            ok = (offs_n < hi) & (offs_n != skip)
        else:
            ok = offs_n < hi
        nm = ok[:, None]
        kptr = c_off + offs_n.to(tl.int64)[:, None] * c_c + offs_d[None, :]
        k1 = tl.load(KC + kptr, mask=nm, other=0.0).to(tl.float32)
        k2 = tl.load(KC + kptr + HALF, mask=nm, other=0.0).to(tl.float32)
        s = tl.sum(k1 * q1[None, :] + k2 * q2[None, :], 1) * scale2
        s = tl.where(ok, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 0))
        if SKIP:  # a block may hold only the skipped slot
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        else:
            m_use = m_new
        alpha = tl.exp2(m_i - m_use)
        p = tl.exp2(s - m_use)
        v1 = tl.load(VC + kptr, mask=nm, other=0.0).to(tl.float32)
        v2 = tl.load(VC + kptr + HALF, mask=nm, other=0.0).to(tl.float32)
        l_i = l_i * alpha + tl.sum(p, 0)
        acc1 = acc1 * alpha + tl.sum(p[:, None] * v1, 0)
        acc2 = acc2 * alpha + tl.sum(p[:, None] * v2, 0)
        m_i = m_new
    return acc1, acc2, l_i, m_i


@triton.jit
def decode_finish(o_ptr, acc1, acc2, l_i, m_i, WS, CNT, bh, sp, HALF: tl.constexpr, SPLITS: tl.constexpr):
    """Write o = acc / l. With SPLITS > 1 each split writes (m, l, acc) to WS and the last one to
    finish (atomic counter CNT) merges them, writes o and re-arms the counter: one launch, no host
    sync, CUDA-graph capturable."""
    offs_d = tl.arange(0, HALF)
    if SPLITS == 1:
        tl.store(o_ptr, (acc1 / l_i).to(o_ptr.dtype.element_ty))
        tl.store(o_ptr + HALF, (acc2 / l_i).to(o_ptr.dtype.element_ty))
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
            tl.store(o_ptr, (tl.sum(wgt[:, None] * a1, 0) / lt).to(o_ptr.dtype.element_ty))
            tl.store(o_ptr + HALF, (tl.sum(wgt[:, None] * a2, 0) / lt).to(o_ptr.dtype.element_ty))
            tl.store(CNT + bh, 0)
