"""The intra-chunk scans of RAT (docs/rat-spec.md, op step 1) and their reverse for the backward.

scan_kernel      grid (ceil(C / NC), B*H). Tiling: NC chunks side by side ([NC, HALF] float32 state
                 tiles per half of kt and vt), a rolled loop over the chunk's L rows:
                     kt_l = f_l kt_{l-1} + (1 - f_l) k_l,  vt_l = f_l vt_{l-1} + (1 - f_l) v_l  (float32)
                 writes RoPE_c(kt) and vt per token (input dtype; the attention kernels read them), the
                 chunk ends K_c = RoPE_c(kt_{L-1}), V_c = vt_{L-1} (compact (B, H, C, D)), and with WRITE_LAST
                 the pre-RoPE float32 state at token T-1 (the decode state after a prefill).
bwd_scan_kernel  grid (ceil(C / NC), B*H), NC chunks side by side, a rolled loop over the L rows last to
                 first: the direct gradients of row l's RoPE'd kt and of vt through its self term
                 (dS_self scale RoPE(q), p_self dO), plus the chunk-end gradients dK_c, dV_c (from the dK/dV
                 kernel) at l = L-1; then g_l = d_l + f_{l+1} g_{l+1} and
                     dk = (1 - f) g_k, dv = (1 - f) g_v, df = g_k (kt_{l-1} - k) + g_v (vt_{l-1} - v).
                 The state before row l is read back from the forward's per-token states (un-rotated here).
Math: the recurrence and its adjoint (reverse-mode of a first-order linear recurrence); softmax gradients
as FlashAttention-2 (Dao 2023): dS = P (dP - Delta). Chunks longer than ~1k rows with few chunks in all use
the two-level versions in long_scan.py (they share the per-row helpers below).

Helper rule (measured, impls/rat/NOTES.md v7): the per-row helpers (_scan_step, _bwd_direct,
_bwd_scan_step) call no helper of their own but _rope / _rope_t, and take pointers, not bases and offsets,
in the order the kernels had them: with a nested helper (e.g. _load2 in _scan_step) or a split of
_bwd_scan_step in two, the same PTX instructions came with other inlining line info and ptxas scheduled
some configurations of scan_kernel / bwd_scan_kernel differently.
"""
from __future__ import annotations

import triton
import triton.language as tl

from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _maybe_rope, _rope, _rope_t, _store2


