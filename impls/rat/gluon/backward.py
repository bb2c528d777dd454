"""The RAT backward attention (docs/rat-spec.md, op step 3) with five products per tile pair: a warp-specialized
Gluon kernel for sm_90 that forms dK and dV of the chunk ends and adds each pair's share of dq by TMA reductions.

bwd_ws_kernel  one CTA per work item (work_items, items.py): a block of BN = 128 chunk ends of one (b, h) and the
               64-row query tiles of one segment of seg tiles that see a key of the block (c(t) > j); per head the
               items go segment by segment from the last, the key blocks of a segment side by side, so that the
               CTAs running at one time read the same q / dO tiles and add to the same dq rows in L2 (b4; one CTA
               per key block over all its tiles drew about the full HBM rate: NOTES.md). Three partitions (b7c: a
               dq writer too):
                 _bwd_loader (one warp, TMA): K and V of the block once, then per query tile (last to first) RoPE'd
                   q, dO and the tile's lse and Delta rows (one [2, 64] float32 box) into a ring of STAGES;
                 two MMA warpgroups (_bwd_consumer), warpgroup w owning the block's keys 64 w .. 64 w + 63, per
                   tile: S^T = K_w Q^T and dP^T = V_w dO^T (wgmma, both in flight), P^T = exp2(S^T scale2 - lse)
                   (the j < c(t) mask on the tiles whose rows do not all see the block), dV_w += P^T dO (P^T from
                   registers), dS^T = P^T (dP^T - Delta), dK_w += dS^T Q; dS^T also goes to shared memory and,
                   once both warpgroups wrote theirs (an mbarrier), warpgroup w forms columns 64 w .. of the
                   tile's dq share dS K (A = dS from shared memory, transposed) and adds it to the dq accumulator
                   (float32; 16-bit with b17's acc16) by a TMA reduction (cp.reduce.async.bulk.tensor .add), which
                   runs on while the warpgroup goes on; it waits for the reduction's read of the staging buffer
                   only before the next tile's share overwrites it. At head dim 64, where rat/gluon takes them
                   (gluon/__init__.py bwd_kv_owner_used), b21 holds K_w and V_w in registers (S^T's and dP^T's A
                   operands) and b22 has the warpgroups take turns: tile i's whole share is formed by warpgroup
                   i % 2 alone, the only one that waits for the other's dS^T.
               dK (times the softmax scale) and dV of the item added to float32 (B*H, C, D) accumulators (atomic
               adds; zero on entry), which rat/triton's dK/dV kernel writes in the same form.
Around it (impls/rat/gluon/passes.py): bwd_ws_pre_kernel (Delta, lse and Delta per 64-row tile with lse +inf past
T, RoPE(q), the accumulator's start: 0, or nothing where key block 0's items store their share first: b7b,
with the dq writer b7c, where impls/rat/gluon/__init__.py's dq_writer_used) before; after it the backward scan
(impls/rat/kernels/scan.py, DQ_OUT) forms the self term's gradients of kt and vt, as in rat/triton, and finishes
dq = RoPE^T(scale acc + dS_self kt) from the accumulator (b5), which with the writer up to two key blocks is in the
inputs' 16-bit dtype (b17, dq_acc16_used: a tile gets one stored share and at most one added). With the two-level
scans the pre pass starts the accumulator with dq's self term and bwd_dq_post_kernel finishes dq (dq = RoPE^T(scale
acc)). Versions b0-b5 and what was measured: impls/rat/gluon/NOTES.md, "The backward in Gluon" (b7b, b7c: "Tenth
session"; seg 32 and b17: "Seventeenth session").
Two things this module takes from Gluon's internals, as its public API has neither (triton 3.6.0 and 3.7.1, checked
on both): the TMA reduction (hopper.tma has copies only; the op they lower to, ttng.async_tma_reduce, is in Gluon's
builder, create_async_tma_reduce, which _tma_reduce_add calls) and a shared buffer's reinterpretation
(shared_memory_descriptor._reinterpret in _ld_row).
Math: FlashAttention-2's backward (Dao 2023) with dS = P (dP - Delta); the split into a producer warp and MMA
warpgroups, keys in rows (S^T) so that P^T and dS^T feed dV and dK from registers, and dq by TMA reductions as in
FlashAttention-3's backward (Shah et al. 2024); key j is visible to row t iff j < t // L.
"""
from __future__ import annotations

import torch
import triton
from triton._C.libtriton import ir as _ir
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language import _core as _gl_core
from triton.experimental.gluon.language.nvidia.hopper import (
    fence_async_shared,
    mbarrier,
    tma,
    warpgroup_mma,
    warpgroup_mma_wait,
)

