"""Two-level versions of the RAT scans (docs/rat-spec.md, op step 1) for long chunks with few chunks in all
(e.g. chunk_size = T: the "RNN" of the RAT paper), launched instead of scan_kernel / bwd_scan_kernel (scan.py)
when impls.rat.triton.long_scan_used says so: the plain scans give one program per NC chunks and walk a chunk's
rows in sequence, so chunk_size = T leaves B*H lanes of T dependent steps (latency-bound, NOTES.md v7).

Each chunk is cut into NS = ceil(min(L, T) / S) sub-blocks of S rows (the last one may hold fewer rows:
L % S != 0, or a partial last chunk in prefill); sub-block sb = c * NS + j (chunk c, j-th sub-block) covers
chunk-local rows [j S, min((j + 1) S, L)). The recurrences are linear:
  forward  s_t = f_t s_{t-1} + (1 - f_t) x_t: a sub-block started from zero gives (P, s_loc) with
           P = prod f over its rows; the true end state is s_loc + P * s_in.
  backward g_l = d_l + f_{l+1} g_{l+1}; with h_l = f_l g_l (what row l hands to row l-1):
           h_first = H_loc + P * h_in, H_loc = f_first * g_loc(first row) from h_in = 0.
Three launches each way:
  lscan_sum_kernel / bwd_lscan_sum_kernel  grid (ceil(NSB / NB), B*H), NB sub-blocks side by side ([NB, HALF]
           tiles), a rolled loop over their S rows: per sub-block summaries (P, s_loc for k and v) into float32
           (B*H, C*NS, D) buffers;
  lscan_carry_kernel  grid (C * D / BD, B*H): the inclusive scan of the summaries across the sub-blocks of each
           chunk (in place; reverse order for the backward), CB at a time with tl.associative_scan;
  lscan_kernel / bwd_lscan_kernel  grid (ceil(NSB / NB), B*H): each sub-block re-run from its carry (the
           inclusive summary of sub-block j-1, or j+1 backward; zero at the chunk's edge), writing exactly what
           scan_kernel / bwd_scan_kernel write.
Products of f may underflow to 0 (no division anywhere). The inner loops are those of the plain scans (the
per-row helpers of scan.py) with a per-lane chunk-local row index. With one sub-block per chunk (L <= S) only
the re-run kernels are launched.
"""
from __future__ import annotations

import triton
import triton.language as tl

from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _maybe_rope, _store2
from ratbench.impls.rat.kernels.scan import _bwd_direct, _bwd_recur, _bwd_scan_step, _scan_step


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
    Q, K, V, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, DK, DV, DF, SK, SV,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, NSB, NS, n_rows, scale, scale2,
    L: tl.constexpr, S: tl.constexpr, NB: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr,
):
    """Grid (ceil(NSB / NB), B*H). bwd_scan_kernel over NB sub-blocks, each started from its carry
    h_in (the scanned summary of the sub-block after it in the chunk; zero for the chunk's last):
    writes dk, dv, df exactly as bwd_scan_kernel does."""
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
        l, _rows, m, ptr, optr, dk1, dk2, dv1, dv2, _kr1, _kr2, _ds = _bwd_sub_row(
            Q, KTR, VT, DO, LSE, DELTA, i, sm, l0, row0, in_off, out_off, r_off, s_t, o_t, d2, T,
            dke1, dke2, dve1, dve2, cos, sin, scale, scale2, L, S, HALF, ROPE)
        gk1, gk2, gv1, gv2, fn1, fn2 = _bwd_scan_step(K, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l[:, None],
                                                      dk1, dk2, dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin,
                                                      HALF, ROPE)