@triton.jit
def _scan_step(K, V, F, ptr, m, kt1, kt2, vt1, vt2, HALF: tl.constexpr):
    """One row of the forward scan, s = f s + (1 - f) x for kt (x = k) and vt (x = v); masked rows read
    f = 1, x = 0 and leave the state as it is. Returns the states and f."""
    f1 = tl.load(F + ptr, mask=m, other=1.0).to(tl.float32)
    f2 = tl.load(F + ptr + HALF, mask=m, other=1.0).to(tl.float32)
    k1 = tl.load(K + ptr, mask=m, other=0.0).to(tl.float32)
    k2 = tl.load(K + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    v1 = tl.load(V + ptr, mask=m, other=0.0).to(tl.float32)
    v2 = tl.load(V + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    kt1 = f1 * kt1 + (1.0 - f1) * k1
    kt2 = f2 * kt2 + (1.0 - f2) * k2
    vt1 = f1 * vt1 + (1.0 - f1) * v1
    vt2 = f2 * vt2 + (1.0 - f2) * v2
    return kt1, kt2, vt1, vt2, f1, f2


@triton.jit
def _bwd_direct(Q, KTR, VT, DO, LSE, DELTA, ptr, optr, rows, m, rv, r_off, cos, sin, scale, scale2,
                HALF: tl.constexpr, ROPE: tl.constexpr):
    """Direct gradients of the row's RoPE'd kt and of vt through the self term: dk = dS_self q_r,
    dv = p_self dO; also kr and dS_self (not used by the callers)."""
    q1 = tl.load(Q + ptr, mask=m, other=0.0).to(tl.float32)
    q2 = tl.load(Q + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    kr1 = tl.load(KTR + optr, mask=m, other=0.0).to(tl.float32)
    kr2 = tl.load(KTR + optr + HALF, mask=m, other=0.0).to(tl.float32)
    vt1 = tl.load(VT + optr, mask=m, other=0.0).to(tl.float32)
    vt2 = tl.load(VT + optr + HALF, mask=m, other=0.0).to(tl.float32)
    do1 = tl.load(DO + optr, mask=m, other=0.0).to(tl.float32)
    do2 = tl.load(DO + optr + HALF, mask=m, other=0.0).to(tl.float32)
    lse = tl.load(LSE + r_off + rows, mask=rv, other=0.0)
    delta = tl.load(DELTA + r_off + rows, mask=rv, other=0.0)
    if ROPE:
        q1, q2 = _rope(q1, q2, cos, sin)
    p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
    ds_s = scale * p_s * (tl.sum(do1 * vt1 + do2 * vt2, 1) - delta)
    return ds_s[:, None] * q1, ds_s[:, None] * q2, p_s[:, None] * do1, p_s[:, None] * do2, kr1, kr2, ds_s


@triton.jit
def _bwd_recur(dk1, dk2, dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin, ROPE: tl.constexpr):
    """g_l = d_l + f_{l+1} g_{l+1} for kt (d w.r.t. RoPE'd kt: rotated back) and vt (bwd_lscan_sum_kernel;
    _bwd_scan_step starts with the same lines, not a call: see above)."""
    if ROPE:
        dk1, dk2 = _rope_t(dk1, dk2, cos, sin)
    gk1 = dk1 + fn1 * gk1
    gk2 = dk2 + fn2 * gk2
    gv1 = dv1 + fn1 * gv1
    gv2 = dv2 + fn2 * gv2
    return gk1, gk2, gv1, gv2


@triton.jit
def _bwd_scan_step(K, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l, dk1, dk2, dv1, dv2, gk1, gk2, gv1, gv2,
                   fn1, fn2, cos, sin, HALF: tl.constexpr, ROPE: tl.constexpr):
    """One row of the reverse scan from its direct gradients d (w.r.t. RoPE'd kt, and vt): _bwd_recur,
    then dk = (1-f) g_k, dv = (1-f) g_v, df = g_k (kt_{l-1} - k) + g_v (vt_{l-1} - v) of the rows at
    chunk-local index l (a scalar or a [N, 1] column); the state before a row is read back from the
    forward's per-token states (un-rotated here; zero before l = 0). Returns g and f (the next row's f_{l+1})."""
    if ROPE:
        dk1, dk2 = _rope_t(dk1, dk2, cos, sin)
    gk1 = dk1 + fn1 * gk1
    gk2 = dk2 + fn2 * gk2
    gv1 = dv1 + fn1 * gv1
    gv2 = dv2 + fn2 * gv2
    f1 = tl.load(F + ptr, mask=m, other=0.0).to(tl.float32)
    f2 = tl.load(F + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    k1 = tl.load(K + ptr, mask=m, other=0.0).to(tl.float32)
    k2 = tl.load(K + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    v1 = tl.load(V + ptr, mask=m, other=0.0).to(tl.float32)
    v2 = tl.load(V + ptr + HALF, mask=m, other=0.0).to(tl.float32)
    pm = m & (l > 0)
    kp1 = tl.load(KTR + optr - o_t, mask=pm, other=0.0).to(tl.float32)
    kp2 = tl.load(KTR + optr - o_t + HALF, mask=pm, other=0.0).to(tl.float32)
    if ROPE:
        kp1, kp2 = _rope_t(kp1, kp2, cos, sin)
    vp1 = tl.load(VT + optr - o_t, mask=pm, other=0.0).to(tl.float32)
    vp2 = tl.load(VT + optr - o_t + HALF, mask=pm, other=0.0).to(tl.float32)
    tl.store(DK + optr, ((1.0 - f1) * gk1).to(DK.dtype.element_ty), mask=m)
    tl.store(DK + optr + HALF, ((1.0 - f2) * gk2).to(DK.dtype.element_ty), mask=m)
    tl.store(DV + optr, ((1.0 - f1) * gv1).to(DV.dtype.element_ty), mask=m)
    tl.store(DV + optr + HALF, ((1.0 - f2) * gv2).to(DV.dtype.element_ty), mask=m)
    tl.store(DF + optr, (gk1 * (kp1 - k1) + gv1 * (vp1 - v1)).to(DF.dtype.element_ty), mask=m)
    tl.store(DF + optr + HALF, (gk2 * (kp2 - k2) + gv2 * (vp2 - v2)).to(DF.dtype.element_ty), mask=m)
    return gk1, gk2, gv1, gv2, f1, f2


@triton.jit
def _chunks(COS, SIN, H, C, NC: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr):
    """The scans' programs: program (i, b*H + h) takes chunks i NC .. i NC + NC - 1 of (b, h). Returns bh, b, h, the
    chunk ids and their mask, the half-row's column offsets [1, HALF] and RoPE_c's cos, sin per chunk (1, 0 without
    RoPE)."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    cid = pid * NC + tl.arange(0, NC)
    cm = cid < C
    d2 = tl.arange(0, HALF)[None, :]
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, cid, cm, d2, HALF)
    else:
        cos = tl.full([NC, HALF], 1.0, tl.float32)
        sin = tl.zeros([NC, HALF], tl.float32)
    return bh, bh // H, bh % H, cid, cm, d2, cos, sin


@triton.jit
def scan_kernel(
    K, V, F, COS, SIN, KTR, VT, KE, VE, STK, STV, Q, SS,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, q_b, q_t, q_h, T, H, C, n_rows,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, WRITE_LAST: tl.constexpr,
    SELF_LOGIT: tl.constexpr = False, WRITE_KT: tl.constexpr = True,
):
    """The forward scan: per row RoPE_c(kt) (WRITE_KT) and vt to KTR, VT (strides o_*), the chunk ends to KE, VE
    (e_*), with WRITE_LAST the running state at T - 1 to STK, STV. SELF_LOGIT (rat/gluon): each row's self logit
    q_t . kt_t (float32, un-rotated: RoPE_c of both leaves it as is) to SS (B*H, T), read from Q (strides q_*), so
    that the attention kernel reads neither kt nor RoPE_c(kt) per row (the prefill writes no KTR then)."""
    bh, b, h, cid, cm, d2, cos, sin = _chunks(COS, SIN, H, C, NC, HALF, ROPE)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    kt1 = tl.zeros([NC, HALF], tl.float32)
    kt2 = tl.zeros([NC, HALF], tl.float32)
    vt1 = tl.zeros([NC, HALF], tl.float32)
    vt2 = tl.zeros([NC, HALF], tl.float32)
    kr1 = kt1
    kr2 = kt2
    for l in range(n_rows):  # n_rows == L, a run-time bound: the loop stays rolled
        rows = cid.to(tl.int64) * L + l
        m = (cm & (rows < T))[:, None]
        ptr = in_off + rows[:, None] * s_t + d2
        kt1, kt2, vt1, vt2, _f1, _f2 = _scan_step(K, V, F, ptr, m, kt1, kt2, vt1, vt2, HALF)
        optr = out_off + rows[:, None] * o_t + d2
        if SELF_LOGIT:
            q1, q2 = _load2(Q + b.to(tl.int64) * q_b + h.to(tl.int64) * q_h + rows[:, None] * q_t + d2, m, 0.0, HALF)
            tl.store(SS + bh.to(tl.int64) * T + rows, tl.sum(q1 * kt1 + q2 * kt2, 1), mask=cm & (rows < T))
        if WRITE_KT:
            kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, ROPE)
            _store2(KTR + optr, kr1, kr2, m, HALF)
        _store2(VT + optr, vt1, vt2, m, HALF)
    # chunk ends (for a partial last chunk: the state at T - 1, as masked rows left it unchanged)
    if not WRITE_KT:
        kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, ROPE)
    eptr = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h + cid.to(tl.int64)[:, None] * e_c + d2
    em = cm[:, None]
    _store2(KE + eptr, kr1, kr2, em, HALF)
    _store2(VE + eptr, vt1, vt2, em, HALF)
    if WRITE_LAST:
        lm = (cid == (T - 1) // L)[:, None]
        sptr = bh.to(tl.int64) * 2 * HALF + d2 + 0 * cid[:, None]
        _store2(STK + sptr, kt1, kt2, lm, HALF)
        _store2(STV + sptr, vt1, vt2, lm, HALF)


@triton.jit
def bwd_scan_kernel(
    Q, K, V, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, DK, DV, DF, DQACC, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, n_rows, scale, scale2, Tp,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, DQ_OUT: tl.constexpr = False,
):
    """Direct gradients of kt, vt per row (the self term: dS_self scale q_r and p_self dO, plus dK_c, dV_c at l = L-1),
    then the reverse scan g_l = d_l + f_{l+1} g_{l+1} and dk, dv, df. Q, K, V, F have strides s_*; KTR, VT, DO, DK, DV,
    DF, DQ o_*. The state before row l is read back from the forward's per-token states (un-rotated). DQ_OUT: Q is
    RoPE(q) (B*H, Tp, D) and dq comes too, from DQACC (as Q, float32: sum_j dS_tj K_j, rat/gluon's) and the self term."""
    bh, b, h, cid, cm, d2, cos, sin = _chunks(COS, SIN, H, C, NC, HALF, ROPE)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    r_off = bh.to(tl.int64) * T
    gk1 = tl.zeros([NC, HALF], tl.float32)
    gk2 = tl.zeros([NC, HALF], tl.float32)
    gv1 = tl.zeros([NC, HALF], tl.float32)
    gv2 = tl.zeros([NC, HALF], tl.float32)
    fn1 = gk1  # f of the row after (0 past the chunk end)
    fn2 = gk1
    # chunk-end gradients (w.r.t. the RoPE'd end key and the end value), added at l = L - 1
    eptr = bh.to(tl.int64) * C * 2 * HALF + cid.to(tl.int64)[:, None] * 2 * HALF + d2
    dke1, dke2 = _load2(DKE + eptr, cm[:, None], 0.0, HALF)
    dve1, dve2 = _load2(DVE + eptr, cm[:, None], 0.0, HALF)
    for i in range(n_rows):  # n_rows == L
        l = L - 1 - i
        rows = cid.to(tl.int64) * L + l
        rv = cm & (rows < T)
        m = rv[:, None]
        ptr = in_off + rows[:, None] * s_t + d2
        optr = out_off + rows[:, None] * o_t + d2
        # self term of row l (DQ_OUT: Q is RoPE(q), rows of (B*H, Tp, D))
        qp = (bh.to(tl.int64) * Tp + rows)[:, None] * (2 * HALF) + d2 if DQ_OUT else ptr
        dk1, dk2, dv1, dv2, _kr1, _kr2, _ds = _bwd_direct(Q, KTR, VT, DO, LSE, DELTA, qp, optr, rows, m, rv, r_off,
                                                          cos, sin, scale, scale2, HALF, ROPE and not DQ_OUT)
        if l == L - 1:
            dk1 += dke1
            dk2 += dke2
            dv1 += dve1
            dv2 += dve2
        gk1, gk2, gv1, gv2, fn1, fn2 = _bwd_scan_step(K, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l, dk1, dk2,
                                                      dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin, HALF, ROPE)
        if DQ_OUT:  # rat/gluon (DQ_OUT): dq of the rows, RoPE^T(scale DQACC + dS_self kr)
            a1, a2 = _load2(DQACC + qp, m, 0.0, HALF)
            a1 = a1 * scale + _ds[:, None] * _kr1
            a2 = a2 * scale + _ds[:, None] * _kr2
            if ROPE:
                a1, a2 = _rope_t(a1, a2, cos, sin)
            _store2(DQ + optr, a1, a2, m, HALF)
