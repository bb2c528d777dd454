"""Triton kernels for RAT (docs/rat-spec.md): intra-chunk scan, chunk-index RoPE and a flash-style
softmax over earlier chunks' final states with the self term merged exactly into the same softmax.

Notation: token t = (c, l), c = t // L; kt, vt are the scanned states (computed in float32); K_j =
RoPE_j(kt at the end of chunk j), V_j = vt at the end of chunk j ("chunk ends", compact (B, H, C, D)).
Every kernel works on the head dim in two halves [0, D/2) and [D/2, D), so rotate-half RoPE needs no
shuffles. Logits are kept in base 2 (scale2 = scale * log2(e)); lse is base 2 too.

Kernels (launchers in impls/rat/triton.py):
  scan_kernel      grid (ceil(C / NC), B*H): NC chunks side by side, a loop over their L rows carrying
                   the float32 states; writes RoPE_c(kt) and vt per token (input dtype), the chunk ends
                   K_j, V_j, and optionally the pre-RoPE float32 state at token T-1 (decode state).
  fwd_kernel       grid (ceil(T / BM), B*H): BM query rows; the self term q.RoPE(kt_t) starts the
                   online softmax (m = s_self, l = 1, acc = vt), then the flash loop over chunk ends
                   j < c(t) (unmasked blocks, then the few that need the mask); writes o and lse.
                   fwd_fullv_kernel: the same with V and the accumulator over the full head dim.
  bwd_pre_kernel   Delta = rowsum(dO * o) and RoPE'd q (input dtype) for the dK/dV kernel.
  bwd_dkv_kernel   grid (ceil(C / BN), B*H): dK_j, dV_j over all query rows t with c(t) > j (optionally
                   also dq's share, float32 atomics); bwd_dkv_full_kernel: over the full head dim.
  bwd_dq_kernel    grid (ceil(T / BM), B*H): dq over chunk ends, then the self term's part of dq.
  bwd_scan_kernel  grid (ceil(C / NC), B*H): reverse loop over each chunk: the direct gradients of kt
                   (pre-RoPE) and vt (self term, chunk-end dK/dV at l = L-1), g_l = d_l + f_{l+1} g_{l+1},
                   dk = (1-f) g_k, dv = (1-f) g_v, df = g_k (kt_{l-1} - k) + g_v (vt_{l-1} - v).
  step_kernel      one decode token: running-state update, slot write, softmax over slots 0..c,
                   optionally split over slots with an in-kernel merge (one launch, graph-capturable).
  lscan_*, bwd_lscan_*  (section 5) two-level versions of the two scans for long chunks (chunk_size = T):
                   sub-blocks of S rows in parallel, a carry scan across them, then each re-run.
  EXP2_POLY        constexpr of fwd, bwd_dkv, bwd_dkv_early, bwd_dq and bwd_dq_pre (default 0.0 = off; v9
                   experiment): that fraction of each softmax tile's exponentials on the FMA pipe as a
                   polynomial (impls/exp2_fma.py) instead of MUFU.EX2.
"""
from __future__ import annotations

import triton
import triton.language as tl

# the flash-attention inner loops and the decode loop/merge are the core shared with full/swa triton
from impls.attention_core import LOG2E, decode_finish, decode_inner, dkv_inner, dq_inner, fwd_inner
from impls.exp2_fma import exp2_split

__all__ = [
    "LOG2E",
    "bwd_dkv_full_kernel",
    "bwd_dkv_kernel",
    "bwd_dq_kernel",
    "bwd_lscan_kernel",
    "bwd_lscan_sum_kernel",
    "bwd_pre_kernel",
    "bwd_scan_kernel",
    "fwd_fullv_kernel",
    "fwd_kernel",
    "lscan_carry_kernel",
    "lscan_kernel",
    "lscan_sum_kernel",
    "scan_kernel",
    "step_kernel",
]


@triton.jit
def _rope(x1, x2, cos, sin):
    return x1 * cos - x2 * sin, x2 * cos + x1 * sin


@triton.jit
def _rope_at(x1, x2, COS, SIN, cid, offs_d, vm, HALF: tl.constexpr):
    """_rope of the rows' halves x1, x2 ([BM, HALF]) at table rows cid (their chunk ids); rows
    outside vm read cos 1, sin 0."""
    tptr = cid[:, None] * HALF + offs_d[None, :]
    cos = tl.load(COS + tptr, mask=vm, other=1.0)
    sin = tl.load(SIN + tptr, mask=vm, other=0.0)
    return _rope(x1, x2, cos, sin)


@triton.jit
def _rope_t(d1, d2, cos, sin):
    # transpose of _rope (the inverse rotation): gradient w.r.t. the un-rotated halves
    return d1 * cos + d2 * sin, d2 * cos - d1 * sin


@triton.jit
def _maybe_rope(x1, x2, cos, sin, ROPE: tl.constexpr):
    if ROPE:
        x1, x2 = _rope(x1, x2, cos, sin)
    return x1, x2


# Helpers of the scans (scan_kernel, bwd_scan_kernel and the two-level scans of section 5); pointers p
# address a [N, HALF] block of rows, p + HALF their second half. The per-row helpers (_scan_step,
# _bwd_direct, _bwd_scan_step) call no helper of their own but _rope / _rope_t, and take pointers, not
# bases and offsets, in the order the kernels had them: with a nested helper (e.g. _load2 in _scan_step)
# or a split of _bwd_scan_step in two, the same PTX instructions came with other inlining line info and
# ptxas scheduled some configurations of scan_kernel / bwd_scan_kernel differently (the sm_90 SASS of
# the pre-existing kernels is kept byte-identical: scripts/sass_rat_triton.py --dump, NOTES.md v7).
@triton.jit
def _load2(p, m, other, HALF: tl.constexpr):
    """Both halves at p as float32; rows outside m read `other`."""
    x1 = tl.load(p, mask=m, other=other).to(tl.float32)
    x2 = tl.load(p + HALF, mask=m, other=other).to(tl.float32)
    return x1, x2


@triton.jit
def _store2(p, x1, x2, m, HALF: tl.constexpr):
    """Both halves to p in its element type."""
    tl.store(p, x1.to(p.dtype.element_ty), mask=m)
    tl.store(p + HALF, x2.to(p.dtype.element_ty), mask=m)


