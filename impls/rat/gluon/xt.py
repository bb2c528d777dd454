"""f23: fwd_ws_kernel's consumers with the tile boundary overlapped (rat/gluon's where few key blocks per tile make the
boundary count: rat.gluon.cross_tile_used in the prefill, train_cross_tile_used in training (f26);
forward.launch_forward's `cross_tile`).

In main's consumer (forward._consumer) a warpgroup ends each tile with its last key block's P V, waits for it, runs the
epilogue (o = acc / l into the tile's q buffer, a TMA store), then the next tile's prologue (RoPE of q in shared memory)
and only then issues the next tile's first S: the tensor cores have nothing of this warpgroup's for the whole epilogue
and prologue, and both warpgroups reach that point together (they share the ring's entries). Here the last P V of tile
j - 1 is carried into tile j's iteration and issued first, so it runs under tile j's RoPE of q; tile j's first S is
issued next, and tile j - 1's epilogue runs under it (the sm_90 SASS has no wait between either pair). Nothing is in
flight across the loop's back edge (the carried P, acc, m, l are registers). Tile 0 issues a P V of zeros against its
own self entry's V, which it waits for anyway, and has no epilogue before it.

What that needs: three q buffers (a tile's buffer holds its o until the next tile's epilogue has stored it: 229,768
bytes of shared memory at head dim 128, of 232,448), and the key blocks in one loop without a mask: the loader brings a
tile's last block, its only masked one, first (forward._loader with XT; a second, masked loop after the first made
ptxas serialize every wgmma of the kernel, C7514). RoPE's tables are loaded at each tile's start, under the carried
P V. The prefill takes the scan's self logits (no kt in the ring's self entry); the training forward (f26) forms the
self logit from the self entry's kt under the carried P V, sends RoPE(q) out by TMA from the q buffer and stores lse
in the carried epilogue. o is stored by TMA (forward.cross_tile_applies). Versions and measurements:
impls/rat/gluon/NOTES.md ("Twenty-seventh session", f26 in "Thirty-second session")."""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import (
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from ratbench.impls.rat.gluon.softmax import online_softmax
from ratbench.impls.rat.gluon.tile import _block, _epilogue_tma, _rope_q, _row_layout, _schedule, _tables, _tile

QB = gl.constexpr(3)  # q buffers (tiles) of the cross-tile consumer


@gluon.jit
def _carried_pv(p_c, acc_c, v_bufs, v_ready, pe, STAGES: gl.constexpr):
    """Issue the previous tile's last P V (ring entry pe), not waited for."""
    mbarrier.wait(v_ready.index(pe % STAGES), (pe // STAGES) & 1)
    return warpgroup_mma(p_c, v_bufs.index(pe % STAGES), acc_c, is_async=True)


@gluon.jit
def _kt_logit(q1, q2, k_self, scale2, D: gl.constexpr, s_layout: gl.constexpr):
    """f26 (training): the rows' self logits q_r . kt_t times scale2 from the self entry's kt (k_self, its K buffer's
    rows of this warpgroup), as forward._prologue."""
    HALF: gl.constexpr = D // 2
    blk: gl.constexpr = _row_layout(HALF, 4)
    k1 = k_self.slice(0, HALF, dim=1).load(blk).to(gl.float32)
    k2 = k_self.slice(HALF, HALF, dim=1).load(blk).to(gl.float32)
    return gl.convert_layout(gl.sum(q1 * k1 + q2 * k2, 1) * scale2, gl.SliceLayout(1, s_layout))


@gluon.jit
def _boundary(j, e, pe, carried, tables, q_w, prev, ptrs, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr,
              D: gl.constexpr, ROPE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr, EXP_POLY: gl.constexpr,
              TREE: gl.constexpr, STORE_LSE: gl.constexpr, STORE_QR: gl.constexpr, SELF_LOGIT: gl.constexpr,
              s_layout: gl.constexpr, o_layout: gl.constexpr):
    """Tile j's start (ring entries: e its self entry, e + 1 its first block, the masked one) overlapped with tile j - 1's
    end (its last P V at entry pe, carried = (P, acc, m, l), and its epilogue into its q buffer prev = (rows, buffer)):
    returns tile j's acc (vt, rescaled), P of its first block and m, l. In training (f26) the self logit comes from the
    self entry's kt, q_r goes out by TMA (STORE_QR) and the epilogue stores lse (STORE_LSE)."""
    T, H, NT, _n_tiles, scale2 = sc
    q_bufs, k_bufs, v_bufs = smem
    k_ready, v_ready, k_empty, v_empty, q_ready, _q_empty = bars
    p_c, acc_c, m_c, l_c = carried
    bh_c, tw_c, q_prev = prev
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    es = e % STAGES
    mbarrier.wait(k_ready.index(es), (e // STAGES) & 1)
    if SELF_LOGIT:  # the self entry's K buffer holds nothing in the prefill: handed back at once, so the next
        mbarrier.arrive(k_empty.index(es), count=1)  # block's K can go there
    acc_c = _carried_pv(p_c, acc_c, v_bufs, v_ready, pe, STAGES)
    q1, q2 = _rope_q(tables, q_w, q_ready.index(j % QB), (j // QB) & 1, D, ROPE)
    if not SELF_LOGIT:  # f26: the self logit from kt, then the self entry's K buffer handed back
        m0 = _kt_logit(q1, q2, k_bufs.index(es).slice(WG * 64, 64), scale2, D, s_layout)
        mbarrier.arrive(k_empty.index(es), count=1)
    if STORE_QR:  # RoPE(q) for the backward (forward._consumer's b5 store; waited for before o goes into q_w)
        bh, t0, _nb, _nf = _tile(j, gl.num_programs(0), gl.program_id(0), NT, T, L, BN)
        tma.async_copy_shared_to_global(descs[6], [bh * (NT * 128) + t0 + WG * 64, 0], q_w)
    s0 = (e + 1) % STAGES
    mbarrier.wait(k_ready.index(s0), ((e + 1) // STAGES) & 1)
    s = warpgroup_mma(q_w, k_bufs.index(s0).permute((1, 0)), gl.zeros([64, BN], gl.float32, s_layout),
                      use_acc=False, is_async=True)
    acc_c, p_c = warpgroup_mma_wait(num_outstanding=1, deps=(acc_c, p_c))
    mbarrier.arrive(v_empty.index(pe % STAGES), count=1, pred=j > 0)
    if j > 0:  # tile j - 1's epilogue under this tile's first S
        _epilogue_tma(descs[7], ptrs[3], T, H, bh_c, tw_c, q_bufs.index(q_prev), acc_c, m_c, l_c, D, STORE_LSE,
                      s_layout, o_layout)
    s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
    mbarrier.arrive(k_empty.index(s0), count=1)
    _bh, t0, n_blocks, n_full = _tile(j, gl.num_programs(0), gl.program_id(0), NT, T, L, BN)
    crow = (t0 + WG * 64 + gl.arange(0, 64, layout=row_s)) // L
    cols = gl.arange(0, BN, layout=gl.SliceLayout(0, s_layout))
    if SELF_LOGIT:  # the scan's (here, where f23's prefill had it: its SASS as before)
        m0 = tables[2] * scale2
    p32, m_i, l_i, alpha = online_softmax(s, m0, gl.full([64], 1.0, gl.float32, row_s), n_blocks - 1,
                                          n_full, crow, cols, scale2, BN, 1, EXP_POLY, TREE, s_layout)
    mbarrier.wait(v_ready.index(es), (e // STAGES) & 1)  # the self term: acc = vt, rescaled
    acc = v_bufs.index(es).slice(WG * 64, 64).load(o_layout).to(gl.float32)
    acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
    mbarrier.arrive(v_empty.index(es), count=1)
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    return acc, gl.convert_layout(p32.to(k_bufs.dtype), p_layout), m_i, l_i


@gluon.jit
def consumer_xt(ptrs, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
                ROPE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr, EXP_POLY: gl.constexpr,
                TREE: gl.constexpr, STORE_LSE: gl.constexpr, STORE_QR: gl.constexpr, SELF_LOGIT: gl.constexpr):
    """One consumer warpgroup: rows 64 WG .. + 63 of each of the CTA's tiles, the tile boundary overlapped (module
    docstring). Ring entries per tile: the self entry (vt; kt too without SELF_LOGIT), then the key blocks, the last
    (masked) one first."""
    T, H, NT, n_tiles, scale2 = sc
    q_bufs, k_bufs, v_bufs = smem
    k_ready, v_ready, k_empty, v_empty, _q_ready, q_empty = bars
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, D, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    G, pid, n_mine = _schedule(NT, n_tiles)
    cols = gl.arange(0, BN, layout=gl.SliceLayout(0, s_layout))
    # the previous tile: P of its last block, its accumulator, m, l, ring entry, rows and q buffer (before tile 0:
    # P = 0 against tile 0's own self entry)
    carried = (gl.zeros([64, BN], k_bufs.dtype, p_layout), gl.zeros([64, D], gl.float32, o_layout),
               gl.zeros([64], gl.float32, row_s), gl.full([64], 1.0, gl.float32, row_s))
    pe = 0
    prev = (0, 0, 0)
    e = 0
    for j in range(n_mine):
        bh, t0, n_blocks, n_full = _tile(j, G, pid, NT, T, L, BN)
        tables = _tables(ptrs, j, G, pid, NT, T, WG * 64, j < n_mine, L, BN, D, ROPE, True, s_layout)
        q_w = q_bufs.index((j % QB) * 2 + WG)
        acc, p, m_i, l_i = _boundary(j, e, pe, carried, tables, q_w, prev, ptrs, sc, smem, bars, descs, L, BN, D,
                                     ROPE, STAGES, WG, EXP_POLY, TREE, STORE_LSE, STORE_QR, SELF_LOGIT, s_layout,
                                     o_layout)
        crow = (t0 + WG * 64 + gl.arange(0, 64, layout=row_s)) // L
        for i in range(1, n_blocks):  # the unmasked blocks
            acc, p, m_i, l_i = _block(q_w, k_bufs, v_bufs, (k_ready, v_ready, k_empty, v_empty), e + 1, i, n_full, acc,
                                      p, m_i, l_i, crow, cols, scale2, BN, STAGES, s_layout, o_layout, 0, EXP_POLY,
                                      TREE)
        tma.store_wait(0)  # tile j - 1's o has left its q buffer (the loader may refill it); tile j's q_r too
        mbarrier.arrive(q_empty.index((j + QB - 1) % QB), count=1, pred=j > 0)
        carried = (p, acc, m_i, l_i)
        pe = e + n_blocks
        prev = (bh, t0 + WG * 64, (j % QB) * 2 + WG)
        e += 1 + n_blocks
    # the last tile's last P V and epilogue (every CTA has a tile: the grid is at most the tile count)
    p_c, acc_c, m_c, l_c = carried
    acc_c = _carried_pv(p_c, acc_c, v_bufs, v_ready, pe, STAGES)
    acc_c, p_c = warpgroup_mma_wait(num_outstanding=0, deps=(acc_c, p_c))
    mbarrier.arrive(v_empty.index(pe % STAGES), count=1)
    _epilogue_tma(descs[7], ptrs[3], T, H, prev[0], prev[1], q_bufs.index(prev[2]), acc_c, m_c, l_c, D, STORE_LSE,
                  s_layout, o_layout)
    tma.store_wait(0)
