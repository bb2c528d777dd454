"""Triton kernels for chunked linear attention with an optional scalar log-decay per (B, T, H).

Math (impls/linear/base.py):  S_t = exp(decay_t) S_{t-1} + k_t v_t^T,   o_t = scale * q_t S_t.

Chunked form (the GLA / flash-linear-attention "chunk" algorithm, Yang et al. 2024, written anew
here). Split T into chunks of BT tokens. Inside chunk c let g_t be the float32 cumulative sum of the
decays from the chunk start up to and including t, and G = g at the chunk's last token. With h_c the
state entering chunk c:

    o_t     = scale * ( exp(g_t) q_t h_c + sum_{s <= t in c} exp(g_t - g_s) (q_t . k_s) v_s )
    h_{c+1} = exp(G) h_c + sum_{s in c} exp(G - g_s) k_s v_s^T

Backward, with dh_c the gradient of the state at the END of chunk c (dh_last = 0):

    dh_{c-1} = exp(G_c) dh_c + scale * sum_{t in c} exp(g_t) q_t dO_t^T
    dq_t = scale * ( exp(g_t) dO_t h_c^T + sum_{s <= t} exp(g_t - g_s) (dO_t . v_s) k_s )
    dk_s = scale * sum_{t >= s} exp(g_t - g_s) (dO_t . v_s) q_t + exp(G - g_s) v_s dh_c^T
    dv_s = scale * sum_{t >= s} exp(g_t - g_s) (q_t . k_s) dO_t + exp(G - g_s) k_s dh_c
    d decay: chunk by chunk, see chunk_bwd_dqk_kernel.

Layout: q, k, v, o, dO are (B, T, H, D) contiguous, so token t of head h of batch b sits at
((b * T + t) * H + h) * D. g / dg are (B*H, TP) float32 with TP = T rounded up to BT (the padded
tail carries decay 0, so G of a partial last chunk is g at token T-1). Chunk states h / dh are
(B*H, NT, D, D) in the input dtype (they are only ever a tensor-core operand); the running state
inside a kernel and the final state are float32. Tokens past T are masked to zero on load and
never stored, so any T works.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _seq_base(i_bh, T, H: tl.constexpr, D: tl.constexpr):
    """Element offset of token 0 of sequence (b, h) in a (B, T, H, D) tensor (int64)."""
    i_b = i_bh // H
    i_h = i_bh % H
    return (i_b.to(tl.int64) * T * H + i_h) * D


# Helpers shared by the kernels below (inlined by Triton). Kernels that spell the same code out
# (the walkers chunk_fused_fwd / chunk_fused_bwd_dhv, chunk_fwd_o, chunk_bwd_dv, and the q/k/v
# tile loads everywhere) do so on purpose: through a helper their PTX instructions stay the same
# but the line info changes, and that alone changed ptxas's sm_90 register allocation or schedule
# (bf16/fp16 SASS not byte-identical, extra spill moves in the tf32x3 builds). Check a change with
# scripts/sass_linear_triton.py --dump DIR --fresh-cache before and after (that script: git show ba51d7e:scripts/...;
# now `run_bench.py static` compares every default launch with its baseline).
@triton.jit
def _chunk_g(g, i_bh, TP, i_t, t, BT: tl.constexpr):
    """Cumulative log-decays of chunk i_t of sequence i_bh (g is (B*H, TP)): g at tokens t, and G,
    g at the chunk's last token."""
    b_g = tl.load(g + i_bh * TP + t)
    g_last = tl.load(g + i_bh * TP + i_t * BT + BT - 1)
    return b_g, g_last


@triton.jit
def _state_block(ptr, idx, offs_r, offs_c, D: tl.constexpr):
    """Pointers to rows offs_r, columns offs_c of D x D state number idx of ptr (row-major states
    stored back to back: chunk states (B*H, NT, D, D), segment states, final states (B*H, D, D))."""
    return ptr + idx * D * D + offs_r[:, None] * D + offs_c[None, :]


