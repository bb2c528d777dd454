"""f12: RAT's forward (docs/rat-spec.md, op steps 1-3) with the scan inside the attention kernel, for sm_90.

fwd_fused_kernel is fwd_ws_kernel (impls/rat/gluon/forward.py) reading k, v and f instead of the scan's kt, vt:
  - the loader warp brings a tile's own 128 rows of k and v through the K / V ring's self entry (where kt, vt
    came before) and its rows of f into one buffer of their own;
  - each consumer warpgroup runs the recurrence s = f s + (1 - f) x over its 64 rows (one associative scan down the
    columns, the state cut at each chunk start by a zero factor; chunks must not cross the 64 rows: L divides 64),
    writes kt and vt back into the self entry in place, takes the self logit q . kt before q is rotated, stores
    the rows' chunk ends (RoPE_c(kt), vt; the state at T - 1 for a partial last chunk) to the chunk-end tensors and
    arrives on an mbarrier; in training it also stores RoPE_c(kt) and vt per row for the backward scan. Then the
    tile goes on as in fwd_ws_kernel: the self term, the chunk-end blocks, the epilogue;
  - a flag warp sets the tile's two 64-row flags (release, GPU scope) once both warpgroups arrived, so that the
    release's wait for the stores to reach L2 is not in the consumers' path;
  - the loader waits for the flags of every 64-row half tile whose chunk ends a key block holds before it loads
    that block by TMA (acquire, then a proxy fence).
A tile needs the chunk ends of earlier tiles of its head, so the tiles go in dependency order: tile g of the global
order is tile i = (g % (GB NT)) // GB of head (g // (GB NT)) GB + g % GB (GB heads side by side, each head's tiles
shortest first; GB = 1 by default, so that the CTAs running at one time read one head's chunk ends from L2 as
fwd_ws_kernel's order has them), and CTA pid takes g = pid, pid + G, ... in turn. Every wait then points to a
smaller g: the smallest unfinished tile's CTA is working on it and its chunk ends' producers are done, so the
kernel cannot hang while all its CTAs are resident (one per multiprocessor).
Bytes (U = one 16-bit token tensor): the prefill reads q, k, v, f and writes o (5 U) where scan_kernel + fwd_ws_kernel
move 8 U; training also writes RoPE_c(q), RoPE_c(kt), vt (8 U against 10). Status: experiment (issue 18, f12;
impls/rat/gluon/NOTES.md), emulated on the CPU, not yet run on a GPU.
"""
from __future__ import annotations

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from ratbench.impls.attention_core import LOG2E
from ratbench.impls.peer_utils import sm_count
from ratbench.impls.rat.gluon.backward import _flag_set, _flag_wait, _partition_barrier
from ratbench.impls.rat.gluon.consumer import row_layout, tile_blocks, tile_end
from ratbench.impls.rat.gluon.forward import BM, _ring_barriers, _ring_load

TILE = gl.constexpr(BM)  # query rows per tile (BM, for the kernels)
# f16's register split of the 4 warpgroups (16 warps at 128 registers a thread at launch): the worker consumer, the
# scan partition, the loader's warpgroup; the default consumer gets the rest (512 - 168 - 152 - 24 = 168)
CONSUMER_REGS = gl.constexpr(168)
SCANNER_REGS = gl.constexpr(152)
QB = gl.constexpr(3)  # f16b: q buffers (tiles), so that the loader brings tile j + 1's q, f, k, v while the consumers
# still hold tile j - 1's q buffer for its o store (two buffers kept the scan partition a tile behind its inputs)


