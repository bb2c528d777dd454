"""The RAT forward attention (docs/rat-spec.md, op step 3) as a warp-specialized Gluon kernel for sm_90.

fwd_ws_kernel  grid (ceil(T / 128), B*H), the longest rows first. One CTA = 128 query rows and three
               partitions: a loader warp (TMA: the chunk ends K_j, V_j in blocks of BN rows into a ring of
               STAGES shared-memory buffers, one mbarrier per buffer and operand, a buffer refilled once both
               consumers released it) and two consumer warpgroups of 64 rows each (_consumer):
                 _prologue: q_r = RoPE_c(q) in float32, the self term s_self = q_r . RoPE_c(kt_t) scale2
                   starts the online softmax (m = s_self, l = 1, acc = vt_t); q_r (16-bit) to shared memory;
                 loop (FA3's intra-warpgroup overlap): issue S_i = q_r K_i^T and O += P_{i-1} V_{i-1} (wgmma,
                   P from registers), wait for S_i only, softmax of S_i (the j < c(t) mask on the last blocks
                   only; the scale folded into the exponent's FFMA) while P_{i-1} V_{i-1} runs, wait, release
                   the buffer, rescale O;
                 _epilogue: o = acc / l, lse = m + log2(l) (base 2) for the backward.
Inputs as impls/rat/kernels/forward.py (the Triton kernel this one replaces): RoPE'd kt and vt per token
from scan_kernel, the chunk ends compact (B, H, Cs, D) with Cs >= C (a decode cache may be longer), read
through a 2-D TMA descriptor over (B*H*Cs, D). Rows of a block past c(t) are read but masked (P = 0).
Math: FlashAttention-2's online softmax (Dao 2023); the overlap of softmax with the products as in
FlashAttention-3 (Shah et al. 2024), written here for RAT's chunk-end keys. Versions and measurements
(one 8-warp consumer partition; inter-warpgroup ping-pong; persistent CTAs): impls/rat/gluon/NOTES.md.
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

BM = 128  # query rows per CTA: two consumer warpgroups of 64 rows


@gluon.constexpr_function
def _row_layout(N, num_warps):
    """Blocked layout of a [rows, N] 16-bit tile: 8 contiguous elements (16 bytes) per thread."""
    N, num_warps = (getattr(x, "value", x) for x in (N, num_warps))
    cols = N // 8
    return gl.BlockedLayout([1, 8], [32 // cols, cols], [num_warps, 1], [1, 0])


@gluon.jit
def _softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN: gl.constexpr):
    """One block of raw logits s = q.K ([64, BN]), masked where j >= c(t) if the block is past the unmasked
    ones. m_i is in scaled base-2 units; the scale goes into the exponent's FFMA (s scale2 - m), as in
    FlashAttention. Returns p (float32), the new m, l and the rescale factor of the accumulator."""
    if i >= n_full:
        keys = i * BN + cols
        s = gl.where(keys[None, :] < crow[:, None], s, -float("inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * scale2)
    alpha = gl.exp2(m_i - m_new)
    p = gl.exp2(s * scale2 - m_new[:, None])
    l_i = l_i * alpha + gl.sum(p, 1)
    return p, m_new, l_i, alpha


@gluon.jit
def _prologue(ptrs, strides, T, H, bh, tw, scale2, q_w, L: gl.constexpr, D: gl.constexpr, ROPE: gl.constexpr,
              s_layout: gl.constexpr, o_layout: gl.constexpr):
    """Rows tw .. tw + 63: q_r = RoPE_c(q) (16-bit) into q_w, and the online softmax's start from the self term:
    acc = vt, m = q_r . RoPE_c(kt) scale2 (float32 q_r), l = 1. Returns acc, m, l, the rows' chunk ids, o's base."""
    Q, KTR, VT, COS, SIN = ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4]
    s_b, s_t, s_h, o_b, o_t, o_h = strides
    BMW: gl.constexpr = 64
    HALF: gl.constexpr = D // 2
    dtype: gl.constexpr = q_w.dtype
    b = bh // H
    h = bh % H
    blk: gl.constexpr = _row_layout(HALF, 4)
    r = gl.arange(0, BMW, layout=gl.SliceLayout(1, blk))
    dcol = gl.arange(0, HALF, layout=gl.SliceLayout(0, blk))
    rows = tw + r
    vm = (rows < T)[:, None]
    crow_b = rows // L
    q_base = b.to(gl.int64) * s_b + h.to(gl.int64) * s_h + tw.to(gl.int64) * s_t
    qptr = r[:, None] * s_t + dcol[None, :]
    q1 = gl.load(Q + q_base + qptr, mask=vm, other=0.0).to(gl.float32)
    q2 = gl.load(Q + q_base + qptr + HALF, mask=vm, other=0.0).to(gl.float32)
    if ROPE:
        tptr = crow_b[:, None] * HALF + dcol[None, :]
        cos = gl.load(COS + tptr, mask=vm, other=1.0)
        sin = gl.load(SIN + tptr, mask=vm, other=0.0)
        q1, q2 = q1 * cos - q2 * sin, q2 * cos + q1 * sin
    o_base = b.to(gl.int64) * o_b + h.to(gl.int64) * o_h + tw.to(gl.int64) * o_t
    optr = r[:, None] * o_t + dcol[None, :]
    k1 = gl.load(KTR + o_base + optr, mask=vm, other=0.0).to(gl.float32)
    k2 = gl.load(KTR + o_base + optr + HALF, mask=vm, other=0.0).to(gl.float32)
    s_self = gl.sum(q1 * k1 + q2 * k2, 1) * scale2
    v1 = gl.load(VT + o_base + optr, mask=vm, other=0.0)
    v2 = gl.load(VT + o_base + optr + HALF, mask=vm, other=0.0)
    q_w.store(gl.reshape(gl.permute(gl.join(q1.to(dtype), q2.to(dtype)), (0, 2, 1)), [BMW, D]))
    fence_async_shared()
    row_s: gl.constexpr = gl.SliceLayout(1, s_layout)
    acc = gl.convert_layout(gl.reshape(gl.permute(gl.join(v1, v2), (0, 2, 1)), [BMW, D]), o_layout).to(gl.float32)
    m_i = gl.convert_layout(s_self, row_s)
    l_i = gl.full([BMW], 1.0, gl.float32, row_s)
    return acc, m_i, l_i, gl.convert_layout(crow_b, row_s), o_base


@gluon.jit
def _epilogue(O, LSE, o_t, T, bh, tw, o_base, acc, m_i, l_i, D: gl.constexpr, STORE_LSE: gl.constexpr,
              s_layout: gl.constexpr, o_layout: gl.constexpr):
    """o = acc / l (16-bit, 16-byte stores) and lse = m + log2(l) of rows tw .. tw + 63."""
    BMW: gl.constexpr = 64
    o = acc * gl.convert_layout(1.0 / l_i, gl.SliceLayout(1, o_layout))[:, None]
    ob: gl.constexpr = _row_layout(D, 4)
    o = gl.convert_layout(o.to(O.dtype.element_ty), ob)
    ro = gl.arange(0, BMW, layout=gl.SliceLayout(1, ob))
    co = gl.arange(0, D, layout=gl.SliceLayout(0, ob))
    gl.store(O + o_base + ro[:, None] * o_t + co[None, :], o, mask=((tw + ro) < T)[:, None])
    if STORE_LSE:
        rl = gl.arange(0, BMW, layout=gl.SliceLayout(1, s_layout))
        gl.store(LSE + bh.to(gl.int64) * T + tw + rl, m_i + gl.log2(l_i), mask=(tw + rl) < T)


@gluon.jit
def _consumer(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
              ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr, WG: gl.constexpr):
    """One consumer warpgroup: query rows t0 + 64 WG .. + 63 of the CTA's tile, prologue, loop, epilogue."""
    T, H, t0, bh, n_blocks, n_full, scale2 = sc
    q_smem, k_bufs, v_bufs = smem
    k_ready, v_ready, kv_empty = bars
    BMW: gl.constexpr = 64
    dtype: gl.constexpr = k_bufs.dtype
    tw = t0 + WG * BMW
    q_w = q_smem.index(WG)
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, BN, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1], instr_shape=[16, D, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_o: gl.constexpr = gl.SliceLayout(1, o_layout)
    acc, m_i, l_i, crow, o_base = _prologue(ptrs, strides, T, H, bh, tw, scale2, q_w, L, D, ROPE, s_layout, o_layout)
    zero_s = gl.zeros([BMW, BN], gl.float32, s_layout)
    cols = gl.arange(0, BN, layout=gl.SliceLayout(0, s_layout))
    p = gl.zeros([BMW, BN], dtype, p_layout)
    # ---- the loop: issue S_i and P_{i-1} V_{i-1}; softmax of S_i under P_{i-1} V_{i-1} -----------------------
    if n_blocks > 0:
        mbarrier.wait(k_ready.index(0), 0)
        s = warpgroup_mma(q_w, k_bufs.index(0).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(num_outstanding=0, deps=(s,))
        p32, m_i, l_i, alpha = _softmax(s, m_i, l_i, 0, n_full, crow, cols, scale2, BN)
        acc = acc * gl.convert_layout(alpha, row_o)[:, None]
        p = gl.convert_layout(p32.to(dtype), p_layout)
    for i in range(1, n_blocks):
        st = i % STAGES
        pst = (i - 1) % STAGES
        mbarrier.wait(k_ready.index(st), (i // STAGES) & 1)
        s = warpgroup_mma(q_w, k_bufs.index(st).permute((1, 0)), zero_s, use_acc=False, is_async=True)
        mbarrier.wait(v_ready.index(pst), ((i - 1) // STAGES) & 1)
        acc = warpgroup_mma(p, v_bufs.index(pst), acc, is_async=True)
        s = warpgroup_mma_wait(num_outstanding=1, deps=(s,))
        p32, m_i, l_i, alpha = _softmax(s, m_i, l_i, i, n_full, crow, cols, scale2, BN)
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
        mbarrier.arrive(kv_empty.index(pst), count=1)
        acc = acc * gl.convert_layout(alpha, row_o)[:, None]
        p = gl.convert_layout(p32.to(dtype), p_layout)
    if n_blocks > 0:
        last = n_blocks - 1
        mbarrier.wait(v_ready.index(last % STAGES), (last // STAGES) & 1)
        acc = warpgroup_mma(p, v_bufs.index(last % STAGES), acc, is_async=True)
        acc, p = warpgroup_mma_wait(num_outstanding=0, deps=(acc, p))
        mbarrier.arrive(kv_empty.index(last % STAGES), count=1)
    _epilogue(ptrs[5], ptrs[6], strides[4], T, bh, tw, o_base, acc, m_i, l_i, D, STORE_LSE, s_layout, o_layout)


@gluon.jit
def _consumer0(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
               ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr):
    _consumer(ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 0)


@gluon.jit
def _consumer1(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
               ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr):
    _consumer(ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES, 1)


@gluon.jit
def _loader(ptrs, strides, sc, smem, bars, descs, L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr,
            ROPE: gl.constexpr, STORE_LSE: gl.constexpr, STAGES: gl.constexpr):
    """The TMA warp: chunk-end blocks i = 0 .. n_blocks - 1 of K and V into the ring; a buffer is refilled once
    both consumer warpgroups have released it."""
    n_blocks = sc[4]
    k_bufs, v_bufs = smem[1], smem[2]
    k_ready, v_ready, kv_empty = bars[0], bars[1], bars[2]
    ke_desc, ve_desc, row0 = descs
    for i in range(n_blocks):
        s = i % STAGES
        ph = (i // STAGES) & 1
        mbarrier.wait(kv_empty.index(s), ph ^ 1)
        mbarrier.expect(k_ready.index(s), ke_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(ke_desc, [row0 + i * BN, 0], k_ready.index(s), k_bufs.index(s))
        mbarrier.expect(v_ready.index(s), ve_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(ve_desc, [row0 + i * BN, 0], v_ready.index(s), v_bufs.index(s))


@gluon.jit
def fwd_ws_kernel(
    Q, KTR, VT, COS, SIN, ke_desc, ve_desc, O, LSE,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, Cs, scale2,
    L: gl.constexpr, BN: gl.constexpr, D: gl.constexpr, ROPE: gl.constexpr,
    STORE_LSE: gl.constexpr, STAGES: gl.constexpr,
):
    BM: gl.constexpr = 128  # two consumer warpgroups of 64 rows
    dtype: gl.constexpr = ke_desc.dtype
    pid = gl.num_programs(0) - 1 - gl.program_id(0)  # longest rows first
    bh = gl.program_id(1)
    t0 = pid * BM
    # keys j < c(t): every row sees j < c(t0) (unmasked blocks), the last row j < c(t_last)
    hi = (gl.minimum(t0 + BM, T) - 1) // L
    n_blocks = gl.cdiv(hi, BN)
    n_full = (t0 // L) // BN
    q_layout: gl.constexpr = gl.NVMMASharedLayout.get_default_for([64, D], dtype)
    q_smem = gl.allocate_shared_memory(dtype, [2, 64, D], q_layout)
    k_bufs = gl.allocate_shared_memory(dtype, [STAGES, BN, D], ke_desc.layout)
    v_bufs = gl.allocate_shared_memory(dtype, [STAGES, BN, D], ve_desc.layout)
    k_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    kv_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for i in gl.static_range(STAGES):
        mbarrier.init(k_ready.index(i), count=1)
        mbarrier.init(v_ready.index(i), count=1)
        mbarrier.init(kv_empty.index(i), count=2)  # released by both consumer warpgroups
    ptrs = (Q, KTR, VT, COS, SIN, O, LSE)
    strides = (s_b, s_t, s_h, o_b, o_t, o_h)
    sc = (T, H, t0, bh, n_blocks, n_full, scale2)
    smem = (q_smem, k_bufs, v_bufs)
    bars = (k_ready, v_ready, kv_empty)
    descs = (ke_desc, ve_desc, bh * Cs)
    # constexprs written out in each tuple (a constexpr inside a tuple variable becomes an int32 tensor)
    gl.warp_specialize([
        (_consumer0, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES)),
        (_consumer1, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES)),
        (_loader, (ptrs, strides, sc, smem, bars, descs, L, BN, D, ROPE, STORE_LSE, STAGES)),
    ], [4, 1], [240, 24])


def launch_forward(q, ktr, vt, cos, sin, ke, ve, o, lse, T: int, H: int, L: int, scale2: float, rope: bool,
                   store_lse: bool, bn: int = 128, stages: int = 2) -> None:
    """fwd_ws_kernel over (B, T, H, D) q, ktr, vt, o and chunk ends ke, ve (B, H, Cs, D), last dim contiguous
    and each (b, h) slab of Cs * D elements contiguous (TMA reads them as one (B*H*Cs, D) matrix)."""
    from triton.experimental.gluon.nvidia.hopper import TensorDescriptor

    B, _, _, D = q.shape
    Cs = ke.shape[2]
    if not scale2 > 0:
        raise ValueError(f"rat/gluon needs a positive softmax scale (its exponent folds the scale into one FFMA), "
                         f"got {scale2 / LOG2E:g}")
    if ke.stride() != (H * Cs * D, Cs * D, D, 1) or ve.stride() != ke.stride():
        raise ValueError("rat/gluon: the chunk ends (decode cache) must be contiguous (B, H, C, D) tensors")
    gdt = {torch.bfloat16: gl.bfloat16, torch.float16: gl.float16}[q.dtype]
    lay = gl.NVMMASharedLayout.get_default_for([bn, D], gdt)
    descs = [TensorDescriptor(x, [B * H * Cs, D], [D, 1], [bn, D], lay) for x in (ke, ve)]
    fwd_ws_kernel[(triton.cdiv(T, BM), B * H)](
        q, ktr, vt, cos, sin, descs[0], descs[1], o, lse,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2), T, H, Cs, scale2,
        L=L, BN=bn, D=D, ROPE=rope, STORE_LSE=store_lse, STAGES=stages,
        num_warps=4, maxnreg=168,
    )
