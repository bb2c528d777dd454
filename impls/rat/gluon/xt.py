"""f23 (candidate, RATTritonConfig.fwd_cross_tile): fwd_ws_kernel's prefill consumers with the tile boundary overlapped.

In main's consumer (forward._consumer) a warpgroup ends each tile with its last key block's P V, waits for it, runs the
epilogue (o = acc / l into the tile's q buffer, a TMA store), then the next tile's prologue (RoPE of q in shared memory)
and only then issues the next tile's first S: the tensor cores have nothing of this warpgroup's for the whole
epilogue and prologue, and both warpgroups reach that point together (they share the ring's entries). Here the last
P V of tile j - 1 is carried into tile j's iteration and issued first, so it runs under tile j's RoPE of q; tile j's
first S is issued next, and tile j - 1's epilogue runs under it. Nothing is in flight across the loop's back edge (the
carried P, acc, m, l are registers). Tile 0 issues a P V of zeros against its own self entry's V (which it waits for
anyway) and skips the epilogue of a tile before it. The q buffers are three (a tile's buffer is handed back one tile
later than in main's consumer, after the next tile's epilogue has stored o from it), 229,736 bytes of shared memory at
head dim 128 (of 232,448).

Taken only in the prefill (the scan's self logits: the prologue reads no kt), with o stored by TMA (T a multiple of
128) and where every tile has a key block (launch_forward checks). Prediction and measurement: impls/rat/gluon/NOTES.md
("Twenty-seventh session")."""
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

from ratbench.impls.rat.gluon.forward import _block, _epilogue_tma, _row_layout, _schedule, _tables, _tile
from ratbench.impls.rat.gluon.softmax import online_softmax

QB = gl.constexpr(3)  # q buffers (tiles) of the cross-tile consumer


@gluon.jit
def _rope_q(tables, q_w, q_bar, q_phase, D: gl.constexpr, ROPE: gl.constexpr):
    """q (TMA-loaded into q_w) becomes q_r = RoPE_c(q) in place (16-bit), as forward._prologue."""
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