from ratbench.impls.rat.gluon.items import KEY_BLOCK, QUERY_TILE, work_items

#: a barrier of the warps of one partition (triton 3.6 names it thread_barrier, 3.7 barrier)
_partition_barrier = getattr(gl, "thread_barrier", None) or gl.barrier
BN = gl.constexpr(KEY_BLOCK)  # chunk ends per CTA: two warpgroups of 64
BMQ = gl.constexpr(QUERY_TILE)  # query rows per tile
PRE_BM, PRE_WARPS = 32, 4  # bwd_ws_pre_kernel's rows and warps per program (NOTES.md b4: 7% faster than 64 rows)
#: Gluon's element types of the tensors launch_backward takes (the dq accumulator: float32 or 16-bit)
_GL_DTYPES = {torch.float32: gl.float32, torch.bfloat16: gl.bfloat16, torch.float16: gl.float16}


@_gl_core.builtin
def _tma_reduce_add(tensor_desc, coord, src, _semantic=None):
    """desc[coord] += src (a shared-memory tile) by TMA (cp.reduce.async.bulk.tensor ... .add), issued once per
    partition like tma.async_copy_shared_to_global, completed by tma.store_wait."""
    coord = _semantic._convert_to_ir_values(coord, require_i64=False)
    _semantic.builder.create_async_tma_reduce(_ir.DESCRIPTOR_REDUCE_KIND.ADD, tensor_desc.handle, coord, src.handle)


@gluon.jit
def _writes_done(x):
    """Waits until this thread's bulk (TMA) stores have been written to global memory, not only read from shared
    memory as tma.store_wait waits (cp.async.bulk.wait_group 0); x (a scalar) is passed through."""
    return gl.inline_asm_elementwise("cp.async.bulk.wait_group 0;\n mov.b32 $0, $1;", "=r,r", [x], gl.int32,
                                     is_pure=False, pack=1)


@gluon.jit
def _flag_set(ptr):
    """*ptr = 1 with release semantics at GPU scope, after a proxy fence: what this CTA's TMA stores wrote before
    is visible to a CTA that sees the flag (_flag_wait)."""
    return gl.inline_asm_elementwise("fence.proxy.async.global;\n st.release.gpu.global.b32 [$1], 1;\n "
                                     "mov.b32 $0, 0;", "=r,l", [ptr], gl.int32, is_pure=False, pack=1)


@gluon.jit
def _flag_wait(ptr):
    """Spins until *ptr != 0 (acquire, GPU scope), then fences the async proxy so that a TMA operation issued after
    it is ordered after what the flag's setter wrote. Returns the flag."""
    return gl.inline_asm_elementwise(
        "{\n .reg .pred p;\n WAIT:\n ld.acquire.gpu.global.b32 $0, [$1];\n setp.eq.b32 p, $0, 0;\n @p bra WAIT;\n"
        " fence.proxy.async.global;\n}", "=r,l", [ptr], gl.int32, is_pure=False, pack=1)


@gluon.constexpr_function
def _acc_layout(N):
    """A warpgroup's wgmma accumulator layout for N columns (4 warps, instruction m64nNk16)."""
    return gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, getattr(N, "value", N), 16])


@gluon.jit
def _ld_row(ld_s, r: gl.constexpr):
    """Row r (0: lse, 1: Delta) of a ring entry [2, BMQ] that TMA wrote without swizzle (plain row-major), as a 1-D
    shared buffer that loads straight into a slice of the accumulator's layout."""
    flat = ld_s._reinterpret(gl.float32, [2 * BMQ], gl.SwizzledSharedLayout(1, 1, 1, [0]))
    return flat.slice(r * BMQ, BMQ)


@gluon.jit
def _item(ITEMS, n_items, L: gl.constexpr):
    """This CTA's work item: (b*H + h) and, from the per-head item table ITEMS (n_items rows of key block, first
    row, tile count), the block's chunk ends j0 .. j0 + BN - 1, its query tiles lo .. lo + 64 n - 1 and mid: tiles
    from row mid on see every key of the block."""
    pid = gl.program_id(0)
    it = pid % n_items
    j0 = gl.load(ITEMS + 3 * it) * BN
    return pid // n_items, j0, gl.load(ITEMS + 3 * it + 1), gl.load(ITEMS + 3 * it + 2), (j0 + BN) * L


