"""The RAT forward attention (docs/rat-spec.md, op step 3) as a warp-specialized, persistent Gluon kernel for sm_90.

fwd_ws_kernel  grid: one CTA per multiprocessor (fewer if there are fewer tiles). The 128-row query tiles of all
               heads, heads in turn and each head's tiles longest first (_tile), are dealt to the CTAs in a snake
               (_schedule). One CTA = three partitions:
                 _loader (one warp, TMA), running ahead across the CTA's tiles: q of a tile into one of two q
                   buffers (once both consumers are done with the tile two back), then through a ring of STAGES
                   K/V buffers (one mbarrier per buffer and operand, refilled once both consumers released it) the
                   tile's own 128 rows of kt and vt (the self term) and its chunk-end blocks K_j, V_j of BN rows;
                 two consumer warpgroups of 64 rows each (_consumer), per tile:
                   _prologue: q_r = RoPE_c(q) in place in shared memory (in training also stored by TMA for the
                     backward, STORE_QR); the self term starts the online softmax
                     from the ring's kt / vt rows (m = q_r . kt_t scale2 with float32 q_r, l = 1, acc = vt_t);
                   _blocks (FA3's intra-warpgroup overlap): issue S_i = q_r K_i^T and O += P_{i-1} V_{i-1} (wgmma,
                     P from registers), wait for S_i only, softmax of S_i (the j < c(t) mask on the last blocks
                     only; the scale folded into the exponent's FFMA), wait, release the buffer, rescale O;
                   _epilogue: o = acc / l, lse = m + log2(l) (base 2) for the backward; where T is a multiple of
                     128, _epilogue_tma: o through the tile's q buffer by TMA (f2), the buffer handed back to the
                     loader once the store has read it.
               Where few key blocks per tile make the boundary count (rat.gluon.cross_tile_used in the prefill,
               train_cross_tile_used in training, f26), the consumers are xt.py's instead (f23: a tile's last P V and epilogue under the next tile's RoPE of q and
               first S), with three q buffers, and the loader brings each tile's masked block first. What both
               consumers share (the tiles' order, RoPE of q, a key block, the TMA epilogue) is in tile.py.
               At head dim 64 on long tiles (rat.gluon.prefill_wgs3_used, train_wgs3_used) three consumer
               warpgroups of 64 rows take 192-row tiles (f25, FA3's tile there: one warpgroup's softmax under the
               other two's products), the self entry in three 64-row boxes of a 256-row ring entry.
Inputs as impls/rat/kernels/forward.py (the Triton kernel this one replaces): RoPE'd kt and vt per token from
scan_kernel, read with q as (B*T, H*D) matrices; the chunk ends compact (B, H, Cs, D) with Cs >= C (a decode cache
may be longer), read as one (B*H*Cs, D) matrix. Rows past T of a tile read the next sequence's rows (or TMA's zeros)
and are not stored; rows of a key block past c(t) are read but masked (P = 0).
Math: FlashAttention-2's online softmax (Dao 2023); the overlap of softmax with the products, the producer warp and
the persistent longest-first schedule as in FlashAttention-3 (Shah et al. 2024), written here for RAT's chunk-end
keys. Versions and measurements (one 8-warp consumer partition; inter-warpgroup ping-pong; one CTA per tile; split
masked loop): impls/rat/gluon/NOTES.md.
"""
from __future__ import annotations

import torch
import triton
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from ratbench.impls.attention_core import LOG2E
from ratbench.impls.peer_utils import sm_count
from ratbench.impls.rat.gluon.softmax import online_softmax
from ratbench.impls.rat.gluon.tile import (
    _block,
    _epilogue_tma,
    _rope_q,
    _row_layout,
    _rows,
    _schedule,
    _store_lse,
    _tables,
    _tile,
)
from ratbench.impls.rat.gluon.xt import consumer_xt

BM = 128  # query rows per CTA: two consumer warpgroups of 64 rows (f25: three, 192 rows)
WG3_MAXNREG = 128  # f25: 16 warps at launch (the loader warp padded to a warpgroup) x 32 x 128 = 65,536
XT_SMEM = 232_448 - 1024  # shared memory for f23's buffers: sm_90's 227 KB per CTA less room for its barriers


