"""The Triton passes around rat/gluon's backward kernel (impls/rat/gluon/backward.py): plain memory passes, so they
run under the interpreter too (tests/impls/rat/test_rat_gluon.py checks them on the CPU with the Gluon kernel
emulated in torch).

bwd_ws_pre_kernel   before bwd_ws_kernel: Delta, lse and Delta per 64-row tile as one TMA box, RoPE(q), and where
                    bwd_dq_post_kernel finishes dq the float32 dq accumulator's start, dq's self term (else the
                    Gluon kernel's key block 0 starts it)
bwd_dq_post_kernel  after it, where the backward scan does not finish dq (the two-level scans):
                    dq = RoPE^T(scale * the float32 accumulator)
Notation and RoPE on head-dim halves as impls/rat/kernels (common.py); lse is base 2.
"""
from __future__ import annotations

import triton
import triton.language as tl

from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _rope_at, _rope_t, _store2


@triton.jit
def bwd_ws_pre_kernel(
    Q, O, KTR, VT, DO, COS, SIN, LSE, DELTA, LD, QR, DQACC,
    s_b, s_t, s_h, o_b, o_t, o_h, T, Tp, H, scale2,
    L: tl.constexpr, BM: tl.constexpr, TILE: tl.constexpr, HALF: tl.constexpr, ROPE: tl.constexpr, SELF: tl.constexpr,
    QR_OUT: tl.constexpr, ZERO: tl.constexpr = False,
):
    """The query-side pass before rat/gluon's backward kernel (impls/rat/gluon/backward.py). Grid (Tp / BM, B*H),
    BM rows per program (a divisor of TILE): rows padded to Tp, a multiple of that kernel's TILE-row query tile.
    Per row t < T: Delta = rowsum(dO * o) (to DELTA (B*H, T), read by the backward scan, and LD), lse (LD:
    (B*H, Tp / TILE, 2, TILE), per tile its lse row then
    its Delta row, one TMA box of that kernel's ring), with QR_OUT RoPE_c(q) (QR (B*H, Tp, D), the input
    dtype) and with SELF the start of DQACC ((B*H, Tp, D), float32: the accumulator the Gluon kernel adds
    sum_j dS_tj K_j to): dq's self term dS_t,self RoPE(kt_t) (for bwd_dq_post_kernel); without SELF, with ZERO 0
    (the backward scan adds the self term: KTR and VT are not read), else DQACC is not written (the Gluon kernel's
    key block 0 stores its share first). Rows T <= t < Tp: lse +inf and Delta 0 (so P = dS = 0 there), q and
    (SELF) DQACC 0.
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
    tl.store(DELTA + bh.to(tl.int64) * T + rows, delta, mask=valid)
    pad = bh.to(tl.int64) * Tp + rows
    ldp = (bh.to(tl.int64) * (Tp // TILE) + rows // TILE) * (2 * TILE) + rows % TILE
    tl.store(LD + ldp, lse)
    tl.store(LD + ldp + TILE, delta)
    rptr = pad[:, None] * (2 * HALF) + d[None, :]
    if QR_OUT:
        _store2(QR + rptr, q1, q2, None, HALF)
    if SELF:
        _store2(DQACC + rptr, ds_s[:, None] * kr1, ds_s[:, None] * kr2, None, HALF)
    elif ZERO:
        zero = tl.zeros([BM, HALF], tl.float32)
        _store2(DQACC + rptr, zero, zero, None, HALF)


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