@gluon.jit
def _bwd_tile_ds(k_w, v_w, q_s, do_s, ld_s, ds_buf, ds_bar, dk, dv, keys, qcols, t0, mid, scale2,
                 L: gl.constexpr, D: gl.constexpr, WG: gl.constexpr):
    """One query tile of warpgroup WG up to its dS^T: S^T, dP^T, P^T, dV += P^T dO, dS^T (to ds_buf, [BN, BMQ], then an
    arrival on ds_bar), dK += dS^T Q. lse and Delta come from the ring entry ld_s. Returns dk, dv, P^T, dS^T (the two
    products still in flight)."""
    dtype: gl.constexpr = q_s.dtype
    st_layout: gl.constexpr = _acc_layout(BMQ)
    kv_layout: gl.constexpr = _acc_layout(D)
    op_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=kv_layout, k_width=2)
    col: gl.constexpr = gl.SliceLayout(0, st_layout)
    zero_s = gl.zeros([64, BMQ], gl.float32, st_layout)
    st = warpgroup_mma(k_w, q_s.permute((1, 0)), zero_s, use_acc=False, is_async=True)
    dpt = warpgroup_mma(v_w, do_s.permute((1, 0)), zero_s, use_acc=False, is_async=True)
    lse = _ld_row(ld_s, 0).load(col)
    st = warpgroup_mma_wait(num_outstanding=1, deps=(st,))
    pt = gl.exp2(st * scale2 - lse[None, :])
    if t0 < mid:
        pt = gl.where(keys[:, None] < ((t0 + qcols) // L)[None, :], pt, 0.0)
    ptb = gl.convert_layout(pt.to(dtype), op_layout)
    dv = warpgroup_mma(ptb, do_s, dv, is_async=True)
    delta = _ld_row(ld_s, 1).load(col)
    dpt = warpgroup_mma_wait(num_outstanding=1, deps=(dpt,))
    ds = (pt * (dpt - delta[None, :])).to(dtype)
    ds_buf.slice(WG * 64, 64).store(ds)
    dsb = gl.convert_layout(ds, op_layout)
    dk = warpgroup_mma(dsb, q_s, dk, is_async=True)
    fence_async_shared()
    mbarrier.arrive(ds_bar, count=1)
    return dk, dv, ptb, dsb


@gluon.jit
def _bwd_tile(i, k_w, v_w, k_cols, q_s, do_s, ld_s, ds_buf, ds_bar, dk, dv, keys, qcols, t0, mid, scale2,
              L: gl.constexpr, D: gl.constexpr, WG: gl.constexpr):
    """One query tile of warpgroup WG: _bwd_tile_ds, then, once both warpgroups wrote their dS^T to ds_buf, columns D/2
    WG .. of the tile's dq share dS K. Returns dk, dv, dq (all retired)."""
    dk, dv, ptb, dsb = _bwd_tile_ds(k_w, v_w, q_s, do_s, ld_s, ds_buf, ds_bar, dk, dv, keys, qcols, t0, mid, scale2,
                                    L, D, WG)
    mbarrier.wait(ds_bar, (i // 2) & 1)
    zero_q = gl.zeros([BMQ, D // 2], gl.float32, _acc_layout(D // 2))
    dq = warpgroup_mma(ds_buf.permute((1, 0)), k_cols, zero_q, use_acc=False, is_async=True)
    dq, dv, dk, ptb, dsb = warpgroup_mma_wait(num_outstanding=0, deps=(dq, dv, dk, ptb, dsb))
    return dk, dv, dq


@gluon.jit
def _dq_out(dq, dq_w, dq_desc, bars, row, col, phase, WRITER: gl.constexpr, WG: gl.constexpr):
    """A dq share from registers: staged in dq_w for the writer warp (_bwd_dq_writer; phase: of this warpgroup's
    staging, dq_empty waited at phase ^ 1), or added to the accumulator's [row, col] box by a TMA reduction."""
    if WRITER:
        mbarrier.wait(bars[5].index(WG), phase ^ 1)
        dq_w.store(dq.to(dq_w.dtype))
        fence_async_shared()
        mbarrier.arrive(bars[4].index(WG), count=1)
    else:
        tma.store_wait(0)  # the previous tile's reduction has read dq_w
        dq_w.store(dq.to(dq_w.dtype))
        fence_async_shared()
        _tma_reduce_add(dq_desc, [row, col], dq_w)


@gluon.jit
def _bwd_tile_owned(i, k_w, v_w, k_smem, q_s, do_s, ld_s, ds_buf, ds_bar, dq_w, dq_desc, bars, dk, dv, keys, qcols,
                    t0, mid, scale2, row, L: gl.constexpr, D: gl.constexpr, WG: gl.constexpr):
    """b22 (head dim 64): _bwd_tile_ds, then the tile's whole dq share dS K ([BMQ, D]: one N = D product instead of
    two of D / 2) formed by one warpgroup, the tile's owner (WG == i % 2), once both wrote their dS^T; the other goes
    on to its next tile without waiting. The owner adds the share by a TMA reduction (_dq_out; through the dq writer it
    measured slower at every T, NOTES.md "Thirty-second session"). Returns dk, dv."""
    dk, dv, ptb, dsb = _bwd_tile_ds(k_w, v_w, q_s, do_s, ld_s, ds_buf, ds_bar, dk, dv, keys, qcols, t0, mid, scale2,
                                    L, D, WG)
    if i % 2 == WG:
        mbarrier.wait(ds_bar, (i // 2) & 1)
        zero_q = gl.zeros([BMQ, D], gl.float32, _acc_layout(D))
        dq = warpgroup_mma(ds_buf.permute((1, 0)), k_smem, zero_q, use_acc=False, is_async=True)
        dq, dv_r, dk_r, _pt, _ds = warpgroup_mma_wait(num_outstanding=0, deps=(dq, dv, dk, ptb, dsb))
        _dq_out(dq, dq_w, dq_desc, bars, row, 0, 0, False, WG)
    else:  # names of their own: the branches' values replace the in-flight accumulators (another type)
        dv_r, dk_r, _pt, _ds = warpgroup_mma_wait(num_outstanding=0, deps=(dv, dk, ptb, dsb))
    return dk_r, dv_r


@gluon.jit
def _bwd_step(i, smem, bars, dq_desc, k_w, v_w, k_cols, dq_w, dk, dv, keys, qcols, bh, lo, n, mid, Tp, scale2,
              L: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr, WRITER: gl.constexpr, OWNER: gl.constexpr,
              WG: gl.constexpr):
    """Query tile i of the item (t0 = lo + (n - 1 - i) BMQ): its ring entry, _bwd_tile, the entry's release and the
    tile's dq share put out (_dq_out); with OWNER _bwd_tile_owned. Returns dk, dv."""
    k_smem, _v_smem, q_bufs, do_bufs, ld_bufs, ds_bufs, _dq_bufs = smem
    q_ready, q_empty, ds_ready = bars[1], bars[2], bars[3]
    t0 = lo + (n - 1 - i) * BMQ
    s = i % STAGES
    mbarrier.wait(q_ready.index(s), (i // STAGES) & 1)
    if OWNER:
        dk, dv = _bwd_tile_owned(i, k_w, v_w, k_smem, q_bufs.index(s), do_bufs.index(s), ld_bufs.index(s),
                                 ds_bufs.index(i % 2), ds_ready.index(i % 2), dq_w, dq_desc, bars, dk, dv, keys,
                                 qcols, t0, mid, scale2, bh * Tp + t0, L, D, WG)
        mbarrier.arrive(q_empty.index(s), count=1)
    else:
        dk, dv, dq = _bwd_tile(i, k_w, v_w, k_cols, q_bufs.index(s), do_bufs.index(s), ld_bufs.index(s),
                               ds_bufs.index(i % 2), ds_ready.index(i % 2), dk, dv, keys, qcols, t0, mid, scale2, L, D,
                               WG)
        mbarrier.arrive(q_empty.index(s), count=1)
        _dq_out(dq, dq_w, dq_desc, bars, bh * Tp + t0, WG * (D // 2), i & 1, WRITER, WG)
    return dk, dv


@gluon.jit
def _bwd_consumer(ptrs, sc, smem, bars, descs, L: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr,
                  WRITER: gl.constexpr, KV_REGS: gl.constexpr, OWNER: gl.constexpr, WG: gl.constexpr):
    """MMA warpgroup WG: keys 64 WG .. 64 WG + 63 of the CTA's block over its query tiles, dq shares added by TMA
    reductions; adds dK (scaled) and dV of its keys to the float32 accumulators."""
    DKE, DVE, ITEMS, _FLAGS = ptrs
    _T, Tp, _H, C, scale, scale2, n_items = sc
    k_smem, v_smem, dq_bufs = smem[0], smem[1], smem[6]
    kv_bar = bars[0]
    dq_desc = descs[4]
    bh, j0, lo, n, mid = _item(ITEMS, n_items, L)
    st_layout: gl.constexpr = _acc_layout(BMQ)
    kv_layout: gl.constexpr = _acc_layout(D)
    keys = j0 + WG * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, st_layout))
    qcols = gl.arange(0, BMQ, layout=gl.SliceLayout(0, st_layout))
    k_w = k_smem.slice(WG * 64, 64)
    v_w = v_smem.slice(WG * 64, 64)
    k_cols = k_smem.slice(WG * (D // 2), D // 2, dim=1)
    dq_w = dq_bufs.index(WG)
    dk = gl.zeros([64, D], gl.float32, kv_layout)
    dv = gl.zeros([64, D], gl.float32, kv_layout)
    mbarrier.wait(kv_bar, 0)
    if KV_REGS:  # b21: S^T's and dP^T's A operands from registers, read from shared memory once per item
        a_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=st_layout, k_width=2)
        k_w = k_w.load(a_layout)
        v_w = v_w.load(a_layout)
    for i in range(n):
        dk, dv = _bwd_step(i, smem, bars, dq_desc, k_w, v_w, k_cols, dq_w, dk, dv, keys, qcols, bh, lo, n, mid, Tp,
                           scale2, L, D, STAGES, WRITER, OWNER, WG)
    tma.store_wait(0)
    rows = j0 + WG * 64 + gl.arange(0, 64, layout=gl.SliceLayout(1, kv_layout))
    cols = gl.arange(0, D, layout=gl.SliceLayout(0, kv_layout))
    ptr = bh.to(gl.int64) * C * D + rows[:, None] * D + cols[None, :]
    gl.atomic_add(DKE + ptr, dk * scale, mask=(rows < C)[:, None], sem="relaxed")
    gl.atomic_add(DVE + ptr, dv, mask=(rows < C)[:, None], sem="relaxed")


@gluon.jit
def _bwd_loader(ptrs, sc, smem, bars, descs, L: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr,
                WRITER: gl.constexpr, KV_REGS: gl.constexpr, OWNER: gl.constexpr):
    """The TMA warp: K and V of the block, then per query tile RoPE'd q, dO and its lse / Delta rows into the ring."""
    T, Tp, H, _C, _scale, _scale2, n_items = sc
    k_smem, v_smem, q_bufs, do_bufs, ld_bufs, _ds_bufs, _dq_bufs = smem
    kv_bar, q_ready, q_empty = bars[0], bars[1], bars[2]
    qr_desc, do_desc, ke_desc, ve_desc, _dq_desc, ld_desc, Cs = descs
    bh, j0, lo, n, _mid = _item(ptrs[2], n_items, L)
    mbarrier.expect(kv_bar, 2 * ke_desc.block_type.nbytes)
    tma.async_copy_global_to_shared(ke_desc, [bh * Cs + j0, 0], kv_bar, k_smem)
    tma.async_copy_global_to_shared(ve_desc, [bh * Cs + j0, 0], kv_bar, v_smem)
    for i in range(n):
        t0 = lo + (n - 1 - i) * BMQ
        s = i % STAGES
        bar = q_ready.index(s)
        mbarrier.wait(q_empty.index(s), ((i // STAGES) & 1) ^ 1)
        mbarrier.expect(bar, qr_desc.block_type.nbytes + do_desc.block_type.nbytes + ld_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(qr_desc, [bh * Tp + t0, 0], bar, q_bufs.index(s))
        tma.async_copy_global_to_shared(do_desc, [(bh // H) * T + t0, (bh % H) * D], bar, do_bufs.index(s))
        tma.async_copy_global_to_shared(ld_desc, [(bh * Tp + t0) // BMQ * 2, 0], bar, ld_bufs.index(s))


@gluon.jit
def _bwd_dq_writer(ptrs, sc, smem, bars, descs, L: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr,
                   WRITER: gl.constexpr, KV_REGS: gl.constexpr, OWNER: gl.constexpr):
    """The dq writer warp (b7c): per query tile, each warpgroup's dq share from its staging buffer (dq_full) to the
    float32 accumulator by TMA, the buffer handed back (dq_empty) once the copy has read it. The accumulator starts
    unwritten (b7b): key block 0's items, which visit every tile, store their shares and flag each tile once the
    stores are in global memory; the others wait for the flag before adding. The waits sit here, off the MMA
    warpgroups' path."""
    _T, Tp, _H, _C, _scale, _scale2, n_items = sc
    dq_bufs = smem[6]
    dq_full, dq_empty = bars[4], bars[5]
    dq_desc = descs[4]
    FLAGS = ptrs[3]
    bh, j0, lo, n, _mid = _item(ptrs[2], n_items, L)
    first = j0 == 0
    for i in range(n):
        t0 = lo + (n - 1 - i) * BMQ
        flag = FLAGS + (bh * (Tp // BMQ) + t0 // BMQ) * 2
        for w in gl.static_range(2):  # per tile one box from each warpgroup's buffer
            mbarrier.wait(dq_full.index(w), i & 1)
            if first:
                tma.async_copy_shared_to_global(dq_desc, [bh * Tp + t0, w * (D // 2)], dq_bufs.index(w))
            else:
                _flag_wait(flag + w)
                _tma_reduce_add(dq_desc, [bh * Tp + t0, w * (D // 2)], dq_bufs.index(w))
        tma.store_wait(0)
        for w in gl.static_range(2):
            mbarrier.arrive(dq_empty.index(w), count=1)
        if first:  # every lane past the issuing lane's wait before any sets a flag
            _writes_done(i)
            _partition_barrier()
            _flag_set(flag)
            _flag_set(flag + 1)


@gluon.jit
def bwd_ws_kernel(
    qr_desc, do_desc, ke_desc, ve_desc, dq_desc, ld_desc, DKE, DVE, ITEMS, FLAGS,
    T, Tp, H, C, Cs, scale, scale2, n_items,
    L: gl.constexpr, D: gl.constexpr, STAGES: gl.constexpr, DS_LAYOUT: gl.constexpr, WRITER: gl.constexpr,
    KV_REGS: gl.constexpr = False, OWNER: gl.constexpr = False,
):
    dtype: gl.constexpr = ke_desc.dtype
    k_smem = gl.allocate_shared_memory(dtype, [BN, D], ke_desc.layout)
    v_smem = gl.allocate_shared_memory(dtype, [BN, D], ve_desc.layout)
    q_bufs = gl.allocate_shared_memory(dtype, [STAGES, BMQ, D], qr_desc.layout)
    do_bufs = gl.allocate_shared_memory(dtype, [STAGES, BMQ, D], do_desc.layout)
    ld_bufs = gl.allocate_shared_memory(gl.float32, [STAGES, 2, BMQ], ld_desc.layout)
    ds_bufs = gl.allocate_shared_memory(dtype, [2, BN, BMQ], DS_LAYOUT)
    dq_bufs = gl.allocate_shared_memory(dq_desc.dtype, [2, BMQ, D if OWNER else D // 2], dq_desc.layout)
    kv_bar = gl.allocate_shared_memory(gl.int64, [1], mbarrier.MBarrierLayout())
    q_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    q_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    ds_ready = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
    mbarrier.init(kv_bar, count=1)
    for i in gl.static_range(STAGES):
        mbarrier.init(q_ready.index(i), count=1)
        mbarrier.init(q_empty.index(i), count=2)  # released by both MMA warpgroups
    for i in gl.static_range(2):
        mbarrier.init(ds_ready.index(i), count=2)  # both warpgroups' dS^T written
    bars = (kv_bar, q_ready, q_empty, ds_ready)
    if WRITER:  # warpgroup i's dq share staged (dq_full), then read by the writer's copy (dq_empty)
        dq_full = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        dq_empty = gl.allocate_shared_memory(gl.int64, [2, 1], mbarrier.MBarrierLayout())
        for i in gl.static_range(2):
            mbarrier.init(dq_full.index(i), count=1)
            mbarrier.init(dq_empty.index(i), count=1)
        bars = (kv_bar, q_ready, q_empty, ds_ready, dq_full, dq_empty)
    ptrs = (DKE, DVE, ITEMS, FLAGS)
    sc = (T, Tp, H, C, scale, scale2, n_items)
    smem = (k_smem, v_smem, q_bufs, do_bufs, ld_bufs, ds_bufs, dq_bufs)
    descs = (qr_desc, do_desc, ke_desc, ve_desc, dq_desc, ld_desc, Cs)
    if WRITER:
        gl.warp_specialize([
            (_bwd_consumer, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER, 0)),
            (_bwd_consumer, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER, 1)),
            (_bwd_loader, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER)),
            (_bwd_dq_writer, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER)),
        ], [4, 1, 1], [240, 24, 24])  # the writer at 32 left warpgroup 0 232: ptxas serialized every wgmma (NOTES.md)
    else:
        gl.warp_specialize([
            (_bwd_consumer, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER, 0)),
            (_bwd_consumer, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER, 1)),
            (_bwd_loader, (ptrs, sc, smem, bars, descs, L, D, STAGES, WRITER, KV_REGS, OWNER)),
        ], [4, 1], [240, 24])


def launch_backward(qr: torch.Tensor, do: torch.Tensor, ke: torch.Tensor, ve: torch.Tensor, dqacc: torch.Tensor,
                    ld: torch.Tensor, dke: torch.Tensor, dve: torch.Tensor, T: int, L: int, scale: float,
                    scale2: float, stages: int = 2, seg: int | None = None, flags: torch.Tensor | None = None,
                    kv_regs: bool = False, owner: bool = False) -> None:
    """bwd_ws_kernel: qr (B*H, Tp, D) RoPE'd q and dqacc (same shape, float32 or q's 16-bit dtype, added to) padded to
    Tp rows (a multiple of 64), ld (B*H, Tp / 64, 2, 64) float32 (per 64-row tile its lse row, then its Delta row; lse
    +inf and Delta 0 past T), do (B, T, H, D) contiguous, chunk ends ke, ve contiguous (B, H, Cs, D); dK (scaled) and dV
    added to dke, dve (B*H, C, D) float32 (zero on entry). With flags (int32, B*H * Tp / 64 * 2 zeros) dqacc need not be
    written on entry (b7b, b7c): a writer warp of its own (_bwd_dq_writer) issues the dq shares' copies; key block 0's
    items store their share of every 64-row tile below T rounded up to 64 and flag it, and the others add theirs after
    the flag (rows from there to Tp are left as they are). One CTA per work item (work_items) of seg tiles: by default
    128 from 2048 chunk ends per head on, else 64 (the faster of the two at each shape measured, NOTES.md b4), and 32 up
    to two key blocks (256 chunk ends), where key block 0's one long item per head otherwise runs on alone after the
    others (NOTES.md "Seventeenth session"). kv_regs (b21, head dim 64 only): each MMA warpgroup holds its K and V rows
    in registers as S^T's and dP^T's A operands; owner (b22, head dim 64 only, without the dq writer): the warpgroups
    take turns forming a tile's whole dq share (NOTES.md "Thirty-first session", "Thirty-second session")."""
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    BH, Tp, D = qr.shape
    if (kv_regs or owner) and D != 64:
        raise ValueError(f"rat/gluon: K and V in registers (bwd_kv_regs) and dq by owners (bwd_dq_owner) are for head "
                         f"dim 64 only, got {D}")
    if owner and flags is not None:
        raise ValueError("rat/gluon: dq by owners (bwd_dq_owner) adds its shares by TMA reductions; with the dq "
                         "writer (bwd_dq_writer) it measured slower at every T (impls/rat/gluon/NOTES.md, thirty-second "
                         "session)")
    B, _, H, _ = do.shape
    Cs = ke.shape[2]
    C = dke.shape[1]
    bm = BMQ.value
    gdt = _GL_DTYPES[qr.dtype]
    lay_kv = gl.NVMMASharedLayout.get_default_for([BN.value, D], gdt)
    lay_q = gl.NVMMASharedLayout.get_default_for([bm, D], gdt)
    dq_cols = D if owner else D // 2
    lay_dq = gl.NVMMASharedLayout.get_default_for([bm, dq_cols], _GL_DTYPES[dqacc.dtype])
    lay_ld = gl.NVMMASharedLayout(swizzle_byte_width=0, element_bitwidth=32, rank=2)  # plain rows (_ld_row)
    ke_d, ve_d = (TensorDescriptor(x, [BH * Cs, D], [D, 1], [BN.value, D], lay_kv) for x in (ke, ve))
    qr_d = TensorDescriptor(qr, [BH * Tp, D], [D, 1], [bm, D], lay_q)
    do_d = TensorDescriptor(do, [B * T, H * D], [H * D, 1], [bm, D], lay_q)
    dq_d = TensorDescriptor(dqacc, [BH * Tp, D], [D, 1], [bm, dq_cols], lay_dq)
    ld_d = TensorDescriptor(ld, [BH * Tp // bm * 2, bm], [bm, 1], [2, bm], lay_ld)
    if seg is None:
        seg = 32 if C <= 2 * BN.value else 128 if C >= 2048 else 64
    items = work_items(T, C, L, seg, qr.device, first_ahead=flags is not None)
    if len(items) == 0:
        return
    bwd_ws_kernel[(BH * len(items),)](
        qr_d, do_d, ke_d, ve_d, dq_d, ld_d, dke, dve, items, items if flags is None else flags, T, Tp, H, C, Cs,
        scale, scale2, len(items), L=L, D=D, STAGES=stages,
        DS_LAYOUT=gl.NVMMASharedLayout.get_default_for([BN.value, bm], gdt), WRITER=flags is not None,
        KV_REGS=kv_regs, OWNER=owner, num_warps=4, maxnreg=168,
    )


def gluon_backward(do: torch.Tensor, q: torch.Tensor, o: torch.Tensor, lse: torch.Tensor, ktr: torch.Tensor,
                   vt: torch.Tensor, ke: torch.Tensor, ve: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   L: int, rope: bool, scale: float, finish_dq: bool = True, qr: torch.Tensor | None = None,
                   writer: bool = False, seg: int | None = None, acc16: bool = False, kv_regs: bool = False,
                   owner: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The attention part of RAT's backward: bwd_ws_pre_kernel, bwd_ws_kernel and, with finish_dq, bwd_dq_post_kernel.
    do, o, ktr, vt share o's (B, T, H, D) strides; lse (B*H, T) base 2 from the forward. Returns dq (o's shape and
    dtype) or, without finish_dq, the accumulator (B*H, Tp, D; float32, or with acc16 o's dtype) holding sum_j dS_tj K_j
    for the backward scan to finish (bwd_scan_kernel's DQ_OUT: the self term, scale, RoPE^T); Delta (B*H, T) float32; dK
    (scaled), dV of the chunk ends (B*H, C, D) float32 for the backward scan; RoPE_c(q) (B*H, Tp, D). qr: RoPE_c(q) as
    the forward wrote it (B*H, Tp, D), Tp a multiple of 64 (fwd_ws_kernel's: of 128), rows past T finite; without it the
    pre pass writes it from q (Tp = T rounded up to 64). q is read only without qr or with finish_dq (dq's self term);
    else it may be None. writer (b7b, b7c; without finish_dq): the accumulator is not zeroed by the pre pass, key block
    0's items store their share first and a writer warp issues the copies (launch_backward's flags); without it the pre
    pass writes its zeros (b5). seg: query tiles per work item (launch_backward's rule if None). acc16 (b17, b25):
    without finish_dq the accumulator is in o's 16-bit dtype instead of float32: half its bytes written here (and
    zeroed by the pre pass without writer) and read by the backward scan; with writer a query tile's first share is
    stored, the others (without writer all) are added by 16-bit TMA reductions (the caller decides where:
    impls.rat.triton._acc16). kv_regs, owner: launch_backward's (b21, b22)."""
    from ratbench.impls.attention_core import LOG2E
    from ratbench.impls.rat.gluon.passes import bwd_dq_post_kernel, bwd_ws_pre_kernel

    if q is None and (qr is None or finish_dq):
        raise ValueError("rat/gluon: the backward needs q unless the forward wrote RoPE(q) and the scan finishes dq")
    if q is None:
        q = o  # not read (QR_OUT and SELF off): only a pointer of the right dtype
    if q.dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"rat/gluon's backward runs on 16-bit inputs (wgmma), got {q.dtype}")
    if not scale > 0:
        raise ValueError(f"rat/gluon needs a positive softmax scale, got {scale:g}")
    B, T, H, D = o.shape
    C = ke.shape[2]
    if ke.stride() != (H * C * D, C * D, D, 1) or ve.stride() != ke.stride():
        raise ValueError("rat/gluon: the chunk ends must be contiguous (B, H, C, D) tensors")
    if do.stride() != (T * H * D, H * D, D, 1):
        do = do.contiguous()
    Tp = triton.cdiv(T, BMQ.value) * BMQ.value if qr is None else qr.shape[1]
    if qr is not None and (qr.shape != (B * H, Tp, D) or Tp % BMQ.value or Tp < T or not qr.is_contiguous()):
        raise ValueError(f"rat/gluon: RoPE(q) from the forward must be a contiguous (B*H, Tq, D) tensor with Tq >= T a "
                         f"multiple of {BMQ.value}, got {tuple(qr.shape)}")
    dev = q.device
    ld = torch.empty(B * H, Tp // BMQ.value, 2, BMQ.value, device=dev, dtype=torch.float32)
    delta = torch.empty(B * H, T, device=dev, dtype=torch.float32)
    qr_out = qr is None
    if qr_out:
        qr = torch.empty(B * H, Tp, D, device=dev, dtype=q.dtype)
    acc16 = acc16 and not finish_dq
    dqacc = torch.empty(B * H, Tp, D, device=dev, dtype=o.dtype if acc16 else torch.float32)
    scale2 = scale * LOG2E
    bwd_ws_pre_kernel[(Tp // PRE_BM, B * H)](
        q, o, ktr, vt, do, cos, sin, lse, delta, ld, qr, dqacc,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2), T, Tp, H, scale2,
        L=L, BM=PRE_BM, TILE=BMQ.value, HALF=D // 2, ROPE=rope, SELF=finish_dq, QR_OUT=qr_out,
        ZERO=not finish_dq and not writer, num_warps=PRE_WARPS,
    )
    dke = torch.zeros(B * H, C, D, device=dev, dtype=torch.float32)
    dve = torch.zeros_like(dke)
    flags = (None if finish_dq or not writer
             else torch.zeros(B * H * (Tp // BMQ.value) * 2, device=dev, dtype=torch.int32))
    launch_backward(qr, do, ke, ve, dqacc, ld, dke, dve, T, L, scale, scale2, seg=seg, flags=flags,
                    kv_regs=kv_regs, owner=owner)
    if not finish_dq:
        return dqacc, delta, dke, dve, qr
    dq = torch.empty_like(o)
    bwd_dq_post_kernel[(triton.cdiv(T, 64), B * H)](
        dq, dqacc, cos, sin, o.stride(0), o.stride(1), o.stride(2), T, Tp, H, scale,
        L=L, BM=64, HALF=D // 2, ROPE=rope, num_warps=4,
    )
    return dq, delta, dke, dve, qr
