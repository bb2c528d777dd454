"""The Triton passes around rat/gluon's backward kernel (impls/rat/gluon/backward.py): plain memory passes, so they
run under the interpreter too (tests/impls/rat/test_rat_gluon.py checks them on the CPU with the Gluon kernel
emulated in torch).

bwd_ws_pre_kernel   before bwd_ws_kernel: Delta, lse and Delta per 64-row tile as one TMA box, RoPE(q), the float32 dq
                    accumulator's start (0, or dq's self term where bwd_dq_post_kernel finishes dq)
bwd_dq_post_kernel  after it, where the backward scan does not finish dq (the two-level scans):
                    dq = RoPE^T(scale * the float32 accumulator)
Notation and RoPE on head-dim halves as impls/rat/kernels (common.py); lse is base 2.
"""
from __future__ import annotations

import triton
import triton.language as tl

from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _rope, _rope_at, _rope_t, _store2


@triton.jit
def bwd_ws_pre_kernel(
    Q, O, KTR, VT, DO, COS, SIN, LSE, DELTA, LD, QR, DQACC,
    s_b, s_t, s_h, o_b, o_t, o_h, T, Tp, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, TILE: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, SELF: tl.constexpr,
    QR_OUT: tl.constexpr,
):
    """The query-side pass before rat/gluon's backward kernel (impls/rat/gluon/backward.py). Grid (Tp / BM, B*H),
    BM rows per program (a divisor of TILE): rows padded to Tp, a multiple of that kernel's TILE-row query tile.
    Per row t < T: Delta = rowsum(dO * o) (to DELTA (B*H, T), read by the backward scan, and LD), lse (LD:
    (B*H, Tp / TILE, 2, TILE), per tile its lse row then
    its Delta row, one TMA box of that kernel's ring), with QR_OUT RoPE_c(q) (QR (B*H, Tp, D), the input
    dtype) and the start of DQACC ((B*H, Tp, D), float32: the accumulator the Gluon kernel adds sum_j dS_tj K_j to):
    with SELF dq's self term dS_t,self RoPE(kt_t) (for bwd_dq_post_kernel), else 0 (the backward scan adds the self
    term: KTR and VT are not read). Rows T <= t < Tp: lse +inf and Delta 0 (so P = dS = 0 there), q and DQACC 0.
    KTR, VT, DO, O share the strides o_*; Q has s_*."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid * BM + tl.arange(0, BM)
    valid = rows < T
    vm = valid[:, None]
    d = tl.arange(0, HALF)
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + d[None, :]
    qptr = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + rows.to(tl.int64)[:, None] * s_t + d[None, :]
    do1, do2 = _load2(DO + optr, vm, 0.0, HALF)
    o1, o2 = _load2(O + optr, vm, 0.0, HALF)
    delta = tl.sum(o1 * do1 + o2 * do2, 1)
    if QR_OUT or SELF:
        q1, q2 = _load2(Q + qptr, vm, 0.0, HALF)
        if ROPE:
            q1, q2 = _rope_at(q1, q2, COS, SIN, rows // L, d, vm, HALF)
    lse = tl.load(LSE + bh.to(tl.int64) * T + rows, mask=valid, other=float("inf"))
    if SELF:
        kr1, kr2 = _load2(KTR + optr, vm, 0.0, HALF)
        vt1, vt2 = _load2(VT + optr, vm, 0.0, HALF)
        p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
        ds_s = p_s * (tl.sum(do1 * vt1 + do2 * vt2, 1) - delta)
        a1, a2 = ds_s[:, None] * kr1, ds_s[:, None] * kr2
    else:
        a1 = tl.zeros([BM, HALF], tl.float32)
        a2 = a1
    tl.store(DELTA + bh.to(tl.int64) * T + rows, delta, mask=valid)
    pad = bh.to(tl.int64) * Tp + rows
    ldp = (bh.to(tl.int64) * (Tp // TILE) + rows // TILE) * (2 * TILE) + rows % TILE
    tl.store(LD + ldp, lse)
    tl.store(LD + ldp + TILE, delta)
    rptr = pad[:, None] * (2 * HALF) + d[None, :]
    if QR_OUT:
        _store2(QR + rptr, q1, q2, None, HALF)
    _store2(DQACC + rptr, a1, a2, None, HALF)


@triton.jit
def bwd_dq_post_kernel(
    DQ, DQACC, COS, SIN, o_b, o_t, o_h, T, Tp, H, scale,
    L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
):
    """dq = RoPE_c^T(scale * DQACC) for rows t < T, in DQ's dtype and strides o_* (grid (cdiv(T, BM), B*H)):
    the end of rat/gluon's backward, after its kernel has added sum_j dS_tj K_j to bwd_ws_pre_kernel's self
    term. DQ comes first: the static gate names a launch by its first pointer's dtype (the input's)."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    rows = pid * BM + tl.arange(0, BM)
    vm = (rows < T)[:, None]
    d = tl.arange(0, HALF)
    rptr = (bh.to(tl.int64) * Tp + rows)[:, None] * (2 * HALF) + d[None, :]
    a1, a2 = _load2(DQACC + rptr, vm, 0.0, HALF)
    a1, a2 = a1 * scale, a2 * scale
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, rows // L, rows < T, d[None, :], HALF)
        a1, a2 = _rope_t(a1, a2, cos, sin)
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + d[None, :]
    _store2(DQ + optr, a1, a2, vm, HALF)