@triton.jit
def _cos_sin(COS, SIN, idx, m, d2, HALF: tl.constexpr):
    """RoPE tables at rows idx ([N], chunk ids; d2 = arange(HALF)[None, :]); rows outside m ([N]) read
    cos 1, sin 0."""
    tptr = idx[:, None] * HALF + d2
    cos = tl.load(COS + tptr, mask=m[:, None], other=1.0)
    sin = tl.load(SIN + tptr, mask=m[:, None], other=0.0)
    return cos, sin


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
    dv = p_self dO; also kr and dS_self (for the fused-dq finish)."""
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
def _dq_self(DQA, DQ, aptr, optr, m, ds_s, kr1, kr2, scale, cos, sin, HALF: tl.constexpr, ROPE: tl.constexpr):
    """Fused dq: dq = RoPE^T(scale * sum_j dS K_j (accumulated by the dK/dV kernel) + dS_self kt)."""
    dq1 = scale * tl.load(DQA + aptr, mask=m, other=0.0) + ds_s[:, None] * kr1
    dq2 = scale * tl.load(DQA + aptr + HALF, mask=m, other=0.0) + ds_s[:, None] * kr2
    if ROPE:
        dq1, dq2 = _rope_t(dq1, dq2, cos, sin)
    _store2(DQ + optr, dq1, dq2, m, HALF)


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


# ------------------------------------------------------------------------------------------------
# 1. scan
@triton.jit
def scan_kernel(
    K, V, F, COS, SIN, KTR, VT, KE, VE, STK, STV,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, n_rows,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, WRITE_LAST: tl.constexpr,
):
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    cid = pid * NC + tl.arange(0, NC)
    cm = cid < C
    offs_d = tl.arange(0, HALF)
    d2 = offs_d[None, :]
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, cid, cm, d2, HALF)
    else:
        cos = 1.0
        sin = 0.0
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
        kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, ROPE)
        optr = out_off + rows[:, None] * o_t + d2
        _store2(KTR + optr, kr1, kr2, m, HALF)
        _store2(VT + optr, vt1, vt2, m, HALF)
    # chunk ends (for a partial last chunk: the state at T - 1, as masked rows left it unchanged)
    eptr = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h + cid.to(tl.int64)[:, None] * e_c + d2
    em = cm[:, None]
    _store2(KE + eptr, kr1, kr2, em, HALF)
    _store2(VE + eptr, vt1, vt2, em, HALF)
    if WRITE_LAST:
        lm = (cid == (T - 1) // L)[:, None]
        sptr = bh.to(tl.int64) * 2 * HALF + d2 + 0 * cid[:, None]
        _store2(STK + sptr, kt1, kt2, lm, HALF)
        _store2(STV + sptr, vt1, vt2, lm, HALF)


# ------------------------------------------------------------------------------------------------
# 2. forward attention
@triton.jit
def fwd_kernel(
    Q, KTR, VT, COS, SIN, KE, VE, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, STORE_LSE: tl.constexpr, PREC: tl.constexpr,
    EXP2_POLY: tl.constexpr = 0.0,
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
                                     0, lo, scale2, BN, HALF, False, PREC, False, EXP2_POLY)
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, e_c, crow, crow,
                                     lo, hi, scale2, BN, HALF, True, PREC, False, EXP2_POLY)
    inv = 1.0 / l_i
    o1 = acc1 * inv[:, None]
    o2 = acc2 * inv[:, None]
    tl.store(O + o_base + optr, o1.to(O.dtype.element_ty), mask=vm)
    tl.store(O + o_base + optr + HALF, o2.to(O.dtype.element_ty), mask=vm)
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_i + tl.log2(l_i), mask=valid)


@triton.jit
def _fwd_inner_fullv(acc, l_i, m_i, qb1, qb2, KEb, VEb, koff, voff, e_c, crow, lo, hi, scale2,
                     BN: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr, PREC: tl.constexpr):
    # as attention_core.fwd_inner, with V and the accumulator over the full head dim (one P.V product, N = D)
    for start in range(lo, hi, BN):
        kp = KEb + start * e_c + koff
        vp = VEb + start * e_c + voff
        if MASK:
            offs_n = start + tl.arange(0, BN)
            nm = (offs_n < hi)[:, None]
            k1 = tl.load(kp, mask=nm, other=0.0)
            k2 = tl.load(kp + HALF, mask=nm, other=0.0)
            v = tl.load(vp, mask=nm, other=0.0)
        else:
            k1 = tl.load(kp)
            k2 = tl.load(kp + HALF)
            v = tl.load(vp)
        s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
        s = tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)
        s = s * scale2
        if MASK:
            s = tl.where(offs_n[None, :] < crow[:, None], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=PREC)
        m_i = m_new
    return acc, l_i, m_i


@triton.jit
def fwd_fullv_kernel(
    Q, KTR, VT, COS, SIN, KE, VE, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, STORE_LSE: tl.constexpr, PREC: tl.constexpr,
):
    """fwd_kernel with V, the accumulator and o over the full head dim."""
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
    offs_f = tl.arange(0, 2 * HALF)
    r = tl.arange(0, BM)
    Qt = Q + (b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    crow = rows // L
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        q1, q2 = _rope_at(q1, q2, COS, SIN, crow, offs_d, vm, HALF)
    o_base = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + t0.to(tl.int64) * o_t
    optr = r[:, None] * o_t + offs_d[None, :]
    kr1 = tl.load(KTR + o_base + optr, mask=vm, other=0.0).to(tl.float32)
    kr2 = tl.load(KTR + o_base + optr + HALF, mask=vm, other=0.0).to(tl.float32)
    m_i = tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2
    l_i = tl.full([BM], 1.0, tl.float32)
    fptr = r[:, None] * o_t + offs_f[None, :]
    acc = tl.load(VT + o_base + fptr, mask=vm, other=0.0).to(tl.float32)
    qb1 = q1.to(KE.dtype.element_ty)
    qb2 = q2.to(KE.dtype.element_ty)
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    koff = tl.arange(0, BN)[:, None] * e_c + offs_d[None, :]
    voff = tl.arange(0, BN)[:, None] * e_c + offs_f[None, :]
    acc, l_i, m_i = _fwd_inner_fullv(acc, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, voff, e_c, crow,
                                     0, lo, scale2, BN, HALF, False, PREC)
    acc, l_i, m_i = _fwd_inner_fullv(acc, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, voff, e_c, crow,
                                     lo, hi, scale2, BN, HALF, True, PREC)
    o = acc * (1.0 / l_i)[:, None]
    tl.store(O + o_base + fptr, o.to(O.dtype.element_ty), mask=vm)
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_i + tl.log2(l_i), mask=valid)


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
        q1, q2 = _rope_at(q1, q2, COS, SIN, rows // L, offs_d, vm, HALF)
    rptr = bh.to(tl.int64) * T * 2 * HALF + rows.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(QR + rptr, q1.to(QR.dtype.element_ty), mask=vm)
    tl.store(QR + rptr + HALF, q2.to(QR.dtype.element_ty), mask=vm)


@triton.jit
def bwd_dkv_kernel(
    QR, DO, LSE, DELTA, KE, VE, DKE, DVE, DQA,
    o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, PREC: tl.constexpr,
    REVERSE: tl.constexpr, DQ_ATOMIC: tl.constexpr, EXP2_POLY: tl.constexpr = 0.0,
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
    DQAb = DQA + bh.to(tl.int64) * T * 2 * HALF
    dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, 2 * HALF, o_t,
                                   offs_n, mid, T, T, scale2, 0, L, BM, HALF, False, PREC, REVERSE, DQ_ATOMIC, True,
                                   False, EXP2_POLY)
    dk1, dk2, dv1, dv2 = dkv_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, 2 * HALF, o_t,
                                   offs_n, lo, mid, T, scale2, 0, L, BM, HALF, True, PREC, REVERSE, DQ_ATOMIC, True,
                                   False, EXP2_POLY)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)


@triton.jit
def bwd_dkv_full_kernel(
    QR, DO, LSE, DELTA, KE, VE, DKE, DVE,
    o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, D: tl.constexpr, PREC: tl.constexpr,
    REVERSE: tl.constexpr,
):
    """bwd_dkv_kernel over the full head dim: every operand (RoPE'd q, RoPE'd chunk ends) is read
    already rotated, so no halves are needed; products have N = D."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    j0 = pid * BN
    offs_n = j0 + tl.arange(0, BN)
    nm = (offs_n < C)[:, None]
    offs_f = tl.arange(0, D)
    e_off = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h
    kptr = e_off + offs_n.to(tl.int64)[:, None] * e_c + offs_f[None, :]
    k = tl.load(KE + kptr, mask=nm, other=0.0)
    v = tl.load(VE + kptr, mask=nm, other=0.0)
    dk = tl.zeros([BN, D], tl.float32)
    dv = tl.zeros([BN, D], tl.float32)
    lo = (((j0 + 1) * L) // BM) * BM
    mid = tl.minimum((((j0 + BN) * L + BM - 1) // BM) * BM, ((T + BM - 1) // BM) * BM)
    QRb = QR + bh.to(tl.int64) * T * D
    DOb = DO + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    LSEb = LSE + bh.to(tl.int64) * T
    DELTAb = DELTA + bh.to(tl.int64) * T
    r = tl.arange(0, BM)
    qoff = r[:, None] * D + offs_f[None, :]
    ooff = r[:, None] * o_t + offs_f[None, :]
    for phase in tl.static_range(2):
        if phase == 0:  # rows that see every key of the block (no mask), then the masked rows
            p_lo = mid
            p_hi = T
        else:
            p_lo = lo
            p_hi = mid
        n = (p_hi - p_lo + BM - 1) // BM
        if REVERSE:
            first = p_lo + (n - 1) * BM
            step = -BM
        else:
            first = p_lo
            step = BM
        qp = QRb + first.to(tl.int64) * D + qoff
        op = DOb + first.to(tl.int64) * o_t + ooff
        for i in range(n):
            rows = first + i * step + r
            vm = (rows < T)[:, None]
            qr = tl.load(qp, mask=vm, other=0.0)
            do = tl.load(op, mask=vm, other=0.0)
            lse = tl.load(LSEb + rows, mask=rows < T, other=float("inf"))
            delta = tl.load(DELTAb + rows, mask=rows < T, other=0.0)
            pt = tl.exp2(tl.dot(k, tl.trans(qr), input_precision=PREC) * scale2 - lse[None, :])
            if phase == 1:
                pt = tl.where(offs_n[:, None] < (rows // L)[None, :], pt, 0.0)
            dv = tl.dot(pt.to(do.dtype), do, dv, input_precision=PREC)
            dpt = tl.dot(v, tl.trans(do), input_precision=PREC)
            dst = (pt * (dpt - delta[None, :])).to(qr.dtype)
            dk = tl.dot(dst, qr, dk, input_precision=PREC)
            qp += step * D
            op += step * o_t
    dptr = bh.to(tl.int64) * C * D + offs_n.to(tl.int64)[:, None] * D + offs_f[None, :]
    tl.store(DKE + dptr, dk * scale, mask=nm)
    tl.store(DVE + dptr, dv, mask=nm)


@triton.jit
def bwd_dq_kernel(
    Q, KTR, VT, DO, COS, SIN, KE, VE, LSE, DELTA, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, PREC: tl.constexpr, EXP2_POLY: tl.constexpr = 0.0,
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
                        lo, scale2, BN, HALF, False, PREC, False, EXP2_POLY)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, lo,
                        hi, scale2, BN, HALF, True, PREC, False, EXP2_POLY)
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
def bwd_scan_kernel(
    Q, K, V, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, DK, DV, DF, DQA, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, n_rows, scale, scale2,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, FUSED_DQ: tl.constexpr,
):
    """Direct gradients of kt, vt per row (the self term: dS_self scale q_r and p_self dO, plus dK_c,
    dV_c at l = L-1), then the reverse scan g_l = d_l + f_{l+1} g_{l+1} and dk, dv, df.
    Q, K, V, F have strides s_*; KTR, VT, DO, DK, DV, DF have o_*. The state before row l is read back
    from the forward's per-token states (un-rotated: one rotation per chunk)."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    cid = pid * NC + tl.arange(0, NC)
    cm = cid < C
    offs_d = tl.arange(0, HALF)
    d2 = offs_d[None, :]
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, cid, cm, d2, HALF)
    else:
        cos = 1.0
        sin = 0.0
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
        # self term of row l
        dk1, dk2, dv1, dv2, kr1, kr2, ds_s = _bwd_direct(Q, KTR, VT, DO, LSE, DELTA, ptr, optr, rows, m, rv, r_off,
                                                         cos, sin, scale, scale2, HALF, ROPE)
        if FUSED_DQ:
            _dq_self(DQA, DQ, (r_off + rows)[:, None] * (2 * HALF) + d2, optr, m, ds_s, kr1, kr2, scale, cos, sin,
                     HALF, ROPE)
        if l == L - 1:
            dk1 += dke1
            dk2 += dke2
            dv1 += dve1
            dv2 += dve2
        gk1, gk2, gv1, gv2, fn1, fn2 = _bwd_scan_step(K, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l, dk1, dk2,
                                                      dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin, HALF, ROPE)


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
    acc1, acc2, l_i, m_i = decode_inner(acc1, acc2, l_i, m_i, q1, q2, KC, VC, c_off, c_c, lo, hi, c, scale2,
                                        BN, HALF, False)
    o_ptr = O + b.to(tl.int64) * o_b + h.to(tl.int64) * o_h + offs_d
    decode_finish(o_ptr, acc1, acc2, l_i, m_i, WS, CNT, bh, sp, HALF, SPLITS)


# ------------------------------------------------------------------------------------------------
# 5. two-level scans for long chunks (v7; launched instead of scan_kernel / bwd_scan_kernel when a
# chunk is long and there are few chunks in all, e.g. chunk_size = T: the "RNN" of the RAT paper)
#
# Each chunk is cut into NS = ceil(min(L, T) / S) sub-blocks of S rows (the last one may hold fewer
# rows: L % S != 0, or a partial last chunk in prefill); sub-block sb = c * NS + j (chunk c, j-th
# sub-block) covers chunk-local rows [j S, min((j + 1) S, L)). The recurrences are linear:
#   forward  s_t = f_t s_{t-1} + (1 - f_t) x_t: a sub-block started from zero gives (P, s_loc) with
#            P = prod f over its rows; the true end state is s_loc + P * s_in.
#   backward g_l = d_l + f_{l+1} g_{l+1}; with h_l = f_l g_l (what row l hands to row l-1):
#            h_first = H_loc + P * h_in, H_loc = f_first * g_loc(first row) from h_in = 0.
# Three launches each way: (1) per sub-block summaries (P, s_loc for k and v) into float32
# (B*H, C*NS, D) buffers, (2) lscan_carry_kernel: the inclusive scan of the summaries across the
# sub-blocks of each chunk (in place; reverse order for the backward), (3) each sub-block re-run from
# its carry (the inclusive summary of sub-block j-1, or j+1 backward; zero at the chunk's edge),
# writing exactly what scan_kernel / bwd_scan_kernel write. Products of f may underflow to 0 (no
# division anywhere). The inner loops are those of scan_kernel / bwd_scan_kernel with a per-lane
# chunk-local row index; NB sub-blocks are side by side in one program.
@triton.jit
def _lin_combine(p1, a1, b1, p2, a2, b2):
    # (p1, a1) then (p2, a2): x -> p2 (p1 x + a1) + a2, for the k and v parts (shared p)
    return p1 * p2, p2 * a1 + a2, p2 * b1 + b2


@triton.jit
def _sub_blocks(NSB, NS, L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr):
    """The program's NB sub-blocks sb (sm: sb < NSB), their chunk c, index j in the chunk, first
    chunk-local row l0 and first token row0."""
    sb = tl.program_id(0) * NB + tl.arange(0, NB)
    sm = sb < NSB
    c = sb // NS
    j = sb - c * NS
    l0 = j * S
    row0 = c.to(tl.int64) * L + l0
    return sb, sm, c, j, l0, row0


@triton.jit
def lscan_sum_kernel(
    K, V, F, SP, SK, SV,
    s_b, s_t, s_h, T, H, NSB, NS, n_rows,
    L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr, HALF: tl.constexpr,
):
    """Grid (ceil(NSB / NB), B*H). Forward summaries of NB sub-blocks: P = prod f, kt and vt scanned
    from a zero state over the sub-block's rows (masked rows: f = 1, x = 0, nothing changes)."""
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    sb, sm, _c, _j, l0, row0 = _sub_blocks(NSB, NS, L, S, NB)
    d2 = tl.arange(0, HALF)[None, :]
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    kt1 = tl.zeros([NB, HALF], tl.float32)
    kt2 = tl.zeros([NB, HALF], tl.float32)
    vt1 = tl.zeros([NB, HALF], tl.float32)
    vt2 = tl.zeros([NB, HALF], tl.float32)
    p1 = tl.full([NB, HALF], 1.0, tl.float32)
    p2 = tl.full([NB, HALF], 1.0, tl.float32)
    for r in range(n_rows):  # n_rows == S
        rows = row0 + r
        m = (sm & (l0 + r < L) & (rows < T))[:, None]
        kt1, kt2, vt1, vt2, f1, f2 = _scan_step(K, V, F, in_off + rows[:, None] * s_t + d2, m, kt1, kt2, vt1, vt2,
                                                HALF)
        p1 = p1 * f1
        p2 = p2 * f2
    sptr = (bh.to(tl.int64) * NSB + sb)[:, None] * (2 * HALF) + d2
    em = sm[:, None]
    _store2(SP + sptr, p1, p2, em, HALF)
    _store2(SK + sptr, kt1, kt2, em, HALF)
    _store2(SV + sptr, vt1, vt2, em, HALF)


@triton.jit
def lscan_carry_kernel(
    SP, SK, SV, NSB, NS,
    D: tl.constexpr, BD: tl.constexpr, CB: tl.constexpr, REVERSE: tl.constexpr,
):
    """Grid (C * D / BD, B*H): chunk c, head-dim slice of BD. Inclusive scan of the summaries
    (P, a, b) of the chunk's NS sub-blocks (first to last, or last to first with REVERSE), CB at a time
    (tl.associative_scan, then the carry of the blocks before): a_j <- a_j + P_j a_(j-1) (b alike),
    written over SK, SV. SP is only read."""
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    c = pid // (D // BD)
    offs_d = (pid % (D // BD)) * BD + tl.arange(0, BD)
    offs_i = tl.arange(0, CB)
    base = (bh.to(tl.int64) * NSB + c * NS) * D
    ca = tl.zeros([BD], tl.float32)
    cb = tl.zeros([BD], tl.float32)
    for blk in range(0, NS, CB):
        i = blk + offs_i
        if REVERSE:
            j = NS - 1 - i
        else:
            j = i
        m = (i < NS)[:, None]
        ptr = base + j[:, None] * D + offs_d[None, :]
        p = tl.load(SP + ptr, mask=m, other=1.0)
        a = tl.load(SK + ptr, mask=m, other=0.0)
        bb = tl.load(SV + ptr, mask=m, other=0.0)
        p, a, bb = tl.associative_scan((p, a, bb), 0, _lin_combine)
        a = a + p * ca[None, :]
        bb = bb + p * cb[None, :]
        tl.store(SK + ptr, a, mask=m)
        tl.store(SV + ptr, bb, mask=m)
        last = (offs_i == CB - 1)[:, None]  # masked entries (P = 1, 0) keep the last valid value
        ca = tl.sum(tl.where(last, a, 0.0), 0)
        cb = tl.sum(tl.where(last, bb, 0.0), 0)


@triton.jit
def lscan_kernel(
    K, V, F, COS, SIN, KTR, VT, KE, VE, STK, STV, SK, SV,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, NSB, NS, n_rows,
    L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
    WRITE_LAST: tl.constexpr,
):
    """Grid (ceil(NSB / NB), B*H). scan_kernel over NB sub-blocks, each started from its carry (the
    scanned summary of the sub-block before in the chunk; zero for the first): writes RoPE_c(kt), vt
    per token; the chunk's last sub-block writes the chunk end K_c, V_c; with WRITE_LAST the sub-block
    holding token T-1 writes the float32 state there (decode)."""
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    sb, sm, c, j, l0, row0 = _sub_blocks(NSB, NS, L, S, NB)
    d2 = tl.arange(0, HALF)[None, :]
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, c, sm, d2, HALF)
    else:
        cos = 1.0
        sin = 0.0
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    cptr = (bh.to(tl.int64) * NSB + sb - 1)[:, None] * (2 * HALF) + d2
    cm = (sm & (j > 0))[:, None]
    kt1, kt2 = _load2(SK + cptr, cm, 0.0, HALF)
    vt1, vt2 = _load2(SV + cptr, cm, 0.0, HALF)
    # a sub-block with no row before T (partial last chunk) hands its carry on as the chunk end
    kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, ROPE)
    for r in range(n_rows):  # n_rows == S
        rows = row0 + r
        m = (sm & (l0 + r < L) & (rows < T))[:, None]
        ptr = in_off + rows[:, None] * s_t + d2
        kt1, kt2, vt1, vt2, _f1, _f2 = _scan_step(K, V, F, ptr, m, kt1, kt2, vt1, vt2, HALF)
        kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, ROPE)
        optr = out_off + rows[:, None] * o_t + d2
        _store2(KTR + optr, kr1, kr2, m, HALF)
        _store2(VT + optr, vt1, vt2, m, HALF)
    eptr = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h + c.to(tl.int64)[:, None] * e_c + d2
    em = (sm & (j == NS - 1))[:, None]
    _store2(KE + eptr, kr1, kr2, em, HALF)
    _store2(VE + eptr, vt1, vt2, em, HALF)
    if WRITE_LAST:
        c_last = (T - 1) // L
        lm = (sb == c_last * NS + ((T - 1) - c_last * L) // S)[:, None]
        sptr = bh.to(tl.int64) * 2 * HALF + d2 + 0 * sb[:, None]
        _store2(STK + sptr, kt1, kt2, lm, HALF)
        _store2(STV + sptr, vt1, vt2, lm, HALF)


@triton.jit
def _bwd_sub_setup(COS, SIN, DKE, DVE, bh, c, sm, l0, C, d2, L: tl.constexpr, S: tl.constexpr,
                   HALF: tl.constexpr, ROPE: tl.constexpr):
    """cos, sin of the sub-blocks' chunks and the chunk-end gradients dK_c, dV_c (read by the sub-block
    holding row L-1 only, zero elsewhere)."""
    if ROPE:
        cos, sin = _cos_sin(COS, SIN, c, sm, d2, HALF)
    else:
        cos = 1.0
        sin = 0.0
    em = (sm & (l0 + S > L - 1))[:, None]
    eptr = bh.to(tl.int64) * C * 2 * HALF + c.to(tl.int64)[:, None] * 2 * HALF + d2
    dke1, dke2 = _load2(DKE + eptr, em, 0.0, HALF)
    dve1, dve2 = _load2(DVE + eptr, em, 0.0, HALF)
    return cos, sin, dke1, dke2, dve1, dve2


@triton.jit
def _bwd_sub_row(Q, KTR, VT, DO, LSE, DELTA, i, sm, l0, row0, in_off, out_off, r_off, s_t, o_t, d2, T,
                 dke1, dke2, dve1, dve2, cos, sin, scale, scale2,
                 L: tl.constexpr, S: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr):
    """Row S-1-i of the sub-blocks (reverse order): its pointers and mask, and _bwd_direct's gradients
    with dK_c, dV_c added at the chunk's last row l = L-1."""
    l = l0 + (S - 1 - i)
    rows = row0 + (S - 1 - i)
    rv = sm & (l < L) & (rows < T)
    m = rv[:, None]
    ptr = in_off + rows[:, None] * s_t + d2
    optr = out_off + rows[:, None] * o_t + d2
    dk1, dk2, dv1, dv2, kr1, kr2, ds_s = _bwd_direct(Q, KTR, VT, DO, LSE, DELTA, ptr, optr, rows, m, rv, r_off,
                                                     cos, sin, scale, scale2, HALF, ROPE)
    end = (l == L - 1)[:, None]
    dk1 += tl.where(end, dke1, 0.0)
    dk2 += tl.where(end, dke2, 0.0)
    dv1 += tl.where(end, dve1, 0.0)
    dv2 += tl.where(end, dve2, 0.0)
    return l, rows, m, ptr, optr, dk1, dk2, dv1, dv2, kr1, kr2, ds_s


@triton.jit
def bwd_lscan_sum_kernel(
    Q, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, SP, SK, SV,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, NSB, NS, n_rows, scale, scale2,
    L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
):
    """Grid (ceil(NSB / NB), B*H). Backward summaries of NB sub-blocks: the reverse recurrence of
    bwd_scan_kernel over the sub-block's rows from h_in = 0 (direct gradients of the self term, dK_c
    and dV_c at l = L-1), P = prod f, and H = f_first * g_first for kt and vt."""
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    sb, sm, c, _j, l0, row0 = _sub_blocks(NSB, NS, L, S, NB)
    d2 = tl.arange(0, HALF)[None, :]
    cos, sin, dke1, dke2, dve1, dve2 = _bwd_sub_setup(COS, SIN, DKE, DVE, bh, c, sm, l0, C, d2, L, S, HALF, ROPE)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    r_off = bh.to(tl.int64) * T
    gk1 = tl.zeros([NB, HALF], tl.float32)
    gk2 = tl.zeros([NB, HALF], tl.float32)
    gv1 = tl.zeros([NB, HALF], tl.float32)
    gv2 = tl.zeros([NB, HALF], tl.float32)
    fn1 = gk1
    fn2 = gk1
    p1 = tl.full([NB, HALF], 1.0, tl.float32)
    p2 = tl.full([NB, HALF], 1.0, tl.float32)
    for i in range(n_rows):  # n_rows == S
        _l, _rows, m, ptr, _optr, dk1, dk2, dv1, dv2, _kr1, _kr2, _ds = _bwd_sub_row(
            Q, KTR, VT, DO, LSE, DELTA, i, sm, l0, row0, in_off, out_off, r_off, s_t, o_t, d2, T,
            dke1, dke2, dve1, dve2, cos, sin, scale, scale2, L, S, HALF, ROPE)
        gk1, gk2, gv1, gv2 = _bwd_recur(dk1, dk2, dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin, ROPE)
        f1, f2 = _load2(F + ptr, m, 0.0, HALF)
        p1 = p1 * tl.where(m, f1, 1.0)
        p2 = p2 * tl.where(m, f2, 1.0)
        fn1 = f1
        fn2 = f2
    sptr = (bh.to(tl.int64) * NSB + sb)[:, None] * (2 * HALF) + d2
    sm2 = sm[:, None]
    _store2(SP + sptr, p1, p2, sm2, HALF)
    _store2(SK + sptr, fn1 * gk1, fn2 * gk2, sm2, HALF)
    _store2(SV + sptr, fn1 * gv1, fn2 * gv2, sm2, HALF)


@triton.jit
def bwd_lscan_kernel(
    Q, K, V, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, DK, DV, DF, DQA, DQ, SK, SV,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, NSB, NS, n_rows, scale, scale2,
    L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
    FUSED_DQ: tl.constexpr,
):
    """Grid (ceil(NSB / NB), B*H). bwd_scan_kernel over NB sub-blocks, each started from its carry
    h_in (the scanned summary of the sub-block after it in the chunk; zero for the chunk's last):
    writes dk, dv, df (and dq with FUSED_DQ) exactly as bwd_scan_kernel does."""
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    sb, sm, c, j, l0, row0 = _sub_blocks(NSB, NS, L, S, NB)
    d2 = tl.arange(0, HALF)[None, :]
    cos, sin, dke1, dke2, dve1, dve2 = _bwd_sub_setup(COS, SIN, DKE, DVE, bh, c, sm, l0, C, d2, L, S, HALF, ROPE)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    r_off = bh.to(tl.int64) * T
    # carry h_in = f g of the row after the sub-block: start with g = h_in, "f of the row after" = 1
    cptr = (bh.to(tl.int64) * NSB + sb + 1)[:, None] * (2 * HALF) + d2
    cm = (sm & (j < NS - 1))[:, None]
    gk1, gk2 = _load2(SK + cptr, cm, 0.0, HALF)
    gv1, gv2 = _load2(SV + cptr, cm, 0.0, HALF)
    fn1 = tl.full([NB, HALF], 1.0, tl.float32)
    fn2 = fn1
    for i in range(n_rows):  # n_rows == S
        l, rows, m, ptr, optr, dk1, dk2, dv1, dv2, kr1, kr2, ds_s = _bwd_sub_row(
            Q, KTR, VT, DO, LSE, DELTA, i, sm, l0, row0, in_off, out_off, r_off, s_t, o_t, d2, T,
            dke1, dke2, dve1, dve2, cos, sin, scale, scale2, L, S, HALF, ROPE)
        if FUSED_DQ:
            _dq_self(DQA, DQ, (r_off + rows)[:, None] * (2 * HALF) + d2, optr, m, ds_s, kr1, kr2, scale, cos, sin,
                     HALF, ROPE)
        gk1, gk2, gv1, gv2, fn1, fn2 = _bwd_scan_step(K, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l[:, None],
                                                      dk1, dk2, dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin,
                                                      HALF, ROPE)


# ------------------------------------------------------------------------------------------------
# 6. forward attention with the next block's S = q K^T issued before this block's softmax (v8, opt-in:
#    RATTritonConfig.fwd_pipe). Added at the end of the file: the kernels above keep their source lines.
@triton.jit
def _pipe_softmax_pv(acc1, acc2, l_i, m_i, s, vp, ok, scale2, HALF: tl.constexpr, PREC: tl.constexpr,
                     GUARD: tl.constexpr):
    """One online-softmax step of _fwd_pipe_inner: block logits s (unscaled), values at vp. GUARD: the
    block may lie past the last one (ok False: values not loaded, s = -inf, so p = 0 and alpha = 1)."""
    if GUARD:
        v1 = tl.load(vp, mask=ok, other=0.0)
        v2 = tl.load(vp + HALF, mask=ok, other=0.0)
        s = tl.where(ok, s * scale2, float("-inf"))
    else:
        v1 = tl.load(vp)
        v2 = tl.load(vp + HALF)
        s = s * scale2
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    pb = p.to(v1.dtype)
    acc1 = tl.dot(pb, v1, acc1 * alpha[:, None], input_precision=PREC)
    acc2 = tl.dot(pb, v2, acc2 * alpha[:, None], input_precision=PREC)
    return acc1, acc2, l_i, m_new


@triton.jit
def _pipe_s(qb1, qb2, kp, ok, HALF: tl.constexpr, PREC: tl.constexpr, GUARD: tl.constexpr):
    # S = q K^T of one key block (two K = D/2 products); GUARD: keys masked off unless ok
    if GUARD:
        k1 = tl.load(kp, mask=ok, other=0.0)
        k2 = tl.load(kp + HALF, mask=ok, other=0.0)
    else:
        k1 = tl.load(kp)
        k2 = tl.load(kp + HALF)
    s = tl.dot(qb1, tl.trans(k1), input_precision=PREC)
    return tl.dot(qb2, tl.trans(k2), s, input_precision=PREC)


@triton.jit
def _fwd_pipe_inner(acc1, acc2, l_i, m_i, qb1, qb2, KEb, VEb, koff, e_c, n, scale2,
                    BN: tl.constexpr, HALF: tl.constexpr, PREC: tl.constexpr):
    """attention_core.fwd_inner (MASK=False) over the n full key blocks [0, n * BN), software-pipelined
    by one block (FlashAttention-3's intra-warpgroup overlap, Shah et al. 2024, section 3.2): S_{j+1} =
    q K_{j+1}^T is issued before the online softmax of S_j (MUFU exp2) and P_j V_j, so the exponentials
    of block j can run while the tensor cores form S_{j+1}. The loop is unrolled by two (blocks 2i,
    2i+1; S_A, S_B) so that no in-flight product's registers are copied at the back edge: with one
    block per iteration the loop-carried S_{j+1} is moved into S_j's registers while its wgmma is in
    flight, and ptxas serialises every wgmma (C7514, a wait after each 16-deep HGMMA; NOTES v8).
    What Triton then emits on sm_90: each S is two K = D/2 products; Triton waits (pendings = 0)
    after the first (retiring the previous S and P V) and leaves the second in flight through the
    other block's softmax. Prologue: S_0; epilogue: the last one or two blocks, guarded (a block past
    n - 1 gets s = -inf: p = 0, alpha = 1, as m is finite from the self term; n == 0 adds nothing)."""
    sa = _pipe_s(qb1, qb2, KEb + koff, n > 0, HALF, PREC, True)
    for i in range(0, (n - 1) // 2):
        j = 2 * i
        sb = _pipe_s(qb1, qb2, KEb + (j + 1) * BN * e_c + koff, True, HALF, PREC, False)
        acc1, acc2, l_i, m_i = _pipe_softmax_pv(acc1, acc2, l_i, m_i, sa, VEb + j * BN * e_c + koff, True,
                                                scale2, HALF, PREC, False)
        sa = _pipe_s(qb1, qb2, KEb + (j + 2) * BN * e_c + koff, True, HALF, PREC, False)
        acc1, acc2, l_i, m_i = _pipe_softmax_pv(acc1, acc2, l_i, m_i, sb, VEb + (j + 1) * BN * e_c + koff, True,
                                                scale2, HALF, PREC, False)
    j = 2 * ((n - 1) // 2)  # blocks j (if j < n) and j + 1 (if j + 1 < n) are left; S_j is sa
    if n == 0:
        j = 0
    sb = _pipe_s(qb1, qb2, KEb + (j + 1) * BN * e_c + koff, j + 1 < n, HALF, PREC, True)
    acc1, acc2, l_i, m_i = _pipe_softmax_pv(acc1, acc2, l_i, m_i, sa, VEb + j * BN * e_c + koff, j < n,
                                            scale2, HALF, PREC, True)
    acc1, acc2, l_i, m_i = _pipe_softmax_pv(acc1, acc2, l_i, m_i, sb, VEb + (j + 1) * BN * e_c + koff, j + 1 < n,
                                            scale2, HALF, PREC, True)
    return acc1, acc2, l_i, m_i


@triton.jit
def fwd_pipe_kernel(
    Q, KTR, VT, COS, SIN, KE, VE, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, STORE_LSE: tl.constexpr, PREC: tl.constexpr,
):
    """fwd_kernel (same grid (ceil(T / BM), B*H), tiles, self term and masked tail) with the unmasked
    key blocks in _fwd_pipe_inner (S of the next block issued before the softmax of this one)."""
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
    r = tl.arange(0, BM)
    Qt = Q + (b.to(tl.int64) * s_b + h.to(tl.int64) * s_h + t0.to(tl.int64) * s_t)
    qptr = r[:, None] * s_t + offs_d[None, :]
    crow = rows // L
    q1 = tl.load(Qt + qptr, mask=vm, other=0.0).to(tl.float32)
    q2 = tl.load(Qt + qptr + HALF, mask=vm, other=0.0).to(tl.float32)
    if ROPE:
        q1, q2 = _rope_at(q1, q2, COS, SIN, crow, offs_d, vm, HALF)
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
    hi = (tl.minimum(t0 + BM, T) - 1) // L
    lo = ((t0 // L) // BN) * BN
    koff = tl.arange(0, BN)[:, None] * e_c + offs_d[None, :]
    acc1, acc2, l_i, m_i = _fwd_pipe_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, e_c,
                                           lo // BN, scale2, BN, HALF, PREC)
    acc1, acc2, l_i, m_i = fwd_inner(acc1, acc2, l_i, m_i, qb1, qb2, KE + e_off, VE + e_off, koff, e_c, crow, crow,
                                     lo, hi, scale2, BN, HALF, True, PREC, False)
    inv = 1.0 / l_i
    tl.store(O + o_base + optr, (acc1 * inv[:, None]).to(O.dtype.element_ty), mask=vm)
    tl.store(O + o_base + optr + HALF, (acc2 * inv[:, None]).to(O.dtype.element_ty), mask=vm)
    if STORE_LSE:
        tl.store(LSE + bh.to(tl.int64) * T + rows, m_i + tl.log2(l_i), mask=valid)


# ------------------------------------------------------------------------------------------------
# 7. dK/dV with dP^T = V dO^T issued before the exponentials (v8, opt-in: RATTritonConfig.dkv_early_dp)
@triton.jit
def _dkv_early_dp_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, q_t, o_t, offs_n, lo, hi, T,
                        scale2, L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr,
                        PREC: tl.constexpr, EXP2_POLY: tl.constexpr = 0.0):
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
        if EXP2_POLY == 0:
            pt = tl.exp2(st * scale2 - lse[None, :])
        else:  # a fraction of the columns on the FMA pipe (impls/exp2_fma.py)
            pt = exp2_split(st * scale2 - lse[None, :], EXP2_POLY)
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
    EXP2_POLY: tl.constexpr = 0.0,
):
    """bwd_dkv_kernel (grid (ceil(C / BN), B*H), last-to-first walk, no dq atomics) with the inner loop
    _dkv_early_dp_inner."""
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
    dk1, dk2, dv1, dv2 = _dkv_early_dp_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, 2 * HALF,
                                             o_t, offs_n, mid, T, T, scale2, L, BM, HALF, False, PREC,
                                             EXP2_POLY)
    dk1, dk2, dv1, dv2 = _dkv_early_dp_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, 2 * HALF,
                                             o_t, offs_n, lo, mid, T, scale2, L, BM, HALF, True, PREC,
                                             EXP2_POLY)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)


# ------------------------------------------------------------------------------------------------
# 8. dq first, with Delta and RoPE(q) in the same pass (v10, opt-in: RATTritonConfig.dq_first). Appended at
#    the end of the file: the kernels above keep their source lines (and their sm_90 SASS).
@triton.jit
def bwd_dq_pre_kernel(
    Q, O, KTR, VT, DO, COS, SIN, KE, VE, LSE, DELTA, QR, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, T, H, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr,
    ROPE: tl.constexpr, PREC: tl.constexpr, EXP2_POLY: tl.constexpr = 0.0,
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
                        lo, scale2, BN, HALF, False, PREC, False, EXP2_POLY)
    dq1, dq2 = dq_inner(dq1, dq2, qb1, qb2, db1, db2, lse, delta, KE + e_off, VE + e_off, koff, e_c, crow, crow, lo,
                        hi, scale2, BN, HALF, True, PREC, False, EXP2_POLY)
    dq1 = dq1 * scale
    dq2 = dq2 * scale
    if ROPE:  # the tables again (not kept live through the loop)
        cos = tl.load(COS + tptr, mask=vm, other=1.0)
        sin = tl.load(SIN + tptr, mask=vm, other=0.0)
        dq1, dq2 = _rope_t(dq1, dq2, cos, sin)
    tl.store(DQ + o_base + optr, dq1.to(DQ.dtype.element_ty), mask=vm)
    tl.store(DQ + o_base + optr + HALF, dq2.to(DQ.dtype.element_ty), mask=vm)


# ------------------------------------------------------------------------------------------------
# 9. dK/dV with dq fused, dq tiles added by TMA bulk reductions (v11, opt-in: RATTritonConfig.fused_dq_tma).
#    Appended at the end of the file: the kernels above keep their source lines (and their sm_90 SASS).
@triton.jit
def _dq_reduce(DQD, ap, vm, grow, val, COL: tl.constexpr, TMA: tl.constexpr):
    """Add one float32 tile of dq ([BM, D] or [BM, HALF]) to the accumulator. TMA: through the descriptor DQD
    over the (B*H*T, D) accumulator at row grow, column COL (the tile goes to shared memory, then one asynchronous
    cp.reduce.async.bulk.tensor add, done line-wise in L2). Else (the interpreter: it has no descriptor
    reductions) element-wise float32 atomics at the pointers ap + COL (ap: the tile's shape), masked by vm."""
    if TMA:
        DQD.atomic_add([grow, COL], val)
    else:
        tl.atomic_add(ap + COL, val, mask=vm, sem="relaxed")


@triton.jit
def _dkv_tma_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, DQD, row0, q_t, o_t, offs_n,
                   lo, hi, T, scale2, L: tl.constexpr, BM: tl.constexpr, HALF: tl.constexpr, MASK: tl.constexpr,
                   PREC: tl.constexpr, EARLY: tl.constexpr, TMA: tl.constexpr, SPLIT: tl.constexpr):
    """_dkv_early_dp_inner (EARLY: dP^T issued before the exponentials) or attention_core.dkv_inner's order
    (RAT: CHUNK, REVERSE), plus this key block's share of dq: dS K = (dS^T)^T K over the two head-dim halves,
    joined into one [BM, D] float32 tile (SPLIT: two [BM, HALF] tiles, 16 KB less shared memory, but the second
    waits for the bulk engine to have read the first) added to the accumulator by _dq_reduce (unscaled; the
    backward scan scales, adds the self term and rotates back). Rows past T (last tile) have P = 0, so dS = 0: the TMA
    path adds exact zeros to the next head's first rows there (the descriptor only clips at B*H*T)."""
    r = tl.arange(0, BM)
    d = tl.arange(0, HALF)
    qoff = r[:, None] * q_t + d[None, :]
    ooff = r[:, None] * o_t + d[None, :]
    aoff = r[:, None] * (2 * HALF) + (tl.arange(0, HALF if SPLIT else 2 * HALF))[None, :]
    n = (hi - lo + BM - 1) // BM
    first = lo + (n - 1) * BM
    qp = QRb + first.to(tl.int64) * q_t + qoff
    op = DOb + first.to(tl.int64) * o_t + ooff
    ap = DQAb + first.to(tl.int64) * (2 * HALF) + aoff
    for i in range(n):
        t0 = first - i * BM
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
        if EARLY:
            dpt = tl.dot(v1, tl.trans(do1), input_precision=PREC)
            dpt = tl.dot(v2, tl.trans(do2), dpt, input_precision=PREC)
        pt = tl.exp2(st * scale2 - lse[None, :])
        if MASK:
            pt = tl.where(offs_n[:, None] < (rows // L)[None, :], pt, 0.0)
        pb = pt.to(do1.dtype)
        dv1 = tl.dot(pb, do1, dv1, input_precision=PREC)
        dv2 = tl.dot(pb, do2, dv2, input_precision=PREC)
        if not EARLY:
            dpt = tl.dot(v1, tl.trans(do1), input_precision=PREC)
            dpt = tl.dot(v2, tl.trans(do2), dpt, input_precision=PREC)
        dst = (pt * (dpt - delta[None, :])).to(qr1.dtype)
        dk1 = tl.dot(dst, qr1, dk1, input_precision=PREC)
        dk2 = tl.dot(dst, qr2, dk2, input_precision=PREC)
        ds = tl.trans(dst)  # [BM, BN]
        if SPLIT:
            _dq_reduce(DQD, ap, vm, row0 + t0, tl.dot(ds, k1, input_precision=PREC), 0, TMA)
            _dq_reduce(DQD, ap, vm, row0 + t0, tl.dot(ds, k2, input_precision=PREC), HALF, TMA)
        else:  # [BM, HALF, 2] -> [BM, 2, HALF] -> [BM, D]: the halves side by side (register renaming on sm_90)
            dqf = tl.join(tl.dot(ds, k1, input_precision=PREC), tl.dot(ds, k2, input_precision=PREC))
            _dq_reduce(DQD, ap, vm, row0 + t0, tl.reshape(tl.permute(dqf, (0, 2, 1)), (BM, 2 * HALF)), 0, TMA)
        qp -= BM * q_t
        op -= BM * o_t
        ap -= BM * (2 * HALF)
    return dk1, dk2, dv1, dv2


@triton.jit
def bwd_dkv_tma_kernel(
    QR, DO, LSE, DELTA, KE, VE, DKE, DVE, DQA, DQD,
    o_b, o_t, o_h, e_b, e_h, e_c, T, H, C, scale, scale2,
    L: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, HALF: tl.constexpr, PREC: tl.constexpr,
    EARLY: tl.constexpr, TMA: tl.constexpr, SPLIT: tl.constexpr = False,
):
    """bwd_dkv_kernel with DQ_ATOMIC (grid (ceil(C / BN), B*H), last-to-first walk over query tiles, 5 products
    per tile: S^T, dV, dP^T, dK, dq) with the dq tiles added by TMA bulk reductions (FlashAttention-3's dq
    path) instead of element-wise atomics: DQD is a host TensorDescriptor over DQA viewed as (B*H*T, D)
    float32, block [BM, D] (SPLIT: [BM, HALF]). TMA = False (the interpreter) uses element-wise atomics on DQA.
    EARLY: dP^T before the exponentials (bwd_dkv_early_kernel's order). Math: FlashAttention-2's backward."""
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
    DQAb = DQA + bh.to(tl.int64) * T * 2 * HALF
    row0 = bh * T  # the head's first row of the (B*H*T, D) accumulator (TMA coordinates are 32-bit)
    dk1, dk2, dv1, dv2 = _dkv_tma_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, DQD, row0,
                                        2 * HALF, o_t, offs_n, mid, T, T, scale2, L, BM, HALF, False, PREC, EARLY, TMA,
                                        SPLIT)
    dk1, dk2, dv1, dv2 = _dkv_tma_inner(dk1, dk2, dv1, dv2, k1, k2, v1, v2, QRb, DOb, LSEb, DELTAb, DQAb, DQD, row0,
                                        2 * HALF, o_t, offs_n, lo, mid, T, scale2, L, BM, HALF, True, PREC, EARLY, TMA,
                                        SPLIT)
    dptr = bh.to(tl.int64) * C * 2 * HALF + offs_n.to(tl.int64)[:, None] * 2 * HALF + offs_d[None, :]
    tl.store(DKE + dptr, dk1 * scale, mask=nm)
    tl.store(DKE + dptr + HALF, dk2 * scale, mask=nm)
    tl.store(DVE + dptr, dv1, mask=nm)
    tl.store(DVE + dptr + HALF, dv2, mask=nm)