@gluon.jit
def _prologue(tables, q_w, k_self, v_self, t0, scale2, tw_off, L: gl.constexpr, D: gl.constexpr,
              ROPE: gl.constexpr, s_layout: gl.constexpr, o_layout: gl.constexpr, q_bar, q_phase, kv_bar, kv_phase,
              SELF_LOGIT: gl.constexpr):
    """Rows t0 + tw_off .. + 63 (tables: their _tables). q (TMA-loaded into q_w) becomes q_r = RoPE_c(q) in place
    (16-bit); the online softmax starts from the self term: m = q_r . kt_t scale2 (float32 q_r; kt_t from the ring's
    self block k_self, or with SELF_LOGIT the scan's q_t . kt_t from tables), l = 1, acc = vt_t (v_self, read in the
    accumulator's layout). Returns acc, m, l, chunk ids."""
    ss = tables[2]
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = _row_layout(HALF, 4)
    q1, q2 = _rope_q(tables, q_w, q_bar, q_phase, D, ROPE)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    if SELF_LOGIT:
        m_i = ss * scale2
    else:
        mbarrier.wait(kv_bar[0], kv_phase)
        k1 = k_self.slice(0, HALF, dim=1).load(blk).to(gl.float32)
        k2 = k_self.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
        m_i = gl.convert_layout(gl.sum(q1 * k1 + q2 * k2, 1) * scale2, row_s)
    mbarrier.wait(kv_bar[1], kv_phase)
    acc = v_self.load(o_layout).to(gl.float32)
    l_i = gl.full([64], 1.0, gl.float32, row_s)
    return acc, m_i, l_i, (t0 + tw_off + gl.arange(0, 64, layout=row_s)) // L


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
    ob: gl.constexpr = _row_layout(D, 4)
    o = gl.convert_layout(o.to(O.dtype.element_ty), ob)
    ro = gl.arange(0, BMW, layout=gl.SliceLayout(1, ob))
    co = gl.arange(0, D, layout=gl.SliceLayout(0, ob))
    gl.store(O + o_base + ro[:, None] * o_t + co[None, :], o, mask=((tw + ro) < T)[:, None])
    if STORE_LSE:
        _store_lse(LSE, T, bh, tw, m_i, l_i, s_layout)


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
        s = warpgroup_mma(q_w, _rows(k_bufs.index(e0 % STAGES), BN).permute((1, 0)),
                          gl.zeros([BMW, BN], gl.float32, s_layout), use_acc=False, is_async=True)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        mbarrier.arrive(k_empty.index(e0 % STAGES), count=1)
        p32, m_i, l_i, alpha = online_softmax(s, m_i, l_i, 0, n_full, crow, cols, scale2, BN, 2, EXP_POLY, TREE,
                                              s_layout)
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
        acc = warpgroup_mma(p, _rows(v_bufs.index(last % STAGES), BN), acc, is_async=True)
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
        mbarrier.arrive(v_empty.index(last % STAGES), count=1)
    return acc, m_i, l_i


@gluon.jit
def _qr_out(T, tw, STORE: gl.constexpr):
    """Whether a 64-row box at row tw goes into the RoPE(q) output (STORE: there is one), whose rows are T rounded up
    to 128 (f25's 192-row tiles reach past them)."""
    if STORE:
        return tw < gl.cdiv(T, 128) * 128
    else:
        return False