@gluon.jit
def consumer_xt(ptrs, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
                ROPE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr, EXP_POLY: gl.constexpr,
                TREE: gl.constexpr, CARRY: gl.constexpr, AHEAD: gl.constexpr):
    """One consumer warpgroup of the prefill (rows 64 WG .. + 63 of each of the CTA's tiles), the tile boundary
    overlapped (module docstring). Ring entries per tile: the self entry (vt), then the key blocks in f24's order (the
    last, masked one first: forward._loader with MF). CARRY: the last P V carried into the next tile (f23); without
    it (f23b) only the epilogue is: the P V ends its tile as in main, so its V buffer is not held into the next one.
    AHEAD: RoPE's tables a tile ahead (forward._consumer's f11 rule), else at the tile's start."""
    T, H, NT, n_tiles, scale2 = sc
    q_bufs, k_bufs, v_bufs = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, q_empty = bars
    ring = (k_ready, v_ready, k_empty, v_empty)
    dtype: gl.constexpr = k_bufs.dtype
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, D, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    G, pid, n_mine = _schedule(NT, n_tiles)
    cols = gl.arange(0, BN, layout=gl.SliceLayout(0, s_layout))
    tables = _tables(ptrs, 0, G, pid, NT, T, WG * 64, n_mine > 0, L, BN, D, ROPE, True, s_layout)
    # the previous tile: its accumulator, softmax state, last block's P and ring entry, rows (tile 0: P = 0 against
    # its own self entry)
    acc_c = gl.zeros([64, D], gl.float32, o_layout)
    p_c = gl.zeros([64, BN], dtype, p_layout)
    m_c = gl.zeros([64], gl.float32, row_s)
    l_c = gl.full([64], 1.0, gl.float32, row_s)
    pe = 0
    bh_c = 0
    t0_c = 0
    e = 0
    for j in range(n_mine):
        bh, t0, n_blocks, n_full = _tile(j, G, pid, NT, T, L, BN)
        if not AHEAD:
            tables = _tables(ptrs, j, G, pid, NT, T, WG * 64, j < n_mine, L, BN, D, ROPE, True, s_layout)
        q_w = q_bufs.index((j % QB) * 2 + WG)
        es = e % STAGES
        pst = pe % STAGES
        mbarrier.wait(k_ready.index(es), (e // STAGES) & 1)  # the self entry's K buffer holds nothing in the prefill:
        mbarrier.arrive(k_empty.index(es), count=1)  # hand it back at once (the next block's K goes there)
        if CARRY:
            mbarrier.wait(v_ready.index(pst), (pe // STAGES) & 1)
            acc_c = warpgroup_mma(p_c, v_bufs.index(pst), acc_c, is_async=True)
        _rope_q(tables, q_w, q_ready.index(j % QB), (j // QB) & 1, D, ROPE)
        m_i = tables[2] * scale2
        l_i = gl.full([64], 1.0, gl.float32, row_s)
        crow = (t0 + WG * 64 + gl.arange(0, 64, layout=row_s)) // L
        s0 = (e + 1) % STAGES
        mbarrier.wait(k_ready.index(s0), ((e + 1) // STAGES) & 1)
        s = warpgroup_mma(q_w, k_bufs.index(s0).permute((1, 0)), gl.zeros([64, BN], gl.float32, s_layout),
                          use_acc=False, is_async=True)
        if CARRY:
            acc_c, p_c = warpgroup_mma_wait(num_outstanding=1, deps=(acc_c, p_c))
            mbarrier.arrive(v_empty.index(pst), count=1, pred=j > 0)
        if j > 0:  # tile j - 1's epilogue under this tile's first S
            _epilogue_tma(descs[7], ptrs[3], T, H, bh_c, t0_c + WG * 64, q_bufs.index(((j + QB - 1) % QB) * 2 + WG),
                          acc_c, m_c, l_c, D, False, s_layout, o_layout)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        mbarrier.arrive(k_empty.index(s0), count=1)
        p32, m_i, l_i, alpha = online_softmax(s, m_i, l_i, n_blocks - 1, n_full, crow, cols, scale2, BN, 1, EXP_POLY,
                                              TREE, s_layout)
        mbarrier.wait(v_ready.index(es), (e // STAGES) & 1)  # the self entry: acc = vt, rescaled
        acc = v_bufs.index(es).slice(WG * 64, 64).load(o_layout).to(gl.float32) * gl.convert_layout(alpha, row_o)[:, None]
        mbarrier.arrive(v_empty.index(es), count=1)
        p = gl.convert_layout(p32.to(dtype), p_layout)
        for i in range(1, n_blocks):  # the unmasked blocks (f24's order: the masked one came first)
            acc, p, m_i, l_i = _block(q_w, k_bufs, v_bufs, ring, e + 1, i, n_full, acc, p, m_i, l_i, crow, cols,
                                      scale2, BN, STAGES, s_layout, o_layout, 0, EXP_POLY, TREE)
        tma.store_wait(0)  # tile j - 1's o has left its q buffer: the loader may refill it
        mbarrier.arrive(q_empty.index((j + QB - 1) % QB), count=1, pred=j > 0)
        if AHEAD:
            tables = _tables(ptrs, j + 1, G, pid, NT, T, WG * 64, j + 1 < n_mine, L, BN, D, ROPE, True, s_layout)
        if CARRY:
            acc_c = acc
            p_c = p
        else:  # the last P V here, as in main
            pl = (e + n_blocks) % STAGES
            mbarrier.wait(v_ready.index(pl), ((e + n_blocks) // STAGES) & 1)
            acc_c = warpgroup_mma(p, v_bufs.index(pl), acc, is_async=True)
            acc_c, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc_c, p))
            mbarrier.arrive(v_empty.index(pl), count=1)
        m_c = m_i
        l_c = l_i
        pe = e + n_blocks
        bh_c = bh
        t0_c = t0
        e += 1 + n_blocks
    # the last tile's last P V and epilogue (every CTA has a tile: the grid is at most the tile count)
    if CARRY:
        pst = pe % STAGES
        mbarrier.wait(v_ready.index(pst), (pe // STAGES) & 1)
        acc_c = warpgroup_mma(p_c, v_bufs.index(pst), acc_c, is_async=True)
        acc_c, p_c = warpgroup_mma_wait(num_outstanding=0, deps=(acc_c, p_c))
        mbarrier.arrive(v_empty.index(pst), count=1)
    _epilogue_tma(descs[7], ptrs[3], T, H, bh_c, t0_c + WG * 64, q_bufs.index(((n_mine + QB - 1) % QB) * 2 + WG),
                  acc_c, m_c, l_c, D, False, s_layout, o_layout)
    tma.store_wait(0)
