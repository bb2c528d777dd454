"""exp2 on the FMA pipe (FlashAttention-4's exponential emulation, Shah et al. / Dao-AILab 2025), for the
softmax tiles of the flash loops in impls/attention_core.py (opt-in: the EXP2_POLY constexprs there).

Why: on sm_90 MUFU.EX2 runs 16 results / clk / SM, the FMA pipe 128. A 128 x 128 forward tile is 2048 clk of
wgmma and 1024 clk of MUFU; moving a fraction of the exponentials to a polynomial on the FMA pipe shortens
the MUFU part (impls/rat/NOTES.md v9).

Math (Cody-Waite range reduction with magic-number rounding, all float32 round-to-nearest):
    x <- max(x, -125)                      (exp2(-inf) -> ~2^-125 = 2.4e-38: masked logits stay negligible)
    j = x + 1.5 * 2^23                     (the nearest integer n = rint(x) lands in j's low mantissa bits)
    f = x - (j - 1.5 * 2^23)               (exact, in [-0.5, 0.5]; n >= -125)
    p = ((c3 f + c2) f + c1) f + c0        (3 FFMA: minimax of 2^f on [-0.5, 0.5] for the relative error)
    2^x = bits(p) + (bits(j) << 23)        (integer add into the exponent field; bits(1.5 * 2^23) << 23 = 0
                                            mod 2^32, so the shift leaves n << 23; n >= -125 keeps the result a
                                            normal float: p >= 0.5 has exponent field >= 126)
Max relative error 7.5e-5 (float32 Horner over all of [-0.5, 0.5], tests/test_exp2_fma.py), against bf16's
2^-9 = 2.0e-3 half-ulp (P is rounded to the input dtype before P V) and fp16's 4.9e-4. Degree 2 has 1.7e-3
(as large as bf16's own rounding), degree 4 2.6e-6 for one more FFMA. Per element: FMNMX, 3 FADD, 3 FFMA,
shift + integer add (ptxas: one LEA or SHF + IADD3 / IMAD): 8-9 instructions against MUFU.EX2's one.
"""
from __future__ import annotations

import triton
import triton.language as tl

# minimax (relative error) coefficients of 2^f on [-0.5, 0.5], degree 3, rounded to float32
EXP2_C0 = tl.constexpr(0.9999280571937561)
EXP2_C1 = tl.constexpr(0.6932609677314758)
EXP2_C2 = tl.constexpr(0.2426111251115799)
EXP2_C3 = tl.constexpr(0.0551716685295105)
MAGIC = tl.constexpr(12582912.0)  # 1.5 * 2^23


@triton.jit
def exp2_fma(x):
    """2^x of a float32 tensor on the FMA pipe (module docstring); x <= 127. Rel. error <= 7.5e-5 for x >= -125; x < -125 (-inf) -> ~2^-125."""
    x = tl.maximum(x, -125.0)
    j = x + MAGIC
    f = x - (j - MAGIC)
    p = ((EXP2_C3 * f + EXP2_C2) * f + EXP2_C1) * f + EXP2_C0
    e = j.to(tl.int32, bitcast=True) << 23
    return (p.to(tl.int32, bitcast=True) + e).to(tl.float32, bitcast=True)


@triton.jit
def _halves(x):
    # [R, C] -> columns [0, C/2) and [C/2, C): splits on the top column bit, which the wgmma accumulator
    # layout keeps in registers (no data movement)
    return tl.split(tl.permute(tl.reshape(x, [x.shape[0], 2, x.shape[1] // 2]), [0, 2, 1]))


@triton.jit
def _join(a, b):
    # inverse of _halves
    return tl.reshape(tl.permute(tl.join(a, b), [0, 2, 1]), [a.shape[0], 2 * a.shape[1]])


@triton.jit
def exp2_split(x, FRAC: tl.constexpr):
    """2^x of an [R, C] float32 tile: the first FRAC * C columns by exp2_fma (FMA pipe), the rest by tl.exp2
    (MUFU.EX2). FRAC in 0, 0.0625, 0.125, 0.25, 0.5, 1 (0: all MUFU). The tile is cut into column halves (tl.split of a
    reshape), so the parts are separate tensors: no select, nothing computed twice, and on sm_90 no data
    movement (the top column bits of the wgmma accumulator layout are register bits; no shared memory in SASS)."""
    if FRAC == 0.0:
        y = tl.exp2(x)
    elif FRAC == 1.0:
        y = exp2_fma(x)
    elif FRAC == 0.5:
        a, b = _halves(x)
        y = _join(exp2_fma(a), tl.exp2(b))
    elif FRAC == 0.25:
        a, b = _halves(x)
        a1, a2 = _halves(a)
        y = _join(_join(exp2_fma(a1), tl.exp2(a2)), tl.exp2(b))
    elif FRAC == 0.125:
        a, b = _halves(x)
        a1, a2 = _halves(a)
        a11, a12 = _halves(a1)
        y = _join(_join(_join(exp2_fma(a11), tl.exp2(a12)), tl.exp2(a2)), tl.exp2(b))
    else:
        tl.static_assert(FRAC == 0.0625, "exp2_split: FRAC must be one of 0, 0.0625, 0.125, 0.25, 0.5, 1")
        a, b = _halves(x)
        a1, a2 = _halves(a)
        a11, a12 = _halves(a1)
        a111, a112 = _halves(a11)
        y = _join(_join(_join(_join(exp2_fma(a111), tl.exp2(a112)), tl.exp2(a12)), tl.exp2(a2)), tl.exp2(b))
    return y
