"""The online softmax of fwd_ws_kernel (impls/rat/gluon/forward.py) on a [64, BN] wgmma accumulator of raw logits:
the j < c(t) mask, the row maximum and sum (f8: in trees), the exponentials (f6: a share of them by polynomial on the
FMA pipe, FA4's emulation) and the rescale factor (FlashAttention-2's online softmax, Dao 2023). Versions and
measurements: impls/rat/gluon/NOTES.md (f6-f8)."""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl

# 2**f on [-1/2, 1/2] by a degree-3 polynomial, minimax in relative error (7.5e-5, bf16's half ulp is 2e-3)
P0 = gl.constexpr(0.9999281)
P1 = gl.constexpr(0.69326097)
P2 = gl.constexpr(0.24261061)
P3 = gl.constexpr(0.05517145)


@gluon.jit
def exp2_poly(x):
    """2**x on the FMA and integer pipes, not the MUFU: j = round(x) by the 1.5 * 2**23 shift, 2**(x - j) by the
    polynomial, j added to its exponent bits (the shifted sum's low bits are j). x is clamped at -125 so that
    2**(x - j) in [0.7, 1.42] keeps a normal exponent: a masked logit (-inf) gives 2**-125, not 0."""
    x = gl.maximum(x, -125.0)
    r = x + 12582912.0
    j = r - 12582912.0
    f = x - j
    p = f * P3 + P2
    p = p * f + P1
    p = p * f + P0
    bits = p.to(gl.int32, bitcast=True) + (r.to(gl.int32, bitcast=True) << 23)
    return bits.to(gl.float32, bitcast=True)


@gluon.jit
def exp2_part(x, EXP_POLY: gl.constexpr, s_layout: gl.constexpr):
    """2**x of a [64, N] wgmma accumulator with one in EXP_POLY (2, 4 or 8) of its elements by exp2_poly (FA4's
    exponential emulation), the rest by the MUFU: a thread holds columns 8 j + 2 (lane % 4) + {0, 1}, and the
    polynomial takes those with j = -1 mod EXP_POLY. The reshapes and splits only rename registers (no shuffles or
    shared memory in the SASS)."""
    M: gl.constexpr = x.shape[0]
    N: gl.constexpr = x.shape[1]
    # [M, j // 8, col % 8, j bit 2, j bit 1, j bit 0]
    x6 = gl.permute(gl.reshape(x, [M, N // 64, 2, 2, 2, 8]), [0, 1, 5, 2, 3, 4])
    b0_0, b0_1 = gl.split(x6)
    if EXP_POLY == 2:
        y6 = gl.join(gl.exp2(b0_0), exp2_poly(b0_1))
    else:
        b1_0, b1_1 = gl.split(b0_1)
        if EXP_POLY == 4:
            y_1 = gl.join(gl.exp2(b1_0), exp2_poly(b1_1))
        else:
            b2_0, b2_1 = gl.split(b1_1)
            y_1 = gl.join(gl.exp2(b1_0), gl.join(gl.exp2(b2_0), exp2_poly(b2_1)))
        y6 = gl.join(gl.exp2(b0_0), y_1)
    return gl.convert_layout(gl.reshape(gl.permute(y6, [0, 1, 3, 4, 5, 2]), [M, N]), s_layout)


@gluon.jit
def halves(x):
    """[M, N] -> two [M, N / 2]: columns c and c + N / 2 (8 j + c', 8 (j + N / 16) + c'), which one thread holds."""
    M: gl.constexpr = x.shape[0]
    N: gl.constexpr = x.shape[1]
    return gl.split(gl.permute(gl.reshape(x, [M, 2, N // 2]), [0, 2, 1]))


@gluon.jit
def row_max(s, TREE: gl.constexpr, s_layout: gl.constexpr):
    """max over a [64, 128] (or [64, 64]) accumulator's rows. TREE >= 1 (f8): a thread's 32 elements of a row in 5 levels of
    independent FMNMX instead of the reduction's chain of 31 (its latency is on the softmax's critical path: the
    warp issues in order), then the 2 shuffles across the row's 4 lanes."""
    if TREE >= 1:
        a, b = halves(s)
        a, b = halves(gl.maximum(a, b))
        a, b = halves(gl.maximum(a, b))
        if s.shape[1] == 128:  # 64 columns (f22's half block): a thread's 16 in 4 levels
            a, b = halves(gl.maximum(a, b))
        return gl.convert_layout(gl.max(gl.maximum(a, b), 1), gl.SliceLayout(1, s_layout))
    else:
        return gl.max(s, 1)


@gluon.jit
def row_sum(p, TREE: gl.constexpr, s_layout: gl.constexpr):
    """sum over a [64, 128] accumulator's rows; TREE 2: in a tree, as row_max (another order of the float32
    additions)."""
    if TREE == 2:
        a, b = halves(p)
        a, b = halves(a + b)
        a, b = halves(a + b)
        if p.shape[1] == 128:
            a, b = halves(a + b)
        return gl.convert_layout(gl.sum(a + b, 1), gl.SliceLayout(1, s_layout))
    else:
        return gl.sum(p, 1)


@gluon.jit
def online_softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN: gl.constexpr, MASK: gl.constexpr,
                   EXP_POLY: gl.constexpr, TREE: gl.constexpr, s_layout: gl.constexpr):
    """One block of raw logits s = q.K ([64, BN]), masked where j >= c(t): MASK 1 always, 2 if the block is past
    the unmasked ones (i >= n_full), 0 never. m_i is in scaled base-2 units; the scale goes into the exponent's
    FFMA (s scale2 - m), as in FlashAttention. EXP_POLY (f6, head dim 64, where the MUFU's 16 results per clock take
    as long as the block's products): one in EXP_POLY exponentials by polynomial (exp2_part). TREE (f8): the row
    maximum (1) and sum (2) in trees. Returns p (float32), the new m, l and the rescale factor of the accumulator."""
    if MASK == 2:
        masked = i >= n_full
    else:
        masked = MASK == 1
    if masked:
        s = gl.where((i * BN + cols)[None, :] < crow[:, None], s, -float("inf"))
    m_new = gl.maximum(m_i, row_max(s, TREE, s_layout) * scale2)
    alpha = gl.exp2(m_i - m_new)
    if EXP_POLY > 0:
        p = exp2_part(s * scale2 - m_new[:, None], EXP_POLY, s_layout)
    else:
        p = gl.exp2(s * scale2 - m_new[:, None])
    l_i = l_i * alpha + row_sum(p, TREE, s_layout)
    return p, m_new, l_i, alpha
