"""linear/triton: chunked linear attention (optional scalar decay) in Triton, forward and backward,
plus a one-launch recurrent decode step. Kernels and their math: impls/linear/triton_kernels.py.

Two forms, picked from the shape (LinearTritonConfig.plan):
- two-pass (few long sequences): forward = chunk states (sequential over chunks, parallel over state
  blocks), then outputs (parallel over chunks); backward = state gradients, dv, dq/dk.
- fused (many sequences): forward = one walker per (sequence, value block) that keeps the state in
  registers and writes outputs (and the chunk states for the backward); backward = one reverse
  walker writing the state gradients and dv, then the parallel dq/dk pass.
With ``seg`` (LinearTritonConfig; on by default, measured on the H200: impls/linear/NOTES.md, "Prefill
at small B*H"; measured by scripts/gpu_linear_prefill.py, removed after ba51d7e), the forward without gradients (and prefill) uses the walker: when B*H is too small
for one walker per (sequence, value block) to fill the GPU, the sequence is cut into NS segments
(LinearTritonConfig.segments): the state each segment adds (pass 1, parallel), an in-place prefix
over the segments (pass 2), then one walker per (segment, sequence, value block) from its segment's
entering state (pass 3). Reads k, v twice and q once and writes o; no chunk states in memory.
The decay gradient is computed chunk by chunk in the dq/dk pass (see its kernel). The forward's chunk
states are kept for the backward (B*H*T/64 * D*D elements in the input dtype: 1 GiB at 131072
tokens, H=16, D=128 in bf16) instead of being recomputed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ratbench.impls.linear.base import LinearAttention, LinearState
from ratbench.impls.peer_utils import sm_count

CHUNK = 64


@dataclass(frozen=True)
class LinearTritonConfig:
    """Launch parameters. None = chosen from the shape (see ``plan``)."""

    chunk: int = CHUNK
    #: fused single-walker kernels (forward: states + outputs; backward: state gradients + dv) instead
    #: of the two-pass form. They launch only D/fused_bv programs per sequence, so None picks them
    #: when B*H*D/fused_bv >= fused_min_waves * #SMs.
    fused: bool | None = None
    fused_bv: int = 64
    fused_warps: int = 8
    fused_min_waves: int = 4
    #: state block of the sequential passes of the two-pass form (chunk states, state gradients)
    state_bk: int | None = None
    state_bv: int | None = None
    state_warps: int = 4
    state_stages: int = 2
    #: value-dim block of the output pass and of the dv pass (two-pass form)
    o_bv: int | None = None
    o_warps: int = 4
    #: key-dim block (one program each) and value-dim block (looped over) of the dq/dk pass
    dqk_bk: int = 64
    dqk_bv: int = 64
    dqk_warps: int = 4
    stages: int = 2
    #: forward without gradients and prefill: the (segmented) walker, whatever ``fused`` says
    #: (False: the form ``plan`` picks, the behaviour before segments existed). On by default since the
    #: H200 run of reports/linear-triton/prefill-seg-2026-11-29.*: B=1, T=131072 prefill 2.83 -> 1.34 ms
    #: (decay: 3.16 -> 2.06; fla 1.71 / 2.09), every check passed
    seg: bool = True
    #: the training forward (chunk states kept for the backward) through the segmented walker too
    #: instead of the two-pass form when B*H is small (the backward is the same either way)
    seg_train: bool = False
    #: chunks per segment; None = from the shape (``segments``)
    seg_chunks: int | None = None
    #: target programs of the segmented walker, in multiples of #SMs; and the shortest segment
    seg_waves: int = 8
    seg_min_chunks: int = 16
    #: pipeline stages of the segmented walker (several segments: small B*H) in the forward without gradients
    #: and prefill when ``seg`` (the training forward, the one-segment walker of large B*H, whose stages
    #: were measured, and everything with seg=False keep ``stages``): 3 prefetches two chunks ahead; the walker runs one program per SM
    #: (registers), so the extra 40 KB of shared memory per stage costs no occupancy
    seg_stages: int = 3
    #: value block, warps and stages of the segment-state pass; elements per program of the prefix
    segstate_bv: int = 64
    segstate_warps: int = 4
    segstate_stages: int = 3
    scan_block: int = 1024

    def plan(self, BH: int, D: int, n_sm: int) -> Plan:
        """Block sizes for B*H sequences of head dim D on n_sm multiprocessors. The sequential passes
        have only D/BK * D/BV * B*H programs: small state blocks when B*H is small (long sequences,
        batch 1) so that every multiprocessor gets work."""
        bk, bv = self.state_bk, self.state_bv
        if bk is None or bv is None:
            for cand in ((min(64, D), min(64, D)), (min(64, D), 32), (32, 32)):
                bk, bv = cand
                if (D // bk) * (D // bv) * BH >= 2 * n_sm:
                    break
        bk, bv = min(bk, D), min(bv, D)
        fbv = min(self.fused_bv, D)
        fused = self.fused
        if fused is None:
            fused = BH * (D // fbv) >= self.fused_min_waves * n_sm
        return Plan(fused, fbv, bk, bv, min(self.o_bv or 64, D), min(self.dqk_bk, D), min(self.dqk_bv, D))

    def segments(self, BH: int, D: int, NT: int, n_sm: int, fused: bool) -> tuple[int, int]:
        """(NS, L): the walker's segments of L chunks each (the last may be shorter) for B*H
        sequences of NT chunks. One segment when ``fused`` (B*H*D/fused_bv programs fill the GPU);
        otherwise enough segments for seg_waves * n_sm programs, none shorter than seg_min_chunks.
        ``seg_chunks`` overrides the rule (the interpreter tests force many short segments)."""
        if self.seg_chunks is not None:
            L = self.seg_chunks
        elif fused:
            L = NT
        else:
            per_set = BH * (D // min(self.fused_bv, D))
            ns = triton_cdiv(self.seg_waves * n_sm, per_set)
            L = max(self.seg_min_chunks, triton_cdiv(NT, ns))
        L = max(1, min(L, NT), triton_cdiv(NT, 65535))  # NS is a grid dimension
        return triton_cdiv(NT, L), L


@dataclass(frozen=True)
class Plan:
    fused: bool
    fused_bv: int
    state_bk: int
    state_bv: int
    o_bv: int
    dqk_bk: int
    dqk_bv: int


DEFAULT_CONFIG = LinearTritonConfig()


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _precision(dtype: torch.dtype) -> str:
    # float32 inputs: three tf32 products per product (tf32x3, ~float32 accuracy on the tensor cores).
    # "ieee" would be exact float32 but runs on FMAs and spills 10-24 KB per thread on sm_90;
    # plain tf32 (Triton's default) has ~3e-4 relative error. Other dtypes ignore the setting.
    return "tf32x3" if dtype == torch.float32 else "tf32"


def _n_sm(device: torch.device) -> int:
    return sm_count(device) or 1


def _launch_kw(warps: int, stages: int) -> dict:
    return {} if _interpreting() else {"num_warps": warps, "num_stages": stages}


#: log-decays are clamped here before the within-chunk cumsum: exp(-100) = 3.7e-44 is already a
#: full reset in float32, and the clamp keeps -inf (and -1e4) from turning differences of cumulative
#: sums into NaN or from swamping the small decays that follow within the chunk.
DECAY_MIN = -100.0


def _chunk_cumsum(decay: torch.Tensor, B: int, T: int, H: int, NT: int, BT: int) -> torch.Tensor:
    """(B, T, H) log-decays -> (B*H, NT*BT) float32 cumulative sums restarting at every chunk; the
    padded tail holds decay 0."""
    g = decay.to(torch.float32).clamp_min(DECAY_MIN).permute(0, 2, 1)  # (B, H, T)
    if NT * BT != T:
        g = torch.nn.functional.pad(g, (0, NT * BT - T))
    return g.reshape(B, H, NT, BT).cumsum(-1).reshape(B * H, NT * BT).contiguous()


def chunk_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    scale: float,
    *,
    store_h: bool = True,
    final_state: torch.Tensor | None = None,
    cfg: LinearTritonConfig = DEFAULT_CONFIG,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """o (B, T, H, D) and, if store_h, the chunk states h (B*H, NT, D, D) for the backward. q, k, v
    contiguous; g from ``_chunk_cumsum`` or None; final_state, if given, a contiguous float32
    (B, H, D, D) to fill with the state after the last token. The form: the walker if ``plan``
    picks it (fused), or without stored states if cfg.seg, or with them if cfg.seg_train;
    else the two-pass form."""
    from ratbench.impls.linear import triton_kernels as K

    B, T, H, D = q.shape
    BT = cfg.chunk
    NT = triton_cdiv(T, BT)
    p = cfg.plan(B * H, D, _n_sm(q.device))
    prec = _precision(q.dtype)
    use_g = g is not None
    gg = g if use_g else q  # placeholder pointer, never read
    o = torch.empty_like(q)
    if p.fused or (cfg.seg_train if store_h else cfg.seg):
        NS, L = cfg.segments(B * H, D, NT, _n_sm(q.device), p.fused)
        hs = None
        if NS > 1:  # the state entering each segment: pass 1 (parallel over segments) + prefix
            hs = torch.empty(B * H, NS, D, D, device=q.device, dtype=torch.float32)
            gs = torch.empty(B * H, NS, device=q.device, dtype=torch.float32) if use_g else hs
            sbv = min(cfg.segstate_bv, D)
            K.chunk_seg_state_kernel[(D // sbv, NS - 1, B * H)](
                k, v, gg, hs, gs, T, NT, L, NS,
                H=H, D=D, BT=BT, BV=sbv, USE_G=use_g, PRECISION=prec,
                **_launch_kw(cfg.segstate_warps, cfg.segstate_stages),
            )
            blk = min(cfg.scan_block, D * D)
            K.chunk_seg_scan_kernel[(D * D // blk, B * H)](hs, gs, NS, D=D, BLOCK=blk, USE_G=use_g, **_launch_kw(4, 1))
        h = torch.empty(B * H, NT, D, D, device=q.device, dtype=q.dtype) if store_h else None
        K.chunk_fused_fwd_kernel[(D // p.fused_bv, NS, B * H)](
            q, k, v, gg, o, h if store_h else o, final_state if final_state is not None else o,
            hs if hs is not None else o, scale, T, NT, L,
            H=H, D=D, BT=BT, BV=p.fused_bv, USE_G=use_g, USE_H0=hs is not None, STORE_H=store_h,
            STORE_FINAL=final_state is not None, PRECISION=prec,
            **_launch_kw(cfg.fused_warps, cfg.seg_stages if cfg.seg and not store_h and not p.fused else cfg.stages),
        )
        return o, h
    h = torch.empty(B * H, NT, D, D, device=q.device, dtype=q.dtype)
    K.chunk_fwd_h_kernel[(D // p.state_bk, D // p.state_bv, B * H)](
        k, v, gg, h, final_state if final_state is not None else h, T, NT,
        H=H, D=D, BT=BT, BK=p.state_bk, BV=p.state_bv, USE_G=use_g, STORE_H=True,
        STORE_FINAL=final_state is not None, PRECISION=prec, **_launch_kw(cfg.state_warps, cfg.state_stages),
    )
    K.chunk_fwd_o_kernel[(D // p.o_bv, NT, B * H)](
        q, k, v, gg, h, o, scale, T, NT,
        H=H, D=D, BT=BT, BV=p.o_bv, USE_G=use_g, PRECISION=prec, **_launch_kw(cfg.o_warps, cfg.stages),
    )
    return o, (h if store_h else None)


def chunk_backward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor | None,
    h: torch.Tensor,
    do: torch.Tensor,
    scale: float,
    *,
    cfg: LinearTritonConfig = DEFAULT_CONFIG,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """dq, dk, dv and, with a decay, its gradient as (B*H, NT*BT) float32 (padded tail zero)."""
    from ratbench.impls.linear import triton_kernels as K

    B, T, H, D = q.shape
    BT = cfg.chunk
    NT = triton_cdiv(T, BT)
    p = cfg.plan(B * H, D, _n_sm(q.device))
    prec = _precision(q.dtype)
    use_g = g is not None
    gg = g if use_g else q
    dh = torch.empty_like(h)
    dv = torch.empty_like(v)
    if p.fused:
        K.chunk_fused_bwd_dhv_kernel[(D // p.fused_bv, B * H)](
            q, k, gg, do, dh, dv, scale, T, NT,
            H=H, D=D, BT=BT, BV=p.fused_bv, USE_G=use_g, PRECISION=prec, **_launch_kw(cfg.fused_warps, cfg.stages),
        )
    else:
        K.chunk_bwd_dh_kernel[(D // p.state_bk, D // p.state_bv, B * H)](
            q, do, gg, dh, scale, T, NT,
            H=H, D=D, BT=BT, BK=p.state_bk, BV=p.state_bv, USE_G=use_g, PRECISION=prec,
            **_launch_kw(cfg.state_warps, cfg.state_stages),
        )
        K.chunk_bwd_dv_kernel[(D // p.o_bv, NT, B * H)](
            q, k, gg, do, dh, dv, scale, T, NT,
            H=H, D=D, BT=BT, BV=p.o_bv, USE_G=use_g, PRECISION=prec, **_launch_kw(cfg.o_warps, cfg.stages),
        )
    dq = torch.empty_like(q)
    dk = torch.empty_like(k)
    dg = torch.empty(D // p.dqk_bk, B * H, NT * BT, device=q.device, dtype=torch.float32) if use_g else None
    K.chunk_bwd_dqk_kernel[(D // p.dqk_bk, NT, B * H)](
        q, k, v, gg, h, do, dh, dq, dk, dg if use_g else dq, scale, T, NT,
        H=H, D=D, BT=BT, BK=p.dqk_bk, BV=p.dqk_bv, USE_G=use_g, PRECISION=prec,
        **_launch_kw(cfg.dqk_warps, cfg.stages),
    )
    if dg is not None:
        dg = dg.sum(0) if dg.shape[0] > 1 else dg[0]
    return dq, dk, dv, dg


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _decay_grad(dg: torch.Tensor, B: int, T: int, H: int, dtype: torch.dtype) -> torch.Tensor:
    """(B*H, TP) float32 decay gradient from the dq/dk pass -> (B, T, H)."""
    return dg[:, :T].reshape(B, H, T).permute(0, 2, 1).to(dtype)


class _ChunkLinearAttn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, decay, scale: float, cfg: LinearTritonConfig):  # type: ignore[override]
        B, T, H, _D = q.shape
        NT = triton_cdiv(T, cfg.chunk)
        g = _chunk_cumsum(decay, B, T, H, NT, cfg.chunk) if decay is not None else None
        o, h = chunk_forward(q, k, v, g, scale, cfg=cfg)
        ctx.save_for_backward(q, k, v, g, h)
        ctx.scale = scale
        ctx.cfg = cfg
        ctx.decay_dtype = decay.dtype if decay is not None else None
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, g, h = ctx.saved_tensors
        dq, dk, dv, dg = chunk_backward(q, k, v, g, h, do.contiguous(), ctx.scale, cfg=ctx.cfg)
        ddecay = None
        if dg is not None and ctx.needs_input_grad[3]:
            B, T, H, _ = q.shape
            ddecay = _decay_grad(dg, B, T, H, ctx.decay_dtype)
        return dq, dk, dv, ddecay, None, None


class LinearTriton(LinearAttention):
    description = "Triton chunked linear attention (chunk 64, fwd+bwd, optional decay) + recurrent decode step"
    triton = True
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    head_dims = (64, 128)
    profile_stages = (("forward", r"chunk_(fwd|fused_fwd|seg)\w*_kernel"), ("backward", r"chunk_(bwd|fused_bwd)\w*_kernel"),
                      ("decode step", r"recurrent_step_kernel"))

    def __init__(self, config: LinearTritonConfig = DEFAULT_CONFIG) -> None:
        self.config = config

    def _cumsum(self, decay: torch.Tensor | None, q: torch.Tensor) -> torch.Tensor | None:
        if decay is None:
            return None
        B, T, H, _ = q.shape
        return _chunk_cumsum(decay, B, T, H, triton_cdiv(T, self.config.chunk), self.config.chunk)

    @staticmethod
    def _check_grid(q: torch.Tensor) -> None:
        B, _, H, _ = q.shape
        if B * H > 65535:  # B*H is a y/z grid dimension of the chunked kernels
            raise ValueError(f"linear/triton supports B*H <= 65535 sequences per call, got B*H = {B * H}")

    def _forward(self, q, k, v, *, decay, scale: float) -> torch.Tensor:
        self._check_grid(q)
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        if decay is not None:
            decay = decay.contiguous()
        if torch.is_grad_enabled() and any(
            x is not None and x.requires_grad for x in (q, k, v, decay)
        ):
            return _ChunkLinearAttn.apply(q, k, v, decay, scale, self.config)
        return chunk_forward(q, k, v, self._cumsum(decay, q), scale, store_h=False, cfg=self.config)[0]

    def _prefill(self, state: LinearState, q, k, v, decay) -> torch.Tensor:
        self._check_state(state, q.shape[0], q.shape[2], q.shape[3], q.device)
        self._check_grid(q)
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        with torch.no_grad():
            o, _ = chunk_forward(q, k, v, self._cumsum(decay, q), state.scale, store_h=False, final_state=state.S,
                                 cfg=self.config)
        state.pos = q.shape[1]
        return o

    def _step(self, state: LinearState, q, k, v, decay) -> torch.Tensor:
        from ratbench.impls.linear import triton_kernels as K

        self.check_runnable(q)
        B, H, D = q.shape
        self._check_state(state, B, H, D, q.device)
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        o = torch.empty_like(q)
        BV = min(32, D)
        K.recurrent_step_kernel[(B * H, D // BV)](
            q, k, v, decay.contiguous() if decay is not None else q, state.S, o, state.scale,
            D=D, BV=BV, USE_G=decay is not None, **_launch_kw(4, 1),
        )
        state.pos += 1
        return o

    @staticmethod
    def _check_state(state: LinearState, B: int, H: int, D: int, device: torch.device) -> None:
        S = state.S
        if S.shape != (B, H, D, D):
            raise ValueError(f"state.S has shape {tuple(S.shape)}, expected {(B, H, D, D)} for these inputs")
        if S.dtype != torch.float32:
            raise TypeError(f"linear/triton keeps its state in float32, got state.S of dtype {S.dtype}")
        if S.device != device:
            raise ValueError(f"state.S is on {S.device} but the inputs are on {device}")
        if not S.is_contiguous():
            raise ValueError("state.S must be contiguous")