@gluon.jit
def _consumer(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
              ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr,
              STORE_QR: gl.constexpr, O_TMA: gl.constexpr, SELF_LOGIT: gl.constexpr, EXP_POLY: gl.constexpr,
              SPLIT: gl.constexpr, TREE: gl.constexpr, NWG: gl.constexpr):
    """One of NWG consumer warpgroups: rows 64 WG .. + 63 of each of the CTA's tiles (64 NWG rows): prologue, blocks,
    epilogue. With STORE_LSE and a RoPE(q) output (descs[6], a (B*H*Tq, D) matrix; Tq = T rounded up to 128) the
    prologue's q_r also goes there by TMA, for the backward (b5); with three warpgroups (f25) only the 64-row boxes
    below Tq (launch_forward zeroes the rows of Tq past the last tile)."""
    T, H, NT, n_tiles, scale2 = sc
    BM: gl.constexpr = 64 * NWG
    q_bufs, k_bufs, v_bufs = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty = bars
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, D, 16])
    G, pid, n_mine = _schedule(NT, n_tiles)
    # f11 (NOTES.md "Eleventh session"): _tables a tile ahead in the D 128 prefill with o by TMA, else at the tile's
    # start (the plain-store epilogue spills with them ahead; the training forward and D 64 measured slower)
    AHEAD: gl.constexpr = O_TMA and not STORE_LSE and D == 128
    tables = _tables(ptrs, 0, G, pid, NT, T, WG * 64, n_mine > 0, L, BN, D, ROPE, SELF_LOGIT, s_layout, BM)
    e = 0  # ring entries consumed so far: per tile its self block (kt, vt of its rows), then its key blocks
    for j in range(n_mine):
        bh, t0, n_blocks, n_full = _tile(j, G, pid, NT, T, L, BN, BM)
        if not AHEAD:
            tables = _tables(ptrs, j, G, pid, NT, T, WG * 64, j < n_mine, L, BN, D, ROPE, SELF_LOGIT, s_layout, BM)
        q_w = q_bufs.index((j % 2) * NWG + WG)
        es = e % STAGES
        acc, m_i, l_i, crow = _prologue(
            tables, q_w, k_bufs.index(es).slice(WG * 64, 64), v_bufs.index(es).slice(WG * 64, 64), t0, scale2,
            WG * 64, L, D, ROPE, s_layout, o_layout, q_ready.index(j % 2), (j // 2) & 1,
            (k_ready.index(es), v_ready.index(es)), (e // STAGES) & 1, SELF_LOGIT)
        if STORE_LSE and STORE_QR:
            if NWG == 2:
                tma.async_copy_shared_to_global(descs[6], [bh * (NT * 128) + t0 + WG * 64, 0], q_w)
            elif _qr_out(T, t0 + WG * 64, True):
                tma.async_copy_shared_to_global(descs[6], [bh * (gl.cdiv(T, 128) * 128) + t0 + WG * 64, 0], q_w)
        if O_TMA and j > 0:  # the previous tile's o (issued before this tile's RoPE(q)) has left its q buffer
            if NWG == 2:
                tma.store_wait(1 if STORE_LSE and STORE_QR else 0)
            elif _qr_out(T, t0 + WG * 64, STORE_LSE and STORE_QR):  # f25: this tile's q_r store went out
                tma.store_wait(1)
            else:
                tma.store_wait(0)
            mbarrier.arrive(q_empty.index((j - 1) % 2), count=1)
        mbarrier.arrive(k_empty.index(es), count=1)
        mbarrier.arrive(v_empty.index(es), count=1)
        acc, m_i, l_i = _blocks(q_w, k_bufs, v_bufs, (k_ready, v_ready, k_empty, v_empty), e + 1, n_blocks, n_full,
                                acc, m_i, l_i, crow, scale2, BN, D, STAGES, s_layout, o_layout, EXP_POLY, SPLIT, TREE)
        if AHEAD:  # the next tile's, under this tile's epilogue
            tables = _tables(ptrs, j + 1, G, pid, NT, T, WG * 64, j + 1 < n_mine, L, BN, D, ROPE, SELF_LOGIT,
                             s_layout)
        if STORE_LSE and STORE_QR:
            tma.store_wait(0)  # the q_r store has read q_w
        if O_TMA:
            if NWG == 2 or t0 + WG * 64 < T:  # f25 (T a multiple of 64): a box past T stores nothing
                _epilogue_tma(descs[7], ptrs[3], T, H, bh, t0 + WG * 64, q_w, acc, m_i, l_i, D, STORE_LSE, s_layout,
                              o_layout)
        else:
            mbarrier.arrive(q_empty.index(j % 2), count=1)
            _epilogue(ptrs[2], ptrs[3], strides, T, H, bh, t0 + WG * 64, acc, m_i, l_i, D, STORE_LSE, s_layout,
                      o_layout)
        e += 1 + n_blocks
    if O_TMA:
        tma.store_wait(0)


@gluon.jit
def _consumer_wg(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
                 ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr,
                 STORE_QR: gl.constexpr, O_TMA: gl.constexpr, SELF_LOGIT: gl.constexpr, EXP_POLY: gl.constexpr,
                 SPLIT: gl.constexpr, TREE: gl.constexpr, XT: gl.constexpr, NWG: gl.constexpr):
    """Consumer warpgroup WG: f23's (xt.py, two warpgroups) with XT, else main's."""
    if XT:
        consumer_xt(ptrs, sc, smem, bars, descs, L, BN, D, ROPE, STAGES, WG, EXP_POLY, TREE, STORE_LSE, STORE_QR,
                    SELF_LOGIT)
    else:
        _consumer(ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, WG, STORE_QR, O_TMA,
                  SELF_LOGIT, EXP_POLY, SPLIT, TREE, NWG)


@gluon.jit
def _copy(desc, row, col, bar, buf, ROWS: gl.constexpr, N: gl.constexpr):
    """Rows row .. row + ROWS - 1 of desc (N boxes: TMA's box is a power of two) into buf's first ROWS rows,
    completing on bar."""
    mbarrier.expect(bar, N * desc.block_type.nbytes)
    if N == 1:
        tma.async_copy_global_to_shared(desc, [row, col], bar, _rows(buf, ROWS))
    else:
        for w in gl.static_range(N):
            tma.async_copy_global_to_shared(desc, [row + (ROWS // N) * w, col], bar,
                                            buf.slice((ROWS // N) * w, ROWS // N))


@gluon.jit
def _ring_load(desc_k, desc_v, row_k, row_v, col, e, k_bufs, v_bufs, bars, STAGES: gl.constexpr, ROWS: gl.constexpr,
               N: gl.constexpr):
    """Ring entry e: ROWS rows of desc_k at [row_k, col] (N boxes) once every consumer warpgroup released the K
    buffer's previous entry, and of desc_v at [row_v, col] once they released the V buffer's."""
    k_ready, v_ready, k_empty, v_empty = bars
    s = e % STAGES
    mbarrier.wait(k_empty.index(s), ((e // STAGES) & 1) ^ 1)
    _copy(desc_k, row_k, col, k_ready.index(s), k_bufs.index(s), ROWS, N)
    mbarrier.wait(v_empty.index(s), ((e // STAGES) & 1) ^ 1)
    _copy(desc_v, row_v, col, v_ready.index(s), v_bufs.index(s), ROWS, N)


@gluon.jit
def _loader(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
            ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr,
            O_TMA: gl.constexpr, SELF_LOGIT: gl.constexpr, EXP_POLY: gl.constexpr, SPLIT: gl.constexpr,
            TREE: gl.constexpr, XT: gl.constexpr, NWG: gl.constexpr):
    """The TMA warp, running ahead across the CTA's tiles: per tile q (into the tile's NWG q buffers of 64 rows, once
    the consumers are done with the tile two back; three back with XT, f23), the self block (kt, vt of the tile's
    64 NWG rows) and the chunk-end blocks of K and V, all through the ring but q; with XT the tile's last (masked)
    block first."""
    T, H, NT, n_tiles, _scale2 = sc
    q_bufs, k_bufs, v_bufs = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty = bars
    ring = (k_ready, v_ready, k_empty, v_empty)
    q_desc, kt_desc, vt_desc, ke_desc, ve_desc, Cs, _qr_desc, _o_desc = descs
    QN: gl.constexpr = 3 if XT else 2  # q buffers (tiles)
    BM: gl.constexpr = 64 * NWG
    NS: gl.constexpr = 1 if NWG == 2 else NWG  # boxes of the self entry (kt_desc / vt_desc: 128 or 64 rows)
    G, pid, n_mine = _schedule(NT, n_tiles)
    e = 0
    for j in range(n_mine):
        bh, t0, n_blocks, _n_full = _tile(j, G, pid, NT, T, L, BN, BM)
        row = (bh // H) * T + t0  # q, kt, vt as (B*T, H*D) matrices
        col = (bh % H) * D
        qb = j % QN
        mbarrier.wait(q_empty.index(qb), ((j // QN) & 1) ^ 1)
        mbarrier.expect(q_ready.index(qb), NWG * q_desc.block_type.nbytes)
        for w in gl.static_range(NWG):
            tma.async_copy_global_to_shared(q_desc, [row + 64 * w, col], q_ready.index(qb),
                                            q_bufs.index(NWG * qb + w))
        if SELF_LOGIT:  # the self entry carries vt only: its K buffer's phase completes without bytes
            es = e % STAGES
            mbarrier.wait(k_empty.index(es), ((e // STAGES) & 1) ^ 1)
            mbarrier.arrive(k_ready.index(es), count=1)
            mbarrier.wait(v_empty.index(es), ((e // STAGES) & 1) ^ 1)
            _copy(vt_desc, row, col, v_ready.index(es), v_bufs.index(es), BM, NS)
        else:
            _ring_load(kt_desc, vt_desc, row, row, col, e, k_bufs, v_bufs, ring, STAGES, BM, NS)
        for i in range(n_blocks):
            b = (i + n_blocks - 1) % n_blocks if XT else i
            _ring_load(ke_desc, ve_desc, bh * Cs + b * BN, bh * Cs + b * BN, 0, e + 1 + i, k_bufs, v_bufs, ring,
                       STAGES, BN, 1)
        e += 1 + n_blocks


@gluon.jit
def _ring_barriers(STAGES: gl.constexpr, QN: gl.constexpr, NWG: gl.constexpr):
    """The mbarriers of the K / V ring (ready: the TMA's bytes; empty: the NWG consumer warpgroups' releases) and of
    the QN q buffers, initialised: k_ready, v_ready, k_empty, v_empty, q_ready, q_empty."""
    k_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    k_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    q_ready = gl.allocate_shared_memory(gl.int64, [QN, 1], mbarrier.MBarrierLayout())
    q_empty = gl.allocate_shared_memory(gl.int64, [QN, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(STAGES):
        mbarrier.init(k_ready.index(i), count=1)
        mbarrier.init(v_ready.index(i), count=1)
        mbarrier.init(k_empty.index(i), count=NWG)
        mbarrier.init(v_empty.index(i), count=NWG)
    for i in gl.static_range(QN):
        mbarrier.init(q_ready.index(i), count=1)
        mbarrier.init(q_empty.index(i), count=NWG)
    return k_ready, v_ready, k_empty, v_empty, q_ready, q_empty


@gluon.jit
def fwd_ws_kernel(
    q_desc, kt_desc, vt_desc, ke_desc, ve_desc, COS, SIN, O, LSE, SS, qr_desc, o_desc,
    o_b, o_t, o_h, T, H, Cs, NT, n_tiles, scale2,
    L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr, ROPE: gl.constexpr,
    STORE_LSE: gl.constexpr, STAGES: gl.constexpr, STORE_QR: gl.constexpr, O_TMA: gl.constexpr,
    SELF_LOGIT: gl.constexpr, EXP_POLY: gl.constexpr, SPLIT: gl.constexpr, TREE: gl.constexpr,
    XT: gl.constexpr = False, NWG: gl.constexpr = 2, RB: gl.constexpr = 128,
):
    dtype: gl.constexpr = ke_desc.dtype
    QN: gl.constexpr = 3 if XT else 2  # q buffers: tiles x NWG warpgroups (f23, xt.py: three tiles)
    q_bufs = gl.allocate_shared_memory(dtype, [NWG * QN, 64, D], q_desc.layout)
    # RB rows per entry: BN, or 256 with three warpgroups (the tile's 192 rows of kt / vt; a power of two)
    k_bufs = gl.allocate_shared_memory(dtype, [STAGES, RB, D], ke_desc.layout)
    v_bufs = gl.allocate_shared_memory(dtype, [STAGES, RB, D], ve_desc.layout)
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty = _ring_barriers(STAGES, QN, NWG)
    ptrs = (COS, SIN, O, LSE, SS)
    strides = (o_b, o_t, o_h)
    sc = (T, H, NT, n_tiles, scale2)
    smem = (q_bufs, k_bufs, v_bufs)
    bars = (k_ready, v_ready, k_empty, v_empty, q_ready, q_empty)
    descs = (q_desc, kt_desc, vt_desc, ke_desc, ve_desc, Cs, qr_desc, o_desc)
    # constexprs written out in each tuple (a constexpr inside a tuple variable becomes an int32 tensor)
    if NWG == 3:  # f25: three consumer warpgroups of 64 rows, FA3's at head dim 64
        gl.warp_specialize([
            (_consumer_wg, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 0, STORE_QR,
                            O_TMA, SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
            (_consumer_wg, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 1, STORE_QR,
                            O_TMA, SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
            (_consumer_wg, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 2, STORE_QR,
                            O_TMA, SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
            (_loader, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                       SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
        ], [4, 4, 1], [160, 160, 24])
    else:
        gl.warp_specialize([
            (_consumer_wg, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 0, STORE_QR,
                            O_TMA, SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
            (_consumer_wg, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 1, STORE_QR,
                            O_TMA, SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
            (_loader, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, STORE_QR, O_TMA,
                       SELF_LOGIT, EXP_POLY, SPLIT, TREE, XT, NWG)),
        ], [4, 1], [240, 24])


def cross_tile_applies(T: int, L: int, o_tma: bool) -> bool:
    """Where f23's consumers (xt.py) can run: o stored by TMA, every tile with a key block (a row of the first tile
    past chunk 0: L < min(128, T)), and a tile's last key block its only masked one (L divides 128), which their order
    (that block first, then one loop without a mask) needs. The prefill (with the scan's self logits) and, f26, the
    training forward (lse, RoPE(q) out, the self logit from kt)."""
    return o_tma and L < min(BM, T) and BM % L == 0


def rope_q_buffer(q: torch.Tensor) -> torch.Tensor:
    """An empty (B*H, Tq, D) tensor of q's dtype for launch_forward's qr: Tq = T rounded up to the 128-row tile."""
    B, T, H, D = q.shape
    return torch.empty(B * H, triton.cdiv(T, BM) * BM, D, device=q.device, dtype=q.dtype)


def launch_forward(q, ktr, vt, cos, sin, ke, ve, o, lse, T: int, H: int, L: int, scale2: float, rope: bool,
                   store_lse: bool, bn: int = 128, stages: int = 2, qr: torch.Tensor | None = None,
                   ss: torch.Tensor | None = None, exp_poly: int = 0, split: bool = True,
                   tree: int = 1, cross_tile: bool = False, xt_stages: int = 2, wgs: int = 2) -> None:
    """fwd_ws_kernel over (B, T, H, D) q, ktr, vt, o and chunk ends ke, ve (B, H, Cs, D). q, ktr and vt are read by
    TMA as (B*T, H*D) matrices (a q of another layout is copied into that one first); each (b, h) slab of the chunk
    ends (Cs * D elements) must be contiguous (TMA reads them as one (B*H*Cs, D) matrix). One CTA per
    multiprocessor, persistent over the 128-row tiles. qr (with store_lse): a contiguous (B*H, Tq, D) tensor of q's
    dtype, Tq = T rounded up to 128, that gets RoPE_c(q) (rows past T: the next rows' q_r or zeros), for the
    backward kernel (impls/rat/gluon/backward.py). ss: each row's self logit q_t . kt_t, float32 (B*H, T), from
    scan_kernel's SELF_LOGIT; then ktr is not read. exp_poly: one in exp_poly (2, 4, 8) of the softmax's
    exponentials by polynomial on the FMA pipe (f6, for head dim 64); split: unmasked and masked key blocks in two
    loops (f7); tree: the row maximum (1) and sum (2) in trees (f8); cross_tile: f23's consumers (xt.py) where they
    apply (`cross_tile_applies`), with a ring of xt_stages K / V entries; wgs: consumer warpgroups of 64 rows per
    tile (2; 3 at head dim 64: f25, 192-row tiles, main's consumers only: f23's take precedence where they apply)."""
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    B, _, _, D = q.shape
    Cs = ke.shape[2]
    if not scale2 > 0:
        raise ValueError(f"rat/gluon needs a positive softmax scale (its exponent folds the scale into one FFMA), "
                         f"got {scale2 / LOG2E:g}")
    if exp_poly not in (0, 2, 4, 8) or tree not in (0, 1, 2):
        raise ValueError(f"rat/gluon: the softmax's exponential share must be 0, 2, 4 or 8 and its trees 0, 1 or 2 "
                         f"(a 128-column key block split by register), got exp_poly={exp_poly}, tree={tree}")
    if wgs not in (2, 3) or (wgs == 3 and D != 64):
        raise ValueError(f"rat/gluon: the forward has 2 consumer warpgroups, or 3 at head dim 64 (their registers), "
                         f"got {wgs} at head dim {D}")
    if bn != BM:
        raise ValueError(f"rat/gluon: the key block must be {BM} rows (the ring also carries each tile's own "
                         f"{BM} rows of kt and vt), got fwd_bn={bn}")
    if ke.stride() != (H * Cs * D, Cs * D, D, 1) or ve.stride() != ke.stride():
        raise ValueError("rat/gluon: the chunk ends (decode cache) must be contiguous (B, H, C, D) tensors")
    dense = (T * H * D, H * D, D, 1)
    if q.stride() != dense:
        q = q.contiguous()
    if ktr.stride() != dense or vt.stride() != dense:
        raise ValueError("rat/gluon: kt and vt must be contiguous (B, T, H, D) tensors (the scan writes them so)")
    gdt = {torch.bfloat16: gl.bfloat16, torch.float16: gl.float16}[q.dtype]
    lay = gl.NVMMASharedLayout.get_default_for([bn, D], gdt)
    lay_q = gl.NVMMASharedLayout.get_default_for([64, D], gdt)
    ends = [TensorDescriptor(x, [B * H * Cs, D], [D, 1], [bn, D], lay) for x in (ke, ve)]
    q_desc = TensorDescriptor(q, [B * T, H * D], [H * D, 1], [64, D], lay_q)
    NTq = triton.cdiv(T, BM)  # the RoPE(q) output's rows are T rounded up to 128 whatever the tile
    store_qr = store_lse and qr is not None
    if store_qr and (qr.shape != (B * H, NTq * BM, D) or not qr.is_contiguous() or qr.dtype != q.dtype):
        raise ValueError(f"rat/gluon: the RoPE(q) output must be a contiguous ({B * H}, {NTq * BM}, {D}) {q.dtype} "
                         f"tensor, got {tuple(qr.shape)} {qr.dtype}")
    qr_desc = TensorDescriptor(qr, [B * H * NTq * BM, D], [D, 1], [64, D], lay_q) if store_qr else q_desc
    self_logit = ss is not None
    o_ok = o.stride() == dense and o.dtype == q.dtype
    xt = cross_tile and cross_tile_applies(T, L, T % BM == 0 and o_ok)
    nwg = 2 if xt else wgs
    tile = 64 * nwg
    NT = triton.cdiv(T, tile)
    if store_qr and NT * tile < NTq * BM:  # rows of Tq past the last tile: finite for the backward (rows past T)
        qr[:, NT * tile:].zero_()
    box = bn if nwg == 2 else 64  # the self entry's TMA box (a power of two): one of 128 rows, or three of 64
    rows = [TensorDescriptor(x, [B * T, H * D], [H * D, 1], [box, D], lay if nwg == 2 else lay_q) for x in (ktr, vt)]
    # o by TMA from the tile's q buffer where no 64-row box crosses into the next sequence's rows; else plain stores
    o_tma = T % (tile if nwg == 2 else 64) == 0 and o_ok  # f25: the boxes past T are not stored
    o_desc = TensorDescriptor(o, [B * T, H * D], [H * D, 1], [64, D], lay_q) if o_tma else q_desc
    if self_logit and (ss.shape != (B * H, T) or ss.dtype != torch.float32 or not ss.is_contiguous()):
        raise ValueError(f"rat/gluon: the self logits must be a contiguous float32 ({B * H}, {T}) tensor, got "
                         f"{tuple(ss.shape)} {ss.dtype}")
    n_tiles = NT * B * H
    if xt and (6 * 64 + 2 * xt_stages * bn) * D * q.element_size() > XT_SMEM:
        raise ValueError(f"rat/gluon: f23's {xt_stages} K / V ring entries do not fit in shared memory beside its three "
                         f"q buffers at head dim {D} (fwd_xt_stages)")
    stages = xt_stages if xt else stages
    n_sm = sm_count(q.device) or 132  # an H200's count off the GPU (the static gate compiles with meta tensors)
    fwd_ws_kernel[(min(n_tiles, n_sm),)](
        q_desc, rows[0], rows[1], ends[0], ends[1], cos, sin, o, lse, ss if self_logit else lse, qr_desc, o_desc,
        o.stride(0), o.stride(1), o.stride(2), T, H, Cs, NT, n_tiles, scale2,
        L=L, BN=bn, D=D, ROPE=rope, STORE_LSE=store_lse, STAGES=stages, STORE_QR=store_qr, O_TMA=o_tma,
        SELF_LOGIT=self_logit, EXP_POLY=exp_poly, SPLIT=split, TREE=tree, XT=xt, NWG=nwg, RB=bn if nwg == 2 else 256,
        num_warps=4, maxnreg=168 if nwg == 2 else WG3_MAXNREG,
    )