@triton.jit
def _affine(a1, b1, c1, a2, b2, c2):
    """Composition of the row maps x -> a x + b (the state b, c of two recurrences sharing the gate a): row 1's map,
    then row 2's."""
    return a1 * a2, a2 * b1 + b2, a2 * c1 + c2


@triton.jit
def _affine_rev(a1, b1, c1, a2, b2, c2):
    """The reverse recurrence g_t = b_t + a_t g_(t+1) (b, c: two of them sharing a) for
    tl.associative_scan(reverse=True), whose combine gets the rows after first (a1, b1, c1: their accumulated map)
    and then the row before them."""
    return a1 * a2, b2 + a2 * b1, c2 + a2 * c1


@triton.jit
def bwd_scan_rows_kernel(
    QR, K, V, F, DO, LSE, DELTA, COS, SIN, DKE, DVE, DQACC, DK, DV, DF, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, Tp, scale, scale2,
    L: tl.constexpr, R: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
):
    """rat/gluon's backward scan with whole chunks in registers (b6): grid (cdiv(C, R // L), B*H), R // L chunks of L
    rows per program (R a power of two >= L). kt and vt are formed here from k, v, f (no read of the forward's per-row
    states): the states before each row kp, vp by one segmented scan of the rows' maps x -> f x + (1 - f) x_in,
    kt = f kp + (1 - f) k. Then, per row, the self term (p_self, dS_self from RoPE(q) QR (B*H, Tp, D), dO, lse,
    Delta), dq = RoPE^T(scale DQACC + dS_self RoPE(kt)), the direct gradients of kt, vt (plus the chunk ends' dK_c,
    dV_c at l = L - 1), g by one reverse segmented scan g_t = d_t + f_(t+1) g_(t+1), and dk = (1 - f) g_k,
    dv = (1 - f) g_v, df = g_k (kp - k) + g_v (vp - v). K, V, F have strides s_*; DO, DK, DV, DF, DQ o_*."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    NCP: tl.constexpr = R // L
    r = tl.arange(0, R)
    l = r % L
    rows = pid * (NCP * L) + r
    rv = (r < NCP * L) & (rows < T)
    m = rv[:, None]
    d2 = tl.arange(0, HALF)[None, :]
    ptr = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + rows.to(tl.int64)[:, None] * s_t + d2
    optr = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + rows.to(tl.int64)[:, None] * o_t + d2
    # states before each row: segmented scan of the previous rows' maps (none at l = 0)
    pm = m & (l > 0)[:, None]
    fp1, fp2 = _load2(F + ptr - s_t, pm, 0.0, HALF)
    kq1, kq2 = _load2(K + ptr - s_t, pm, 0.0, HALF)
    vq1, vq2 = _load2(V + ptr - s_t, pm, 0.0, HALF)
    _, kp1, vp1 = tl.associative_scan((fp1, (1.0 - fp1) * kq1, (1.0 - fp1) * vq1), 0, _affine)
    _, kp2, vp2 = tl.associative_scan((fp2, (1.0 - fp2) * kq2, (1.0 - fp2) * vq2), 0, _affine)
    f1, f2 = _load2(F + ptr, m, 0.0, HALF)
    k1, k2 = _load2(K + ptr, m, 0.0, HALF)
    v1, v2 = _load2(V + ptr, m, 0.0, HALF)
    kr1 = f1 * kp1 + (1.0 - f1) * k1
    kr2 = f2 * kp2 + (1.0 - f2) * k2
    vt1 = f1 * vp1 + (1.0 - f1) * v1
    vt2 = f2 * vp2 + (1.0 - f2) * v2
    kp1 -= k1  # kt_(l-1) - k, for df
    kp2 -= k2
    vp1 -= v1
    vp2 -= v2
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, rows // L, rv, d2, HALF)
        kr1, kr2 = _rope(kr1, kr2, cos, sin)
    else:
        cos = 1.0
        sin = 0.0
    # self term
    r_off = bh.to(tl.int64) * T
    qp = (bh.to(tl.int64) * Tp + rows)[:, None] * (2 * HALF) + d2
    q1, q2 = _load2(QR + qp, m, 0.0, HALF)
    do1, do2 = _load2(DO + optr, m, 0.0, HALF)
    lse = tl.load(LSE + r_off + rows, mask=rv, other=0.0)
    delta = tl.load(DELTA + r_off + rows, mask=rv, other=0.0)
    p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
    ds_s = scale * p_s * (tl.sum(do1 * vt1 + do2 * vt2, 1) - delta)
    a1, a2 = _load2(DQACC + qp, m, 0.0, HALF)
    a1 = a1 * scale + ds_s[:, None] * kr1
    a2 = a2 * scale + ds_s[:, None] * kr2
    if ROPE:
        a1, a2 = _rope_t(a1, a2, cos, sin)
    _store2(DQ + optr, a1, a2, m, HALF)
    # direct gradients of RoPE(kt) and vt, the chunk ends' at l = L - 1
    em = m & (l == L - 1)[:, None]
    eptr = (bh.to(tl.int64) * C + rows // L)[:, None] * (2 * HALF) + d2
    e1, e2 = _load2(DKE + eptr, em, 0.0, HALF)
    dk1 = ds_s[:, None] * q1 + e1
    dk2 = ds_s[:, None] * q2 + e2
    if ROPE:
        dk1, dk2 = _rope_t(dk1, dk2, cos, sin)
    e1, e2 = _load2(DVE + eptr, em, 0.0, HALF)
    dv1 = p_s[:, None] * do1 + e1
    dv2 = p_s[:, None] * do2 + e2
    # g_t = d_t + f_(t+1) g_(t+1) within the chunk
    nm = m & (l < L - 1)[:, None] & (rows + 1 < T)[:, None]
    fn1, fn2 = _load2(F + ptr + s_t, nm, 0.0, HALF)
    _, gk1, gv1 = tl.associative_scan((fn1, dk1, dv1), 0, _affine_rev, reverse=True)
    _, gk2, gv2 = tl.associative_scan((fn2, dk2, dv2), 0, _affine_rev, reverse=True)
    _store2(DK + optr, (1.0 - f1) * gk1, (1.0 - f2) * gk2, m, HALF)
    _store2(DV + optr, (1.0 - f1) * gv1, (1.0 - f2) * gv2, m, HALF)
    _store2(DF + optr, gk1 * kp1 + gv1 * vp1, gk2 * kp2 + gv2 * vp2, m, HALF)