@gluon.constexpr_function
def _col_layout(D):
    """A warpgroup's layout of a [64, D] tile with whole column segments in each thread (the scan runs down them):
    D / 4 columns per warp, 32 / (D / 4) threads down each column."""
    d = getattr(D, "value", D)
    tc = d // 4
    tr = 32 // tc
    return gl.BlockedLayout([64 // tr, 1], [tr, tc], [1, 4], [0, 1])


@gluon.jit
def _ftile(j, G, pid, NT, GB, T, L: gl.constexpr, BN: gl.constexpr):
    """The CTA's j-th tile in the dependency order: its (b*H + h), first row, key blocks, unmasked key blocks. GB 0
    (f13): whole heads, CTA pid takes heads pid, pid + G, ..., each head's tiles in order (no wait across CTAs)."""
    if GB == 0:
        bh = pid + (j // NT) * G
        t0 = (j % NT) * TILE
    else:
        g = pid + j * G
        r = g % (GB * NT)
        bh = (g // (GB * NT)) * GB + r % GB
        t0 = (r // GB) * TILE
    c0 = t0 // L  # chunk ends from c0 on are the tile's own: _intra reads them from the self entry (f13)
    return bh, t0, gl.cdiv(c0, BN), c0 // BN


@gluon.jit
def _fcount(n_tiles, NT, GB, G, pid):
    """How many tiles CTA pid takes (_ftile's order)."""
    n = gl.cdiv(n_tiles - pid, G)
    if GB == 0:
        n = NT * gl.cdiv(n_tiles // NT - pid, G)
    return n


@gluon.jit
def _combine(a1, b1, a2, b2):
    """(x -> a1 x + b1) then (x -> a2 x + b2)."""
    return a1 * a2, a2 * b1 + b2


@gluon.constexpr_function
def _scan_layout(L, D):
    """The layout the scan runs in, a warpgroup's [64, D] rows: f15 (L dividing 16) 16 rows x D / 32 adjacent columns
    per thread (a 16-row group is whole chunks, so the scan stays in the thread; 8- or 4-byte shared loads), warp w
    rows 16 w .. 16 w + 15, the lanes across the columns; else (f13) _col_layout, whole 64-row columns per thread."""
    d, c = (getattr(x, "value", x) for x in (D, L))
    if 16 % c == 0:
        return gl.BlockedLayout([16, d // 32], [1, 32], [4, 1], [1, 0])
    return _col_layout(d)


@gluon.jit
def _scan_rows(x_w, f_w, L: gl.constexpr, D: gl.constexpr):
    """The states s_r = f_r s_(r-1) + (1 - f_r) x_r of a warpgroup's 64 rows (x_w, f_w: [64, D] shared), s = 0 before
    each chunk's first row (a zero factor there); float32 in _scan_layout. f15: where L divides 16 the scan runs on
    [4, 16, D] (a reshape that only renames registers), along the axis each thread holds, so no lane or warp crosses
    it and the sequential in-thread scan is the only code (one FFMA per element once the unused factor products go)."""
    lay: gl.constexpr = _scan_layout(L, D)
    r = gl.arange(0, 64, layout=gl.SliceLayout(1, lay))
    f = f_w.load(lay).to(gl.float32)
    x = x_w.load(lay).to(gl.float32)
    a = gl.where((r % L == 0)[:, None], 0.0, f)
    b = (1.0 - f) * x
    if 16 % L == 0:
        _, s = gl.associative_scan((gl.reshape(a, [4, 16, D]), gl.reshape(b, [4, 16, D])), 1, _combine)
        s = gl.convert_layout(gl.reshape(s, [64, D]), lay)
    else:
        _, s = gl.associative_scan((a, b), 0, _combine)
    return s


@gluon.jit
def _store_last(ST, bh, tw, T, s, L: gl.constexpr, D: gl.constexpr):
    """The state of row T - 1 (float32, before RoPE) to ST (B*H, D), if this warpgroup holds that row."""
    col: gl.constexpr = _scan_layout(L, D)
    r = tw + gl.arange(0, 64, layout=gl.SliceLayout(1, col))
    c = gl.arange(0, D, layout=gl.SliceLayout(0, col))
    ptr = ST + bh.to(gl.int64) * D + c[None, :] + 0 * r[:, None]
    gl.store(ptr, s, mask=(r == T - 1)[:, None] & (c < D)[None, :])


@gluon.jit
def _rows_out(CE, RP, strides, Cs, T, H, bh, tw, x1, x2, ROWS: gl.constexpr, L: gl.constexpr, D: gl.constexpr):
    """Rows tw .. tw + 63 of one state (halves x1, x2, in row_layout(D / 2)): the chunk ends (rows L - 1 of each
    chunk, and T - 1) to CE (B, H, Cs, D), with ROWS every row before T to RP (B, T, H, D; o's strides)."""
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = row_layout(HALF, 4)
    r = tw + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    c = gl.arange(0, HALF, layout=gl.SliceLayout(0, blk))[None, :]
    end = (((r % L) == L - 1) | (r == T - 1)) & (r < T)
    ep = CE + (bh.to(gl.int64) * Cs + r // L)[:, None] * D + c
    gl.store(ep, x1.to(CE.dtype.element_ty), mask=end[:, None])
    gl.store(ep + HALF, x2.to(CE.dtype.element_ty), mask=end[:, None])
    if ROWS:
        o_b, o_t, o_h = strides
        rp = RP + ((bh // H).to(gl.int64) * o_b + (bh % H).to(gl.int64) * o_h + r.to(gl.int64) * o_t)[:, None] + c
        gl.store(rp, x1.to(RP.dtype.element_ty), mask=(r < T)[:, None])
        gl.store(rp + HALF, x2.to(RP.dtype.element_ty), mask=(r < T)[:, None])


@gluon.jit
def _fscan_half(ptrs, strides, sc, q_w, k_w, v_w, f_w, ss_w, bh, t0, WG: gl.constexpr, L: gl.constexpr,
                D: gl.constexpr, ROPE: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr):
    """f16, in the scan partition: rows t0 + 64 WG .. + 63 of a tile: the scan (kt, vt into the self entry k_w, v_w in
    place), the self logit q . kt scale2 into ss_w (q not yet rotated: RoPE_c leaves q_t . kt_t as it is), RoPE_c(kt)
    into k_w for _intra, the chunk ends (and in training every row) out to global memory."""
    T, H, Cs, _NT, _n, _GB, scale2 = sc
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = row_layout(HALF, 4)
    tw = t0 + WG * 64
    kt = _scan_rows(k_w, f_w, L, D)
    if WRITE_LAST:
        _store_last(ptrs[10], bh, tw, T, kt, L, D)
    k_w.store(kt.to(k_w.dtype))
    vt = _scan_rows(v_w, f_w, L, D)
    if WRITE_LAST:
        _store_last(ptrs[11], bh, tw, T, vt, L, D)
    v_w.store(vt.to(v_w.dtype))
    _partition_barrier()
    r = tw + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
    k1 = k_w.slice(0, HALF, dim=1).load(blk).to(gl.float32)
    k2 = k_w.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
    q1 = q_w.slice(0, HALF, dim=1).load(blk).to(gl.float32)
    q2 = q_w.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
    ss_w.store(gl.sum(q1 * k1 + q2 * k2, 1) * scale2)
    if ROPE:
        tptr = (r // L)[:, None] * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(0, blk))[None, :]
        cos = gl.load(ptrs[0] + tptr, mask=(r < T)[:, None], other=1.0)
        sin = gl.load(ptrs[1] + tptr, mask=(r < T)[:, None], other=0.0)
        k1, k2 = k1 * cos - k2 * sin, k2 * cos + k1 * sin
    _rows_out(ptrs[6], ptrs[8], strides, Cs, T, H, bh, tw, k1, k2, ROWS_OUT, L, D)
    if ROPE:  # the self entry holds RoPE_c(kt) for _intra (each thread rewrites what it loaded)
        k_w.slice(0, HALF, dim=1).store(k1.to(k_w.dtype))
        k_w.slice(HALF, HALF, dim=1).store(k2.to(k_w.dtype))
    v1 = v_w.slice(0, HALF, dim=1).load(blk).to(gl.float32)
    v2 = v_w.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
    _rows_out(ptrs[7], ptrs[9], strides, Cs, T, H, bh, tw, v1, v2, ROWS_OUT, L, D)


@gluon.jit
def _fprologue(ptrs, sc, q_w, v_w, ss_w, t0, WG: gl.constexpr, L: gl.constexpr, D: gl.constexpr,
               ROPE: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr):
    """f16, in a consumer warpgroup, once the scan partition is done with the tile: m = the self logit (ss_w), q_r =
    RoPE_c(q) in place, acc = vt, l = 1. Returns acc, m, l, chunk ids (as forward._prologue)."""
    T = sc[0]
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = row_layout(HALF, 4)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    tw = t0 + WG * 64
    m_i = ss_w.load(row_s)
    if ROPE:
        r = tw + gl.arange(0, 64, layout=gl.SliceLayout(1, blk))
        tptr = (r // L)[:, None] * HALF + gl.arange(0, HALF, layout=gl.SliceLayout(0, blk))[None, :]
        cos = gl.load(ptrs[0] + tptr, mask=(r < T)[:, None], other=1.0)
        sin = gl.load(ptrs[1] + tptr, mask=(r < T)[:, None], other=0.0)
        q1 = q_w.slice(0, HALF, dim=1).load(blk).to(gl.float32)
        q2 = q_w.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
        q1, q2 = q1 * cos - q2 * sin, q2 * cos + q1 * sin
        q_w.slice(0, HALF, dim=1).store(q1.to(q_w.dtype))
        q_w.slice(HALF, HALF, dim=1).store(q2.to(q_w.dtype))
        fence_async_shared()
    acc = v_w.load(o_layout).to(gl.float32)
    l_i = gl.full([64], 1.0, gl.float32, row_s)
    return acc, m_i, l_i, (tw + gl.arange(0, 64, layout=row_s)) // L


@gluon.jit
def _intra(q_w, k_self, v_self, t0, crow, acc, m_i, l_i, scale2, L: gl.constexpr, s_layout: gl.constexpr,
           o_layout: gl.constexpr):
    """f13: the tile's own chunk ends (rows t0 + c with c % L = L - 1, before each row's chunk) from the self entry
    (k_self: RoPE_c(kt), v_self: vt of the tile's 128 rows), as one more key block of the online softmax, so that no
    tile waits for its own chunk ends to come back from global memory."""
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    s = warpgroup_mma(q_w, k_self.permute((1, 0)), gl.zeros([64, TILE], gl.float32, s_layout), use_acc=False,
                      is_async=True)
    s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
    r = t0 + gl.arange(0, TILE, layout=gl.SliceLayout(0, s_layout))
    keep = ((r % L) == L - 1)[None, :] & ((r // L)[None, :] < crow[:, None])
    s = gl.where(keep, s, -float("inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * scale2)
    alpha = gl.exp2(m_i - m_new)
    p = gl.exp2(s * scale2 - m_new[:, None])
    l_i = l_i * alpha + gl.sum(p, 1)
    acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
    p = gl.convert_layout(p.to(k_self.dtype), p_layout)
    acc = warpgroup_mma(p, v_self, acc, is_async=True)
    acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
    return acc, m_new, l_i


@gluon.jit
def _fconsumer(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
               ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr,
               STORE_QR: gl.constexpr, O_TMA: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr,
               EXP_POLY: gl.constexpr, SPLIT: gl.constexpr, TREE: gl.constexpr):
    """One consumer warpgroup: rows 64 WG .. + 63 of each of the CTA's tiles (forward._consumer with _fprologue)."""
    T, H, _Cs, NT, n_tiles, GB, scale2 = sc
    q_bufs, k_bufs, v_bufs, _f_buf, ss_buf = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty, _f_ready, _f_empty, scanned, ss_free = bars
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, D, 16])
    G = gl.num_programs(0)
    pid = gl.program_id(0)
    e = 0
    for j in range(_fcount(n_tiles, NT, GB, G, pid)):
        bh, t0, n_blocks, n_full = _ftile(j, G, pid, NT, GB, T, L, BN)
        q_w = q_bufs.index((j % QB) * 2 + WG)
        es = e % STAGES
        mbarrier.wait(scanned.index(j % 2), (j // 2) & 1)  # the scan partition is done with tile j (f16)
        acc, m_i, l_i, crow = _fprologue(ptrs, sc, q_w, v_bufs.index(es).slice(WG * 64, 64),
                                         ss_buf.index((j % 2) * 2 + WG), t0, WG, L, D, ROPE, s_layout, o_layout)
        mbarrier.arrive(ss_free.index(j % 2), count=1)
        acc, m_i, l_i = _intra(q_w, k_bufs.index(es), v_bufs.index(es), t0, crow, acc, m_i, l_i, scale2, L, s_layout,
                               o_layout)
        crow = gl.minimum(crow, t0 // L)  # the key blocks: chunk ends before the tile's first chunk
        acc, m_i, l_i = tile_blocks(q_w, k_bufs, v_bufs, (k_ready, v_ready, k_empty, v_empty), q_empty, descs[6], j, e,
                                    bh * (NT * 128) + t0 + WG * 64, n_blocks, n_full, acc, m_i, l_i, crow, scale2, BN,
                                    D, STAGES, STORE_LSE, STORE_QR, O_TMA, EXP_POLY, SPLIT, TREE, s_layout, o_layout,
                                    QB)
        tile_end(q_w, q_empty, descs[7], ptrs[2], ptrs[3], strides, T, H, bh, t0 + WG * 64, j, acc, m_i, l_i, D,
                 STORE_LSE, STORE_QR, O_TMA, s_layout, o_layout, QB)
        e += 1 + n_blocks
    if O_TMA:
        tma.store_wait(0)


@gluon.jit
def _fconsumer0(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
                ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr,
                O_TMA: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr, EXP_POLY: gl.constexpr,
                SPLIT: gl.constexpr, TREE: gl.constexpr):
    _fconsumer(ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 0, STORE_QR, O_TMA,
               ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)


@gluon.jit
def _fconsumer1(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
                ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr,
                O_TMA: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr, EXP_POLY: gl.constexpr,
                SPLIT: gl.constexpr, TREE: gl.constexpr):
    _fconsumer(ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 1, STORE_QR, O_TMA,
               ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)


@gluon.jit
def _wait_ends(flags, c_lo, c_hi, L: gl.constexpr):
    """Waits until the 64-row half tiles holding chunk ends c_lo .. c_hi - 1 of one head (flags: that head's) have
    published them; one flag per lane, 32 at a time."""
    lay: gl.constexpr = gl.BlockedLayout([1], [32], [1], [0])
    h_lo = (c_lo * L) // 64
    h_hi = (c_hi * L - 1) // 64
    lane = gl.arange(0, 32, layout=lay)
    for g in range(h_lo, h_hi + 1, 32):
        _flag_wait(flags + gl.minimum(g + lane, h_hi))


@gluon.jit
def _floader(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
             ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr,
             O_TMA: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr, EXP_POLY: gl.constexpr,
             SPLIT: gl.constexpr, TREE: gl.constexpr):
    """The TMA warp: per tile q, the tile's rows of f (once both consumers scanned the previous tile's), of k and v
    (the ring's self entry), then each chunk-end block of K and V once its producers' flags are set."""
    T, H, Cs, NT, n_tiles, GB, _scale2 = sc
    q_bufs, k_bufs, v_bufs, f_buf, _ss_buf = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty, f_ready, f_empty, _scanned, _ss_free = bars
    ring = (k_ready, v_ready, k_empty, v_empty)
    q_desc, k_desc, v_desc, f_desc, ke_desc, ve_desc, _qr_desc, _o_desc = descs
    G = gl.num_programs(0)
    pid = gl.program_id(0)
    e = 0
    for j in range(_fcount(n_tiles, NT, GB, G, pid)):
        bh, t0, n_blocks, _n_full = _ftile(j, G, pid, NT, GB, T, L, BN)
        row = (bh // H) * T + t0  # q, k, v, f as (B*T, H*D) matrices
        col = (bh % H) * D
        qb = j % QB
        mbarrier.wait(q_empty.index(qb), ((j // QB) & 1) ^ 1)
        mbarrier.expect(q_ready.index(qb), 2 * q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [row, col], q_ready.index(qb), q_bufs.index(2 * qb))
        tma.async_copy_global_to_shared(q_desc, [row + 64, col], q_ready.index(qb), q_bufs.index(2 * qb + 1))
        mbarrier.wait(f_empty.index(j % 2), ((j // 2) & 1) ^ 1)
        mbarrier.expect(f_ready.index(j % 2), f_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(f_desc, [row, col], f_ready.index(j % 2), f_buf.index(j % 2))
        _ring_load(k_desc, v_desc, row, row, col, e, k_bufs, v_bufs, ring, STAGES)
        for i in range(n_blocks):
            _wait_ends(ptrs[12] + bh * (NT * 2), i * BN, gl.minimum((i + 1) * BN, t0 // L), L)
            _ring_load(ke_desc, ve_desc, bh * Cs + i * BN, bh * Cs + i * BN, 0, e + 1 + i, k_bufs, v_bufs, ring,
                       STAGES)
        e += 1 + n_blocks


@gluon.jit
def _fscanner(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
              ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr,
              O_TMA: gl.constexpr, ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr, EXP_POLY: gl.constexpr,
              SPLIT: gl.constexpr, TREE: gl.constexpr):
    """f16: the scan partition (one warpgroup), a tile ahead of the consumers where the ring lets the loader run
    ahead: per tile, once its f, its self entry (k, v) and q are in and its self-logit slot is free, both 64-row
    halves (_fscan_half), f handed back, then the tile's two 64-row flags (release at GPU scope, after every thread's
    chunk-end stores) and the consumers' go (scanned)."""
    T, _H, _Cs, NT, n_tiles, GB, _scale2 = sc
    q_bufs, k_bufs, v_bufs, f_buf, ss_buf = smem
    k_ready, v_ready, _k_empty, _v_empty, q_ready, _q_empty, f_ready, f_empty, scanned, ss_free = bars
    G = gl.num_programs(0)
    pid = gl.program_id(0)
    e = 0
    for j in range(_fcount(n_tiles, NT, GB, G, pid)):
        bh, t0, n_blocks, _n_full = _ftile(j, G, pid, NT, GB, T, L, BN)
        es = e % STAGES
        mbarrier.wait(f_ready.index(j % 2), (j // 2) & 1)
        mbarrier.wait(k_ready.index(es), (e // STAGES) & 1)
        mbarrier.wait(v_ready.index(es), (e // STAGES) & 1)
        mbarrier.wait(q_ready.index(j % QB), (j // QB) & 1)
        mbarrier.wait(ss_free.index(j % 2), ((j // 2) & 1) ^ 1)
        for wg in gl.static_range(2):
            _fscan_half(ptrs, strides, sc, q_bufs.index((j % QB) * 2 + wg), k_bufs.index(es).slice(wg * 64, 64),
                        v_bufs.index(es).slice(wg * 64, 64), f_buf.index(j % 2).slice(wg * 64, 64),
                        ss_buf.index((j % 2) * 2 + wg), bh, t0, wg, L, D, ROPE, ROWS_OUT, WRITE_LAST)
        fence_async_shared()  # the self entry's RoPE_c(kt) before the consumers' wgmma reads it (_intra)
        _partition_barrier()  # every thread's shared and chunk-end stores before the flags and the go
        mbarrier.arrive(f_empty.index(j % 2), count=1)
        flag = ptrs[12] + bh * (NT * 2) + t0 // 64
        _flag_set(flag)
        _flag_set(flag + 1)
        mbarrier.arrive(scanned.index(j % 2), count=1)
        e += 1 + n_blocks


@gluon.jit
def fwd_fused_kernel(
    q_desc, k_desc, v_desc, f_desc, ke_desc, ve_desc, qr_desc, o_desc,
    COS, SIN, O, LSE, KE, VE, KTR, VT, STK, STV, FLAGS,
    o_b, o_t, o_h, T, H, Cs, NT, n_tiles, GB, scale2,
    L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr, ROPE: gl.constexpr,
    STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr, O_TMA: gl.constexpr,
    ROWS_OUT: gl.constexpr, WRITE_LAST: gl.constexpr, EXP_POLY: gl.constexpr, SPLIT: gl.constexpr,
    TREE: gl.constexpr,
):
    dtype: gl.constexpr = ke_desc.dtype
    q_bufs = gl.allocate_shared_memory(dtype, [2 * QB, 64, D], q_desc.layout)  # QB tiles x 2 warpgroups
    k_bufs = gl.allocate_shared_memory(dtype, [STAGES, BN, D], ke_desc.layout)
    v_bufs = gl.allocate_shared_memory(dtype, [STAGES, BN, D], ve_desc.layout)
    f_buf = gl.allocate_shared_memory(dtype, [2, BN, D], f_desc.layout)  # f16c: two, so f_{j+1} loads under j's scan
    k_ready, v_ready, k_empty, v_empty, _q_ready2, _q_empty2 = _ring_barriers(STAGES)
    q_ready = gl.allocate_shared_memory(gl.int64, [QB, 1], mbarrier.MBarrierLayout())
    q_empty = gl.allocate_shared_memory(gl.int64, [QB, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(QB):
        mbarrier.init(q_ready.index(i), count=1)
        mbarrier.init(q_empty.index(i), count=2)
    f_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    f_empty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(2):
        mbarrier.init(f_ready.index(i), count=1)
        mbarrier.init(f_empty.index(i), count=1)  # the scan partition is done with f
    ss_buf = gl.allocate_shared_memory(gl.float32, [4, 64], gl.SwizzledSharedLayout(1, 1, 1, [0]))
    scanned = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    ss_free = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(2):
        mbarrier.init(scanned.index(i), count=1)  # the scan partition is done with the tile (q buffer i)
        mbarrier.init(ss_free.index(i), count=2)  # both consumer warpgroups read their self logits
    ptrs = (COS, SIN, O, LSE, O, O, KE, VE, KTR, VT, STK, STV, FLAGS)
    strides = (o_b, o_t, o_h)
    sc = (T, H, Cs, NT, n_tiles, GB, scale2)
    smem = (q_bufs, k_bufs, v_bufs, f_buf, ss_buf)
    bars = (k_ready, v_ready, k_empty, v_empty, q_ready, q_empty, f_ready, f_empty, scanned, ss_free)
    descs = (q_desc, k_desc, v_desc, f_desc, ke_desc, ve_desc, qr_desc, o_desc)
    # constexprs written out in each tuple (a constexpr inside a tuple variable becomes an int32 tensor)
    gl.warp_specialize([
        (_fconsumer0, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                       ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)),
        (_fconsumer1, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                       ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)),
        (_fscanner, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                     ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)),
        (_floader, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                    ROWS_OUT, WRITE_LAST, EXP_POLY, SPLIT, TREE)),
    ], [4, 4, 1], [CONSUMER_REGS, SCANNER_REGS, 24])


def fused_supported(T: int, L: int, D: int, dtypes: tuple[torch.dtype, ...]) -> bool:
    """Whether fwd_fused_kernel takes this shape: chunks inside 64-row halves (L divides 64), head dim 64 (f16: the
    scan partition's registers and the ring's shared memory leave no room at 128), q, k, v, f of one 16-bit dtype."""
    return 64 % L == 0 and D == 64 and len(set(dtypes)) == 1 and dtypes[0] in (torch.bfloat16, torch.float16)


def group_heads(BH: int, group: int) -> int:
    """GB: the largest divisor of B*H up to group (the heads whose tiles are interleaved in the order); 0 for group 0
    (f13: whole heads per CTA)."""
    if group == 0:
        return 0
    return max(g for g in range(1, min(group, BH) + 1) if BH % g == 0)


def launch_fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, f: torch.Tensor, cos: torch.Tensor,
                 sin: torch.Tensor, ke: torch.Tensor, ve: torch.Tensor, o: torch.Tensor, lse: torch.Tensor, L: int,
                 scale2: float, rope: bool, store_lse: bool, stages: int = 2, qr: torch.Tensor | None = None,
                 rows: tuple[torch.Tensor, torch.Tensor] | None = None,
                 last_state: tuple[torch.Tensor, torch.Tensor] | None = None, exp_poly: int = 0, split: bool = True,
                 tree: int = 1, group: int = 1) -> None:
    """fwd_fused_kernel over (B, T, H, D) q, k, v, f (dense, one 16-bit dtype) into o, lse (with store_lse), the
    chunk ends ke, ve (B, H, Cs, D), Cs >= C (a decode cache may be longer), finite on entry (a tile's last key block
    is read while later tiles may not have written their rows of it: P is 0 there, but 0 x NaN is not 0); qr as launch_forward's; rows: (ktr, vt),
    (B, T, H, D) tensors of o's strides that get RoPE_c(kt) and vt per row (training); last_state: (B*H, D) float32
    tensors that get kt, vt at T - 1 (before RoPE). group: heads side by side in the tile order (group_heads); 1 keeps
    the CTAs that run at one time on one head's chunk ends in L2, as fwd_ws_kernel's order does."""
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    B, T, H, D = q.shape
    Cs = ke.shape[2]
    if not fused_supported(T, L, D, (q.dtype, k.dtype, v.dtype, f.dtype)):
        raise ValueError(f"rat/gluon f12: the fused forward needs a chunk size dividing 64, head dim 64 or 128 and q, "
                         f"k, v, f of one 16-bit dtype, got L={L}, D={D}, {q.dtype}/{k.dtype}/{v.dtype}/{f.dtype}")
    if not scale2 > 0:
        raise ValueError(f"rat/gluon needs a positive softmax scale, got {scale2 / LOG2E:g}")
    if ke.stride() != (H * Cs * D, Cs * D, D, 1) or ve.stride() != ke.stride():
        raise ValueError("rat/gluon: the chunk ends (decode cache) must be contiguous (B, H, C, D) tensors")
    dense = (T * H * D, H * D, D, 1)
    q, k, v, f = (x if x.stride() == dense else x.contiguous() for x in (q, k, v, f))
    gdt = {torch.bfloat16: gl.bfloat16, torch.float16: gl.float16}[q.dtype]
    lay = gl.NVMMASharedLayout.get_default_for([BM, D], gdt)
    lay_q = gl.NVMMASharedLayout.get_default_for([64, D], gdt)
    ends = [TensorDescriptor(x, [B * H * Cs, D], [D, 1], [BM, D], lay) for x in (ke, ve)]
    kvf = [TensorDescriptor(x, [B * T, H * D], [H * D, 1], [BM, D], lay) for x in (k, v, f)]
    q_desc = TensorDescriptor(q, [B * T, H * D], [H * D, 1], [64, D], lay_q)
    NT = triton.cdiv(T, BM)
    store_qr = store_lse and qr is not None
    if store_qr and (qr.shape != (B * H, NT * BM, D) or not qr.is_contiguous() or qr.dtype != q.dtype):
        raise ValueError(f"rat/gluon: the RoPE(q) output must be a contiguous ({B * H}, {NT * BM}, {D}) {q.dtype} "
                         f"tensor, got {tuple(qr.shape)} {qr.dtype}")
    qr_desc = TensorDescriptor(qr, [B * H * NT * BM, D], [D, 1], [64, D], lay_q) if store_qr else q_desc
    o_tma = T % BM == 0 and o.stride() == dense and o.dtype == q.dtype
    o_desc = TensorDescriptor(o, [B * T, H * D], [H * D, 1], [64, D], lay_q) if o_tma else q_desc
    if rows is not None and any(x.stride() != o.stride() or x.dtype != q.dtype for x in rows):
        raise ValueError("rat/gluon f12: the per-row kt, vt outputs must have o's strides and q's dtype")
    ktr, vt = rows if rows is not None else (o, o)
    stk, stv = last_state if last_state is not None else (lse, lse)
    flags = torch.zeros(B * H * NT * 2, device=q.device, dtype=torch.int32)
    n_tiles = NT * B * H
    n_sm = sm_count(q.device) or 132  # an H200's count off the GPU (the static gate compiles with meta tensors)
    fwd_fused_kernel[(min(n_tiles if group else B * H, n_sm),)](
        q_desc, kvf[0], kvf[1], kvf[2], ends[0], ends[1], qr_desc, o_desc,
        cos, sin, o, lse, ke, ve, ktr, vt, stk, stv, flags,
        o.stride(0), o.stride(1), o.stride(2), T, H, Cs, NT, n_tiles, group_heads(B * H, group), scale2,
        L=L, BN=BM, D=D, ROPE=rope, STORE_LSE=store_lse, STAGES=stages, STORE_QR=store_qr, O_TMA=o_tma,
        ROWS_OUT=rows is not None, WRITE_LAST=last_state is not None, EXP_POLY=exp_poly, SPLIT=split, TREE=tree,
        num_warps=4, maxnreg=128,
    )
