"""The pieces fwd_ws_kernel's consumers share (forward._consumer, main's, and xt.consumer_xt, f23's): the CTA's
tiles and their order, RoPE's tables, one key block of the online softmax with its products, and the epilogue through
shared memory by TMA. Versions and measurements: impls/rat/gluon/NOTES.md."""
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

from ratbench.impls.rat.gluon.softmax import online_softmax


@gluon.constexpr_function
def _row_layout(N, num_warps):
    """Blocked layout of a [rows, N] 16-bit tile: 8 contiguous elements (16 bytes) per thread."""
    N, num_warps = (getattr(x, "value", x) for x in (N, num_warps))
    cols = N // 8
    return gl.BlockedLayout([1, 8], [32 // cols, cols], [num_warps, 1], [1, 0])


@gluon.jit
def _tile(j, G, pid, NT, T, L: gl.constexpr, BN: gl.constexpr, BM: gl.constexpr = 128):
    """The CTA's j-th tile of BM rows (_schedule's snake), k of the longest-first order (heads in turn, each head's
    row tiles longest first): its (b*H + h), first row, key blocks (j < c(t) of its last row) and unmasked blocks."""
    k = j * G + gl.where(j % 2 == 0, pid, G - 1 - pid)
    bh = k // NT
    t0 = (NT - 1 - k % NT) * BM
    hi = (gl.minimum(t0 + BM, T) - 1) // L
    return bh, t0, gl.cdiv(hi, BN), (t0 // L) // BN


@gluon.jit
def _rows(buf, BN: gl.constexpr):
    """A ring entry's first BN rows: a key block (the entries hold a whole tile's rows of kt and vt, more than BN with
    three consumer warpgroups, f25)."""
    if buf.shape[0] > BN:
        return buf.slice(0, BN)
    else:
        return buf


@gluon.jit
def _schedule(NT, n_tiles):
    """This CTA's tiles: the j-th is wave j's tile pid (even waves) or G - 1 - pid (odd waves, the snake that evens
    out the longest-first order across CTAs). Returns G, pid and how many tiles this CTA takes."""
    G = gl.num_programs(0)
    pid = gl.program_id(0)
    last = gl.cdiv(n_tiles, G) - 1
    x_last = gl.where(last % 2 == 0, pid, G - 1 - pid)
    return G, pid, last + (last * G + x_last < n_tiles).to(gl.int32)


@gluon.jit
def _tables(ptrs, j, G, pid, NT, T, tw_off, valid, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
            ROPE: gl.constexpr, SELF_LOGIT: gl.constexpr, s_layout: gl.constexpr, BM: gl.constexpr = 128):
    """The prologue's global loads for rows tw_off .. + 63 of the CTA's j-th tile (f11: in the D 128 prefill a tile ahead, under
    the previous tile's epilogue): RoPE_c's cos and sin ([64, D / 2] float32; 1 and 0 without ROPE) and with
    SELF_LOGIT the rows' self logits (the scan's SS, else 0). valid false (no such tile) masks every load."""
    bh, t0, _nb, _nf = _tile(j, G, pid, NT, T, L, BN, BM)
    COS, SIN, ss_row = ptrs[0], ptrs[1], ptrs[4] + bh.to(gl.int64) * T
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = _row_layout(HALF, 4)
    r = t0 + tw_off + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    if ROPE:
        vm = ((r < T) & valid)[:, None]
        tptr = (r // L)[:, None] * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(0, blk))[None, :]
        cos = gl.load(COS + tptr, mask=vm, other=1.0)
        sin = gl.load(SIN + tptr, mask=vm, other=0.0)
    else:
        cos = gl.full([64, HALF], 1.0, gl.float32, blk)
        sin = gl.zeros([64, HALF], gl.float32, blk)
    rs = t0 + tw_off + gl.arange(0, 64, layout=gl.SliceLayout(1, s_layout))
    if SELF_LOGIT:
        ss = gl.load(ss_row + rs, mask=(rs < T) & valid, other=0.0)
    else:
        ss = gl.zeros([64], gl.float32, gl.SliceLayout(1, s_layout))
    return cos, sin, ss


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
    s = warpgroup_mma(q_w, _rows(k_bufs.index(st), BN).permute((1, 0)), gl.zeros([64, BN], gl.float32, s_layout),
                      use_acc=False, is_async=True)
    mbarrier.wait(v_ready.index(pst), ((e0 + i - 1) // STAGES) & 1)
    acc = warpgroup_mma(p, _rows(v_bufs.index(pst), BN), acc, is_async=True)
    s = warpgroup_mma_wait(num_outstanding=1, deps=(s,))
    mbarrier.arrive(k_empty.index(st), count=1)
    p32, m_i, l_i, alpha = online_softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN, MASK, EXP_POLY, TREE,
                                          s_layout)
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    mbarrier.arrive(v_empty.index(pst), count=1)
    acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
    p = gl.convert_layout(p32.to(k_bufs.dtype), p_layout)
    return acc, p, m_i, l_i


@gluon.jit
def _rope_q(tables, q_w, q_bar, q_phase, D: gl.constexpr, ROPE: gl.constexpr):
    """q (TMA-loaded into q_w, once q_bar's phase q_phase completes) becomes q_r = RoPE_c(q) in place (16-bit);
    returns q_r's two halves in float32 (tables: _tables')."""
    cos, sin, _ss = tables
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = _row_layout(HALF, 4)
    mbarrier.wait(q_bar, q_phase)
    q1 = q_w.slice(0, HALF, dim=1).load(blk).to(gl.float32)
    q2 = q_w.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
    if ROPE:
        q1, q2 = q1 * cos - q2 * sin, q2 * cos + q1 * sin
    q_w.slice(0, HALF, dim=1).store(q1.to(q_w.dtype))
    q_w.slice(HALF, HALF, dim=1).store(q2.to(q_w.dtype))
    fence_async_shared()
    return q1, q2
