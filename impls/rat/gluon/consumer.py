"""What the forward kernels' consumer warpgroups share (fwd_ws_kernel in forward.py, fwd_fused_kernel in fused.py),
after each kernel's own prologue has started a tile's online softmax from its self term:

tile_blocks  RoPE(q) out by TMA in training, the previous tile's o store retired and its q buffer handed back, the
             ring's self entry released, then the chunk-end key blocks (_blocks: FA3's intra-warpgroup overlap of
             the softmax of S_i with P_{i-1} V_{i-1}; _softmax: FlashAttention-2's online softmax, the scale in the
             exponent's FFMA, optional polynomial exponentials (f6) and row trees (f8));
tile_end     o = acc / l and lse, stored directly (_epilogue) or through the tile's q buffer by TMA (_epilogue_tma).

row_layout is the 16-byte-per-thread layout both kernels use for their 16-bit tiles. Versions and measurements:
impls/rat/gluon/NOTES.md.
"""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)


@gluon.constexpr_function
def row_layout(N, num_warps):
    """Blocked layout of a [rows, N] 16-bit tile: 8 contiguous elements (16 bytes) per thread."""
    N, num_warps = (getattr(x, "value", x) for x in (N, num_warps))
    cols = N // 8
    return gl.BlockedLayout([1, 8], [32 // cols, cols], [num_warps, 1], [1, 0])


# 2**f on [-1/2, 1/2] by a degree-3 polynomial, minimax in relative error (7.5e-5, bf16's half ulp is 2e-3)
_P0 = gl.constexpr(0.9999281)
_P1 = gl.constexpr(0.69326097)
_P2 = gl.constexpr(0.24261061)
_P3 = gl.constexpr(0.05517145)


@gluon.jit
def _exp2_poly(x):
    """2**x on the FMA and integer pipes, not the MUFU: j = round(x) by the 1.5 * 2**23 shift, 2**(x - j) by the
    polynomial, j added to its exponent bits (the shifted sum's low bits are j). x is clamped at -125 so that
    2**(x - j) in [0.7, 1.42] keeps a normal exponent: a masked logit (-inf) gives 2**-125, not 0."""
    x = gl.maximum(x, -125.0)
    r = x + 12582912.0
    j = r - 12582912.0
    f = x - j
    p = f * _P3 + _P2
    p = p * f + _P1
    p = p * f + _P0
    bits = p.to(gl.int32, bitcast=True) + (r.to(gl.int32, bitcast=True) << 23)
    return bits.to(gl.float32, bitcast=True)


@gluon.jit
def _exp2_part(x, EXP_POLY: gl.constexpr, s_layout: gl.constexpr):
    """2**x of a [64, N] wgmma accumulator with one in EXP_POLY (2, 4 or 8) of its elements by _exp2_poly (FA4's
    exponential emulation), the rest by the MUFU: a thread holds columns 8 j + 2 (lane % 4) + {0, 1}, and the
    polynomial takes those with j = -1 mod EXP_POLY. The reshapes and splits only rename registers (no shuffles or
    shared memory in the SASS)."""
    M: gl.constexpr = x.shape[0]
    N: gl.constexpr = x.shape[1]
    # [M, j // 8, col % 8, j bit 2, j bit 1, j bit 0]
    x6 = gl.permute(gl.reshape(x, [M, N // 64, 2, 2, 2, 8]), [0, 1, 5, 2, 3, 4])
    b0_0, b0_1 = gl.split(x6)
    if EXP_POLY == 2:
        y6 = gl.join(gl.exp2(b0_0), _exp2_poly(b0_1))
    else:
        b1_0, b1_1 = gl.split(b0_1)
        if EXP_POLY == 4:
            y_1 = gl.join(gl.exp2(b1_0), _exp2_poly(b1_1))
        else:
            b2_0, b2_1 = gl.split(b1_1)
            y_1 = gl.join(gl.exp2(b1_0), gl.join(gl.exp2(b2_0), _exp2_poly(b2_1)))
        y6 = gl.join(gl.exp2(b0_0), y_1)
    return gl.convert_layout(gl.reshape(gl.permute(y6, [0, 1, 3, 4, 5, 2]), [M, N]), s_layout)


@gluon.jit
def _halves(x):
    """[M, N] -> two [M, N / 2]: columns c and c + N / 2 (8 j + c', 8 (j + N / 16) + c'), which one thread holds."""
    M: gl.constexpr = x.shape[0]
    N: gl.constexpr = x.shape[1]
    return gl.split(gl.permute(gl.reshape(x, [M, 2, N // 2]), [0, 2, 1]))


@gluon.jit
def _row_max(s, TREE: gl.constexpr, s_layout: gl.constexpr):
    """max over a [64, 128] accumulator's rows. TREE >= 1 (f8): a thread's 32 elements of a row in 5 levels of
    independent FMNMX instead of the reduction's chain of 31 (its latency is on the softmax's critical path: the
    warp issues in order), then the 2 shuffles across the row's 4 lanes."""
    if TREE >= 1:
        a, b = _halves(s)
        a, b = _halves(gl.maximum(a, b))
        a, b = _halves(gl.maximum(a, b))
        a, b = _halves(gl.maximum(a, b))
        return gl.convert_layout(gl.max(gl.maximum(a, b), 1), gl.SliceLayout(1, s_layout))
    else:
        return gl.max(s, 1)


@gluon.jit
def _row_sum(p, TREE: gl.constexpr, s_layout: gl.constexpr):
    """sum over a [64, 128] accumulator's rows; TREE 2: in a tree, as _row_max (another order of the float32
    additions)."""
    if TREE == 2:
        a, b = _halves(p)
        a, b = _halves(a + b)
        a, b = _halves(a + b)
        a, b = _halves(a + b)
        return gl.convert_layout(gl.sum(a + b, 1), gl.SliceLayout(1, s_layout))
    else:
        return gl.sum(p, 1)


@gluon.jit
def _softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN: gl.constexpr, MASK: gl.constexpr,
             EXP_POLY: gl.constexpr, TREE: gl.constexpr, s_layout: gl.constexpr):
    """One block of raw logits s = q.K ([64, BN]), masked where j >= c(t): MASK 1 always, 2 if the block is past
    the unmasked ones (i >= n_full), 0 never. m_i is in scaled base-2 units; the scale goes into the exponent's
    FFMA (s scale2 - m), as in FlashAttention. EXP_POLY (f6, head dim 64, where the MUFU's 16 results per clock take
    as long as the block's products): one in EXP_POLY exponentials by polynomial (_exp2_part). TREE (f8): the row
    maximum (1) and sum (2) in trees. Returns p (float32), the new m, l and the rescale factor of the accumulator."""
    if MASK == 2:
        masked = i >= n_full
    else:
        masked = MASK == 1
    if masked:
        s = gl.where((i * BN + cols)[None, :] < crow[:, None], s, -float("inf"))
    m_new = gl.maximum(m_i, _row_max(s, TREE, s_layout) * scale2)
    alpha = gl.exp2(m_i - m_new)
    if EXP_POLY > 0:
        p = _exp2_part(s * scale2 - m_new[:, None], EXP_POLY, s_layout)
    else:
        p = gl.exp2(s * scale2 - m_new[:, None])
    l_i = l_i * alpha + _row_sum(p, TREE, s_layout)
    return p, m_new, l_i, alpha


@gluon.jit
def _epilogue(O, LSE, o_strides, T, H, bh, tw, acc, m_i, l_i, D: gl.constexpr, STORE_LSE: gl.constexpr,
              s_layout: gl.constexpr, o_layout: gl.constexpr):
    """o = acc / l (16-bit, 16-byte stores) and lse = m + log2(l) of rows tw .. tw + 63."""
    BMW: gl.constexpr = 64
    o_b, o_t, o_h = o_strides
    b = bh // H
    h = bh % H
    o_base = b.to(gl.int64) * o_b + h.to(gl.int64) * o_h + tw.to(gl.int64) * o_t
    o = acc * gl.convert_layout(1.0 / l_i, gl.SliceLayout(1, o_layout))[:, None]
    ob: gl.constexpr = row_layout(D, 4)
    o = gl.convert_layout(o.to(O.dtype.element_ty), ob)
    ro = gl.arange(0, BMW, layout=gl.SliceLayout(1, ob))
    co = gl.arange(0, D, layout=gl.SliceLayout(0, ob))
    gl.store(O + o_base + ro[:, None] * o_t + co[None, :], o, mask=((tw + ro) < T)[:, None])
    if STORE_LSE:
        _store_lse(LSE, T, bh, tw, m_i, l_i, s_layout)


@gluon.jit
def _store_lse(LSE, T, bh, tw, m_i, l_i, s_layout: gl.constexpr):
    """lse = m + log2(l) (base 2) of rows tw .. tw + 63 (those before T), for the backward."""
    rl = gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
    gl.store(LSE + bh.to(gl.int64) * T + tw + rl, m_i + gl.log2(l_i), mask=(tw + rl) < T)


@gluon.jit
def _epilogue_tma(o_desc, LSE, T, H, bh, tw, q_w, acc, m_i, l_i, D: gl.constexpr, STORE_LSE: gl.constexpr,
                  s_layout: gl.constexpr, o_layout: gl.constexpr):
    """_epilogue through shared memory: o = acc / l written into this tile's q buffer (q_w: every product that reads
    it is done) and stored by TMA (o_desc: o as a (B*T, H*D) matrix, T a multiple of 128, so no row of the box is past
    its sequence), without waiting for the store; lse as _epilogue."""
    o = acc * gl.convert_layout(1.0 / l_i, gl.SliceLayout(1, o_layout))[:, None]
    q_w.store(o.to(q_w.dtype))
    fence_async_shared()
    tma.async_copy_shared_to_global(o_desc, [(bh // H) * T + tw, (bh % H) * D], q_w)
    if STORE_LSE:
        _store_lse(LSE, T, bh, tw, m_i, l_i, s_layout)


@gluon.jit
def _block(q_w, k_bufs, v_bufs, bars, e0, i, n_full, acc, p, m_i, l_i, crow, cols, scale2, BN: gl.constexpr,
           STAGES: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr, MASK: gl.constexpr,
           EXP_POLY: gl.constexpr, TREE: gl.constexpr):
    """Key block i >= 1 of a tile: S_i issued with P_{i-1} V_{i-1}, the softmax of S_i under the latter."""
    k_ready, v_ready, k_empty, v_empty = bars
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    st = (e0 + i) % STAGES
    pst = (e0 + i - 1) % STAGES
    mbarrier.wait(k_ready.index(st), ((e0 + i) // STAGES) & 1)
    s = warpgroup_mma(q_w, k_bufs.index(st).permute((1, 0)), gl.zeros([64, BN], gl.float32, s_layout),
                      use_acc=False, is_async=True)
    mbarrier.wait(v_ready.index(pst), ((e0 + i - 1) // STAGES) & 1)
    acc = warpgroup_mma(p, v_bufs.index(pst), acc, is_async=True)
    s = warpgroup_mma_wait(num_outstanding=1, deps=(s,))
    mbarrier.arrive(k_empty.index(st), count=1)
    p32, m_i, l_i, alpha = _softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN, MASK, EXP_POLY, TREE, s_layout)
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    mbarrier.arrive(v_empty.index(pst), count=1)
    acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
    p = gl.convert_layout(p32.to(k_bufs.dtype), p_layout)
    return acc, p, m_i, l_i


@gluon.jit
def _blocks(q_w, k_bufs, v_bufs, bars, e0, n_blocks, n_full, acc, m_i, l_i, crow, scale2, BN: gl.constexpr,
            D: gl.constexpr, STAGES: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr,
            EXP_POLY: gl.constexpr, SPLIT: gl.constexpr, TREE: gl.constexpr):
    """The chunk-end blocks of one tile, ring entries e0 .. e0 + n_blocks - 1 (FA3's intra-warpgroup overlap: issue
    S_i and P_{i-1} V_{i-1}, wait for S_i only, softmax of S_i under P_{i-1} V_{i-1}). K_i's buffer is released as
    soon as S_i is done and V_i's once P_i V_i is, so the loader refills each one iteration ahead. SPLIT (f7): the
    unmasked blocks (i < n_full) and the masked ones in two loops, so that the unmasked ones carry no mask (ptxas
    turns a mask under a branch into selects for every block). Returns acc, m, l."""
    k_ready, v_ready, k_empty, v_empty = bars
    BMW: gl.constexpr = 64
    dtype: gl.constexpr = k_bufs.dtype
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    cols = gl.arange(0, BN, layout=gl.SliceLayout(0, s_layout))
    p = gl.zeros([BMW, BN], dtype, p_layout)
    if n_blocks > 0:
        mbarrier.wait(k_ready.index(e0 % STAGES), (e0 // STAGES) & 1)
        s = warpgroup_mma(q_w, k_bufs.index(e0 % STAGES).permute((1, 0)), gl.zeros([BMW, BN], gl.float32, s_layout),
                          use_acc=False, is_async=True)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        mbarrier.arrive(k_empty.index(e0 % STAGES), count=1)
        p32, m_i, l_i, alpha = _softmax(s, m_i, l_i, 0, n_full, crow, cols, scale2, BN, 2, EXP_POLY, TREE, s_layout)
        acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
        p = gl.convert_layout(p32.to(dtype), p_layout)
    if SPLIT:
        n_open = gl.maximum(gl.minimum(n_full, n_blocks), 1)
        for i in range(1, n_open):
            acc, p, m_i, l_i = _block(q_w, k_bufs, v_bufs, bars, e0, i, n_full, acc, p, m_i, l_i, crow, cols, scale2,
                                      BN, STAGES, s_layout, o_layout, 0, EXP_POLY, TREE)
        for i in range(n_open, n_blocks):
            acc, p, m_i, l_i = _block(q_w, k_bufs, v_bufs, bars, e0, i, n_full, acc, p, m_i, l_i, crow, cols, scale2,
                                      BN, STAGES, s_layout, o_layout, 1, EXP_POLY, TREE)
    else:
        for i in range(1, n_blocks):
            acc, p, m_i, l_i = _block(q_w, k_bufs, v_bufs, bars, e0, i, n_full, acc, p, m_i, l_i, crow, cols, scale2,
                                      BN, STAGES, s_layout, o_layout, 2, EXP_POLY, TREE)
    if n_blocks > 0:
        last = e0 + n_blocks - 1
        mbarrier.wait(v_ready.index(last % STAGES), (last // STAGES) & 1)
        acc = warpgroup_mma(p, v_bufs.index(last % STAGES), acc, is_async=True)
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
        mbarrier.arrive(v_empty.index(last % STAGES), count=1)
    return acc, m_i, l_i


@gluon.jit
def tile_blocks(q_w, k_bufs, v_bufs, ring, q_empty, qr_desc, j, e, qr_row, n_blocks, n_full, acc, m_i, l_i, crow,
                scale2, BN: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr, STORE_LSE: gl.constexpr,
                STORE_QR: gl.constexpr, O_TMA: gl.constexpr, EXP_POLY: gl.constexpr, SPLIT: gl.constexpr,
                TREE: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr, QB: gl.constexpr = 2):
    """The CTA's j-th tile after its prologue, the tile's self entry at ring entry e: with STORE_LSE and STORE_QR,
    q_r by TMA to row qr_row of qr_desc (for the backward, b5); with O_TMA the previous tile's o store (issued before
    this tile's RoPE(q)) retired and its q buffer handed back; the self entry released; then the key blocks (ring
    entries e + 1 ..). Returns acc, m, l."""
    if STORE_LSE and STORE_QR:
        tma.async_copy_shared_to_global(qr_desc, [qr_row, 0], q_w)
    if O_TMA and j > 0:
        tma.store_wait(1 if STORE_LSE and STORE_QR else 0)
        mbarrier.arrive(q_empty.index((j - 1) % QB), count=1)
    mbarrier.arrive(ring[2].index(e % STAGES), count=1)
    mbarrier.arrive(ring[3].index(e % STAGES), count=1)
    return _blocks(q_w, k_bufs, v_bufs, ring, e + 1, n_blocks, n_full, acc, m_i, l_i, crow, scale2, BN, D, STAGES,
                   s_layout, o_layout, EXP_POLY, SPLIT, TREE)


@gluon.jit
def tile_end(q_w, q_empty, o_desc, O, LSE, o_strides, T, H, bh, tw, j, acc, m_i, l_i, D: gl.constexpr,
             STORE_LSE: gl.constexpr, STORE_QR: gl.constexpr, O_TMA: gl.constexpr, s_layout: gl.constexpr,
             o_layout: gl.constexpr, QB: gl.constexpr = 2):
    """Rows tw .. tw + 63 of the CTA's j-th tile out: once the q_r store has read q_w, o by TMA through q_w
    (O_TMA; the loader gets q_w back at the next tile) or stored directly after q_w is handed back; lse with
    STORE_LSE."""
    if STORE_LSE and STORE_QR:
        tma.store_wait(0)
    if O_TMA:
        _epilogue_tma(o_desc, LSE, T, H, bh, tw, q_w, acc, m_i, l_i, D, STORE_LSE, s_layout, o_layout)
    else:
        mbarrier.arrive(q_empty.index(j % QB), count=1)
        _epilogue(O, LSE, o_strides, T, H, bh, tw, acc, m_i, l_i, D, STORE_LSE, s_layout, o_layout)