# --------------------------------------------------------------------------------------------
# Forward, pass 1: the chunk states.
# Program (i_k, i_v, i_bh) owns the [BK, BV] block of the state of sequence i_bh and walks the
# chunks in order: stores h_c (state entering chunk c), then h <- exp(G) h + (k * exp(G - g))^T v.
# Grid (D / BK, D / BV, B * H). Sequential in c; parallel over state blocks and sequences.
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_fwd_h_kernel(
    k, v, g, h, ht, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, STORE_H: tl.constexpr, STORE_FINAL: tl.constexpr, PRECISION: tl.constexpr,
):
    i_k = tl.program_id(0)
    i_v = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    offs_t = tl.arange(0, BT)
    offs_k = i_k * BK + tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    TP = NT * BT
    b_h = tl.zeros([BK, BV], dtype=tl.float32)
    for i_t in range(NT):
        if STORE_H:
            p_h = _state_block(h, i_bh * NT + i_t, offs_k, offs_v, D)
            tl.store(p_h, b_h.to(h.dtype.element_ty))
        t = i_t * BT + offs_t
        m_t = t < T
        b_kt = tl.load(k + base + t[None, :] * row + offs_k[:, None], mask=m_t[None, :], other=0.0)  # [BK, BT]
        b_v = tl.load(v + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        if USE_G:
            b_g, g_last = _chunk_g(g, i_bh, TP, i_t, t, BT)
            b_h = b_h * tl.exp(g_last)
            b_kt = (b_kt * tl.exp(g_last - b_g)[None, :]).to(b_v.dtype)
        b_h += tl.dot(b_kt, b_v, input_precision=PRECISION)
    if STORE_FINAL:
        p_ht = _state_block(ht, i_bh, offs_k, offs_v, D)
        tl.store(p_ht, b_h)


# --------------------------------------------------------------------------------------------
# Forward, pass 2: the outputs, fully parallel over chunks.
# Program (i_v, i_t, i_bh): o[chunk, BV block] = scale * (exp(g) * (q h_c) + (mask(q k^T) * D) v).
# Grid (D / BV, NT, B * H); q, k are loaded whole ([BT, D]).
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_fwd_o_kernel(
    q, k, v, g, h, o, scale, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_t = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_i = tl.arange(0, BT)
    t = i_t * BT + offs_i
    m_t = t < T
    b_q = tl.load(q + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
    b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
    b_v = tl.load(v + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
    b_h = tl.load(h + (i_bh * NT + i_t) * D * D + offs_d[:, None] * D + offs_v[None, :])  # [D, BV]
    b_o = tl.dot(b_q, b_h, input_precision=PRECISION)
    b_s = tl.dot(b_q, tl.trans(b_k), input_precision=PRECISION)  # [BT(t), BT(s)]
    causal = offs_i[:, None] >= offs_i[None, :]
    if USE_G:
        b_g = tl.load(g + i_bh * NT * BT + t)
        b_o = b_o * tl.exp(b_g)[:, None]
        b_s = b_s * tl.exp(tl.where(causal, b_g[:, None] - b_g[None, :], float("-inf")))
    else:
        b_s = tl.where(causal, b_s, 0.0)
    b_o += tl.dot(b_s.to(b_v.dtype), b_v, input_precision=PRECISION)
    tl.store(o + base + t[:, None] * row + offs_v[None, :], (b_o * scale).to(o.dtype.element_ty), mask=m_t[:, None])


# --------------------------------------------------------------------------------------------
# Backward, pass 1: the state gradients, walking the chunks backwards.
# Program (i_k, i_v, i_bh) owns a [BK, BV] block of dh; stores dh_c (gradient of the state at the
# end of chunk c), then dh <- exp(G) dh + scale * (q * exp(g))^T dO. Grid (D / BK, D / BV, B * H).
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_bwd_dh_kernel(
    q, do, g, dh, scale, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_k = tl.program_id(0)
    i_v = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    offs_t = tl.arange(0, BT)
    offs_k = i_k * BK + tl.arange(0, BK)
    offs_v = i_v * BV + tl.arange(0, BV)
    TP = NT * BT
    b_dh = tl.zeros([BK, BV], dtype=tl.float32)
    for i in range(NT):
        i_t = NT - 1 - i
        p_dh = _state_block(dh, i_bh * NT + i_t, offs_k, offs_v, D)
        tl.store(p_dh, b_dh.to(dh.dtype.element_ty))
        t = i_t * BT + offs_t
        m_t = t < T
        b_qt = tl.load(q + base + t[None, :] * row + offs_k[:, None], mask=m_t[None, :], other=0.0)  # [BK, BT]
        b_do = tl.load(do + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        if USE_G:
            b_g = tl.load(g + i_bh * TP + t)
            g_last = tl.load(g + i_bh * TP + i_t * BT + BT - 1)
            b_dh = b_dh * tl.exp(g_last)
            b_qt = (b_qt * tl.exp(b_g)[None, :]).to(b_do.dtype)
        b_dh += scale * tl.dot(b_qt, b_do, input_precision=PRECISION)


# --------------------------------------------------------------------------------------------
# Backward, pass 2a: dq, dk (and the decay gradient), fully parallel over chunks.
# Program (i_k, i_t, i_bh) owns columns [i_k*BK, (i_k+1)*BK) of dq and dk of one chunk. It loops over
# BV blocks of the value dim accumulating dO v^T (intra-chunk part), dO h^T (dq) and v dh^T (dk),
# then adds ds k and ds^T q. With a decay it also writes this block's share of d decay
# (D/BK, B*H, TP), summed by the caller. Grid (D / BK, NT, B * H).
#
# The decay gradient is taken chunk by chunk, not as the reverse cumsum over the whole sequence of
# q.dq - k.dk (exact in real arithmetic, but that telescoping sum cancels large terms, and with bf16
# chunk states it came out ~3.5x less accurate than a bf16 reference in a float32 emulation; this
# form: 0.26x). For token r of chunk c (g, G local cumulative decays, h_c entering state, dh_c the
# gradient of the state at the end of the chunk, E[t, s] = scale exp(g_t - g_s) (dO_t.v_s)(q_t.k_s)
# for s <= t):
#   a_t = scale exp(g_t) q_t.(dO_t h_c^T)      (through the inter-chunk output)
#   b_t = exp(G - g_t) k_t.(v_t dh_c^T)         (through the state update)
#   d decay_r = sum_{t >= r in c} (a_t - b_t + sum_s E[t, s] - sum_u E[u, t])
#               + exp(G) <dh_c, h_c> + sum_{t in c} b_t
# Every term is linear in the key dimension, so each BK block contributes its part.
@triton.jit
def chunk_bwd_dqk_kernel(
    q, k, v, g, h, do, dh, dq, dk, dg, scale, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_k = tl.program_id(0)
    i_t = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    TP = NT * BT
    offs_d = i_k * BK + tl.arange(0, BK)
    offs_i = tl.arange(0, BT)
    t = i_t * BT + offs_i
    m_t = t < T
    b_ds = tl.zeros([BT, BT], dtype=tl.float32)  # [t, s]
    b_dq = tl.zeros([BT, BK], dtype=tl.float32)
    b_dk = tl.zeros([BT, BK], dtype=tl.float32)
    p_hc = h + (i_bh * NT + i_t) * D * D
    p_dhc = dh + (i_bh * NT + i_t) * D * D
    b_hdh = 0.0  # <h_c, dh_c> over this key block
    for i_v in range(D // BV):
        offs_v = i_v * BV + tl.arange(0, BV)
        b_v = tl.load(v + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        b_do = tl.load(do + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        b_h = tl.load(p_hc + offs_v[:, None] + offs_d[None, :] * D)  # [BV, BK] = h^T block
        b_dh = tl.load(p_dhc + offs_v[:, None] + offs_d[None, :] * D)  # [BV, BK] = dh^T block
        b_ds += tl.dot(b_do, tl.trans(b_v), input_precision=PRECISION)
        b_dq += tl.dot(b_do, b_h, input_precision=PRECISION)
        b_dk += tl.dot(b_v, b_dh, input_precision=PRECISION)
        if USE_G:
            b_hdh += tl.sum(tl.sum(b_h.to(tl.float32) * b_dh.to(tl.float32), axis=1), axis=0)
    causal = offs_i[:, None] >= offs_i[None, :]  # [t, s]: s <= t
    b_q = tl.load(q + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, BK]
    b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, BK]
    if USE_G:
        b_g, g_last = _chunk_g(g, i_bh, TP, i_t, t, BT)
        b_ds = b_ds * tl.exp(tl.where(causal, b_g[:, None] - b_g[None, :], float("-inf"))) * scale
        b_dq = b_dq * (scale * tl.exp(b_g))[:, None]
        b_dk = b_dk * tl.exp(g_last - b_g)[:, None]
        # decay gradient (see the comment above), float32 throughout
        b_a = tl.sum(b_q.to(tl.float32) * b_dq, axis=1)
        b_b = tl.sum(b_k.to(tl.float32) * b_dk, axis=1)
        b_E = b_ds * tl.dot(b_q, tl.trans(b_k), input_precision=PRECISION)  # [t, s]
        b_x = b_a - b_b + tl.sum(b_E, axis=1) - tl.sum(b_E, axis=0)
        b_rev = tl.sum(tl.where(offs_i[None, :] >= offs_i[:, None], b_x[None, :], 0.0), axis=1)  # sum_{t >= r}
        b_c = tl.exp(g_last) * b_hdh + tl.sum(b_b, axis=0)
        tl.store(dg + (i_k * tl.num_programs(2) + i_bh) * TP + t, b_rev + b_c)
    else:
        b_ds = tl.where(causal, b_ds, 0.0) * scale
        b_dq = b_dq * scale
    b_ds = b_ds.to(b_k.dtype)
    b_dq += tl.dot(b_ds, b_k, input_precision=PRECISION)
    b_dk += tl.dot(tl.trans(b_ds), b_q, input_precision=PRECISION)
    tl.store(dq + base + t[:, None] * row + offs_d[None, :], b_dq.to(dq.dtype.element_ty), mask=m_t[:, None])
    tl.store(dk + base + t[:, None] * row + offs_d[None, :], b_dk.to(dk.dtype.element_ty), mask=m_t[:, None])


# --------------------------------------------------------------------------------------------
# Backward, pass 2b: dv, fully parallel over chunks.
# Program (i_v, i_t, i_bh): dv[chunk, BV block] = (scale * mask(k q^T) * D^T) dO + exp(G - g) k dh_c.
# Grid (D / BV, NT, B * H); q, k loaded whole.
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_bwd_dv_kernel(
    q, k, g, do, dh, dv, scale, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_t = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    TP = NT * BT
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_i = tl.arange(0, BT)
    t = i_t * BT + offs_i
    m_t = t < T
    b_q = tl.load(q + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
    b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
    b_do = tl.load(do + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
    b_dh = tl.load(dh + (i_bh * NT + i_t) * D * D + offs_d[:, None] * D + offs_v[None, :])  # [D, BV]
    b_dv = tl.dot(b_k, b_dh, input_precision=PRECISION)
    b_pt = tl.dot(b_k, tl.trans(b_q), input_precision=PRECISION)  # [BT(s), BT(t)] = k_s . q_t
    causal_t = offs_i[:, None] <= offs_i[None, :]  # [s, t]: s <= t
    if USE_G:
        b_g = tl.load(g + i_bh * TP + t)
        g_last = tl.load(g + i_bh * TP + i_t * BT + BT - 1)
        b_dv = b_dv * tl.exp(g_last - b_g)[:, None]
        b_pt = b_pt * tl.exp(tl.where(causal_t, b_g[None, :] - b_g[:, None], float("-inf")))
    else:
        b_pt = tl.where(causal_t, b_pt, 0.0)
    b_dv += tl.dot((b_pt * scale).to(b_do.dtype), b_do, input_precision=PRECISION)
    tl.store(dv + base + t[:, None] * row + offs_v[None, :], b_dv.to(dv.dtype.element_ty), mask=m_t[:, None])


# --------------------------------------------------------------------------------------------
# Fused forward (the "walker"): program (i_v, i_s, i_bh) walks chunks [i_s*L, min((i_s+1)*L, NT)) of
# sequence i_bh in order with the [D, BV] block of the state in float32 registers; per chunk it
# writes the outputs of its value block, o = scale * (exp(g) * (q h_c) + (mask(q k^T) * D) v),
# optionally stores h_c for the backward, and advances the state. No h round trip through memory.
# Grid (D / BV, NS, B * H). One segment (NS = 1, L = NT, USE_H0 off) is the plain fused forward,
# used when B*H*D/BV programs fill the GPU. With NS > 1 segments (small B*H, long sequences) the
# walk of segment s starts from h0[i_bh, s] (float32 (B*H, NS, D, D)), the state entering the
# segment, computed by chunk_seg_state_kernel + chunk_seg_scan_kernel; this cuts the sequential
# walk from NT to L chunks and multiplies the programs by NS. The final state is stored by the
# last segment's programs.
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_fused_fwd_kernel(
    q, k, v, g, o, h, ht, h0, scale, T, NT, L,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, USE_H0: tl.constexpr, STORE_H: tl.constexpr, STORE_FINAL: tl.constexpr,
    PRECISION: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_s = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    TP = NT * BT
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_i = tl.arange(0, BT)
    causal = offs_i[:, None] >= offs_i[None, :]
    if USE_H0:
        p_h0 = h0 + (i_bh * tl.num_programs(1) + i_s) * D * D + offs_d[:, None] * D + offs_v[None, :]
        b_S = tl.load(p_h0)
    else:
        b_S = tl.zeros([D, BV], dtype=tl.float32)
    c0 = i_s * L
    for i_t in range(c0, tl.minimum(c0 + L, NT)):
        t = i_t * BT + offs_i
        m_t = t < T
        b_q = tl.load(q + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
        b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
        b_v = tl.load(v + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        b_Sc = b_S.to(b_v.dtype)
        if STORE_H:
            tl.store(h + (i_bh * NT + i_t) * D * D + offs_d[:, None] * D + offs_v[None, :], b_Sc.to(h.dtype.element_ty))
        b_o = tl.dot(b_q, b_Sc, input_precision=PRECISION)
        b_s = tl.dot(b_q, tl.trans(b_k), input_precision=PRECISION)
        if USE_G:
            b_g = tl.load(g + i_bh * TP + t)
            g_last = tl.load(g + i_bh * TP + i_t * BT + BT - 1)
            b_o = b_o * tl.exp(b_g)[:, None]
            b_s = b_s * tl.exp(tl.where(causal, b_g[:, None] - b_g[None, :], float("-inf")))
            b_vd = (b_v * tl.exp(g_last - b_g)[:, None]).to(b_v.dtype)  # decay folded into the smaller operand
            b_S = b_S * tl.exp(g_last)
        else:
            b_s = tl.where(causal, b_s, 0.0)
            b_vd = b_v
        b_o += tl.dot(b_s.to(b_v.dtype), b_v, input_precision=PRECISION)
        tl.store(o + base + t[:, None] * row + offs_v[None, :], (b_o * scale).to(o.dtype.element_ty), mask=m_t[:, None])
        b_S += tl.dot(tl.trans(b_k), b_vd, input_precision=PRECISION)
    if STORE_FINAL and i_s == tl.num_programs(1) - 1:
        tl.store(ht + i_bh * D * D + offs_d[:, None] * D + offs_v[None, :], b_S)


# --------------------------------------------------------------------------------------------
# Segmented forward, pass 1: the state each segment adds, from a zero state.
# Program (i_v, i_s, i_bh), i_s < NS - 1, walks chunks [i_s*L, (i_s+1)*L) of sequence i_bh with the
# [D, BV] block of S in float32 registers: S <- exp(G_c) S + k^T (exp(G_c - g) * v), the chunk
# update of the header, and stores S into hs[i_bh, i_s + 1] (float32 (B*H, NS, D, D)); with a decay
# the program of value block 0 also stores the segment's total log-decay sum_c G_c into
# gs[i_bh, i_s] (float32 (B*H, NS)). The last segment's own state is never needed (the walker of
# the last segment ends with the final state). Grid (D / BV, NS - 1, B * H). Reads k and v once
# (k once per value block), writes B*H*NS*D*D floats.
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_seg_state_kernel(
    k, v, g, hs, gs, T, NT, L, NS,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_s = tl.program_id(1)
    i_bh = tl.program_id(2).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    TP = NT * BT
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_i = tl.arange(0, BT)
    b_S = tl.zeros([D, BV], dtype=tl.float32)
    b_G = tl.zeros([1], dtype=tl.float32)
    c0 = i_s * L
    for i_t in range(c0, tl.minimum(c0 + L, NT)):
        t = i_t * BT + offs_i
        m_t = t < T
        b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
        b_v = tl.load(v + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        if USE_G:
            b_g, g_last = _chunk_g(g, i_bh, TP, i_t, t, BT)
            b_v = (b_v * tl.exp(g_last - b_g)[:, None]).to(b_k.dtype)
            b_S = b_S * tl.exp(g_last)
            b_G += g_last
        b_S += tl.dot(tl.trans(b_k), b_v, input_precision=PRECISION)
    tl.store(_state_block(hs, i_bh * NS + i_s + 1, offs_d, offs_v, D), b_S)
    if USE_G and i_v == 0:
        tl.store(gs + i_bh * NS + i_s + tl.arange(0, 1), b_G)


# --------------------------------------------------------------------------------------------
# Segmented forward, pass 2: in-place prefix over the segments. hs[i_bh, s] holds, for s >= 1, the
# state added by segment s - 1 (pass 1); it becomes the state entering segment s:
#   hs[0] = 0,   hs[s] = exp(gs[s - 1]) hs[s - 1] + hs[s].
# Program (i_b, i_bh) owns BLOCK consecutive entries of the D*D state. Grid (D*D / BLOCK, B * H).
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_seg_scan_kernel(hs, gs, NS, D: tl.constexpr, BLOCK: tl.constexpr, USE_G: tl.constexpr):
    i_b = tl.program_id(0)
    i_bh = tl.program_id(1).to(tl.int64)
    p = hs + i_bh * NS * D * D + i_b * BLOCK + tl.arange(0, BLOCK)
    b = tl.zeros([BLOCK], dtype=tl.float32)
    tl.store(p, b)
    for i_s in range(1, NS):
        x = tl.load(p + i_s * D * D)
        if USE_G:
            b = b * tl.exp(tl.load(gs + i_bh * NS + i_s - 1))
        b += x
        tl.store(p + i_s * D * D, b)


# --------------------------------------------------------------------------------------------
# Fused backward pass 1 (replaces chunk_bwd_dh + chunk_bwd_dv): program (i_v, i_bh) walks the
# chunks backwards with the [D, BV] block of dh in float32 registers; per chunk it stores dh_c (for
# the dq/dk pass), writes dv = (scale * mask(k q^T) * D^T) dO + exp(G - g) k dh_c, and advances
# dh <- exp(G) dh + scale * (q exp(g))^T dO. Grid (D / BV, B * H).
# --------------------------------------------------------------------------------------------
@triton.jit
def chunk_fused_bwd_dhv_kernel(
    q, k, g, do, dh, dv, scale, T, NT,
    H: tl.constexpr, D: tl.constexpr, BT: tl.constexpr, BV: tl.constexpr,
    USE_G: tl.constexpr, PRECISION: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1).to(tl.int64)
    base = _seq_base(i_bh, T, H, D)
    row = H * D
    TP = NT * BT
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    offs_i = tl.arange(0, BT)
    causal_t = offs_i[:, None] <= offs_i[None, :]  # [s, t]: s <= t
    b_dh = tl.zeros([D, BV], dtype=tl.float32)
    for i in range(NT):
        i_t = NT - 1 - i
        t = i_t * BT + offs_i
        m_t = t < T
        b_q = tl.load(q + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
        b_k = tl.load(k + base + t[:, None] * row + offs_d[None, :], mask=m_t[:, None], other=0.0)  # [BT, D]
        b_do = tl.load(do + base + t[:, None] * row + offs_v[None, :], mask=m_t[:, None], other=0.0)  # [BT, BV]
        b_dhc = b_dh.to(b_do.dtype)
        tl.store(dh + (i_bh * NT + i_t) * D * D + offs_d[:, None] * D + offs_v[None, :], b_dhc.to(dh.dtype.element_ty))
        b_dv = tl.dot(b_k, b_dhc, input_precision=PRECISION)
        b_pt = tl.dot(b_k, tl.trans(b_q), input_precision=PRECISION)  # [BT(s), BT(t)]
        if USE_G:
            b_g = tl.load(g + i_bh * TP + t)
            g_last = tl.load(g + i_bh * TP + i_t * BT + BT - 1)
            b_dv = b_dv * tl.exp(g_last - b_g)[:, None]
            b_pt = b_pt * tl.exp(tl.where(causal_t, b_g[None, :] - b_g[:, None], float("-inf")))
            b_dog = (b_do * tl.exp(b_g)[:, None]).to(b_do.dtype)  # decay folded into the smaller operand
            b_dh = b_dh * tl.exp(g_last)
        else:
            b_pt = tl.where(causal_t, b_pt, 0.0)
            b_dog = b_do
        b_dv += tl.dot((b_pt * scale).to(b_do.dtype), b_do, input_precision=PRECISION)
        tl.store(dv + base + t[:, None] * row + offs_v[None, :], b_dv.to(dv.dtype.element_ty), mask=m_t[:, None])
        b_dh += scale * tl.dot(tl.trans(b_q), b_dog, input_precision=PRECISION)


# --------------------------------------------------------------------------------------------
# Decode: one recurrent step, in place on the float32 state.
# Program (i_bh, i_v) owns columns [i_v*BV, (i_v+1)*BV) of S (D x D) of sequence i_bh:
#   S <- exp(decay) S + k v^T;  o = scale * q S.   Grid (B * H, D / BV). Memory-bound: S is read
# and written once. q_t, k_t, v_t, o_t are (B, H, D) contiguous, decay_t (B, H).
# --------------------------------------------------------------------------------------------
@triton.jit
def recurrent_step_kernel(
    q, k, v, decay, S, o, scale,
    D: tl.constexpr, BV: tl.constexpr, USE_G: tl.constexpr,
):
    i_bh = tl.program_id(0).to(tl.int64)
    i_v = tl.program_id(1)
    offs_d = tl.arange(0, D)
    offs_v = i_v * BV + tl.arange(0, BV)
    p_S = _state_block(S, i_bh, offs_d, offs_v, D)
    b_S = tl.load(p_S)
    b_q = tl.load(q + i_bh * D + offs_d).to(tl.float32)
    b_k = tl.load(k + i_bh * D + offs_d).to(tl.float32)
    b_v = tl.load(v + i_bh * D + offs_v).to(tl.float32)
    if USE_G:
        b_S = b_S * tl.exp(tl.load(decay + i_bh).to(tl.float32))
    b_S += b_k[:, None] * b_v[None, :]
    tl.store(p_S, b_S)
    b_o = tl.sum(b_q[:, None] * b_S, axis=0) * scale
    tl.store(o + i_bh * D + offs_v, b_o.to(o.dtype.element_ty))
