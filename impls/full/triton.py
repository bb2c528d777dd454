"""full/triton: FlashAttention-2-style causal (or non-causal) attention in Triton, forward, backward
and a split-KV decode step; the sliding-window variant (impls/swa/triton.py) runs the same kernels
with a window (key blocks outside it are skipped). The inner loops are the attention core shared with
rat/triton (impls/attention_core.py); the kernels are impls/full/triton_kernels.py.

Forward = one launch (o and the base-2 lse). Backward = three launches: Delta = rowsum(dO o); dK/dV
per key block; dq per query tile (4 + 3 products: dq recomputes S and dP rather than using atomics,
like rat/triton's measured default); config fused_dq: dq by float32 atomics in the dK/dV kernel
(5 products, FA2 style) and a small finishing pass. Decode step = one launch (cache write + split-KV softmax +
in-kernel merge), CUDA-graph capturable. Measurements and the floor: impls/full/NOTES.md.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

import torch

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.peer_utils import sm_count
from ratbench.impls.swa.base import RingCache


@dataclass(frozen=True)
class FlashConfig:
    """Tiles and launch parameters (GPU). Under TRITON_INTERPRET=1: INTERPRET_CONFIG (16-row tiles).
    The bf16 defaults are rat/triton's measured tiles for the same inner loops (NOTES.md)."""

    fwd_bm: int = 128
    fwd_bn: int = 128
    fwd_warps: int = 8
    fwd_stages: int = 3
    dkv_bn: int = 128
    dkv_bm: int = 64
    dkv_warps: int = 8
    dkv_stages: int = 4
    dkv_reverse: bool = True
    #: dq accumulated by the dK/dV kernel (float32 atomics, 5 products instead of 7) instead of
    #: bwd_dq_kernel; dq is then not bitwise deterministic run to run. Not measured yet.
    fused_dq: bool = False
    dq_bm: int = 128
    dq_bn: int = 64
    dq_warps: int = 8
    dq_stages: int = 3
    pre_bm: int = 64
    step_bn: int = 128  # rat/triton's measured step tile
    step_warps: int = 4
    #: slot splits of the decode step (None: enough programs for two per multiprocessor)
    step_splits: int | None = None


DEFAULT_CONFIG = FlashConfig()
#: float32 operands (tf32x3: each operand split in two, three products) take 2-3x the registers and
#: shared memory: the smallest-spill tiles of a local sm_90 sweep (NOTES.md); a checking path, not a fast one
FP32_CONFIG = dataclasses.replace(DEFAULT_CONFIG, fwd_bm=64, fwd_bn=32, fwd_warps=4, fwd_stages=1, dkv_bn=32,
                                  dkv_bm=32, dkv_warps=4, dkv_stages=1, dq_bm=64, dq_bn=32, dq_warps=4, dq_stages=1)
INTERPRET_CONFIG = FlashConfig(fwd_bm=16, fwd_bn=16, dkv_bn=16, dkv_bm=16, dq_bm=16, dq_bn=16, pre_bm=16,
                               step_bn=16)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _cfg(cfg: FlashConfig | None, dtype: torch.dtype, window: int | None) -> FlashConfig:
    if cfg is not None:
        return cfg
    if _interpreting():
        return INTERPRET_CONFIG
    if dtype == torch.float32:
        return FP32_CONFIG
    return DEFAULT_CONFIG


def _kw(warps: int, stages: int) -> dict:
    return {} if _interpreting() else {"num_warps": warps, "num_stages": stages}


def _prec(dtype: torch.dtype) -> str:
    # float32: three-pass tf32 on the tensor cores (about float32 accuracy); "ieee" spills on sm_90
    return "tf32x3" if dtype == torch.float32 else "tf32"


def _prepare(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q, k, v with one stride set (last dim contiguous); checks what the kernels index in 32 bits."""
    if not (q.stride() == k.stride() == v.stride() and q.stride(-1) == 1):
        q, k, v = (x.contiguous() for x in (q, k, v))
    B, T, H, D = q.shape
    if B * H > 65535:  # B*H is the second launch-grid axis
        raise ValueError(f"full/swa triton supports B * H <= 65535 sequences per call, got B={B}, H={H}: "
                         "split the batch")
    if T * q.stride(1) >= 2**31:  # in-head key offsets are 32-bit
        raise ValueError(f"full/swa triton needs T * H * D < 2**31 per sequence, got T={T}, H={H}, D={D}: "
                         "split the heads")
    return q, k, v


def flash_forward(q, k, v, *, causal: bool, window: int | None, scale: float, cfg: FlashConfig,
                  need_lse: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    from ratbench.impls.full import triton_kernels as K

    B, T, H, D = q.shape
    o = torch.empty(B, T, H, D, device=q.device, dtype=q.dtype)
    lse = torch.empty(B * H, T, device=q.device, dtype=torch.float32) if need_lse else o
    K.fwd_kernel[(math.ceil(T / cfg.fwd_bm), B * H)](
        q, k, v, o, lse, q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2),
        T, H, window or T, scale * K.LOG2E,
        BM=cfg.fwd_bm, BN=cfg.fwd_bn, HALF=D // 2, CAUSAL=causal or window is not None, WINDOW=window is not None,
        STORE_LSE=need_lse, PREC=_prec(q.dtype), **_kw(cfg.fwd_warps, cfg.fwd_stages),
    )
    return o, (lse if need_lse else None)


def flash_backward(do, q, k, v, o, lse, *, causal: bool, window: int | None, scale: float, cfg: FlashConfig):
    from ratbench.impls.full import triton_kernels as K

    B, T, H, D = q.shape
    if do.stride() != o.stride():
        do = do.contiguous()
    os_ = (o.stride(0), o.stride(1), o.stride(2))
    qs = (q.stride(0), q.stride(1), q.stride(2))
    flags = {"HALF": D // 2, "CAUSAL": causal or window is not None, "WINDOW": window is not None,
             "PREC": _prec(q.dtype)}
    delta = torch.empty(B * H, T, device=q.device, dtype=torch.float32)
    K.bwd_pre_kernel[(math.ceil(T / cfg.pre_bm), B * H)](o, do, delta, *os_, T, H, BM=cfg.pre_bm, HALF=D // 2,
                                                         **_kw(4, 1))
    dk = torch.empty_like(o)
    dv = torch.empty_like(o)
    dqa = torch.zeros(B * H, T, D, device=q.device, dtype=torch.float32) if cfg.fused_dq else delta
    K.bwd_dkv_kernel[(math.ceil(T / cfg.dkv_bn), B * H)](
        q, k, v, do, lse, delta, dk, dv, dqa, *qs, *os_, T, H, window or T, scale, scale * K.LOG2E,
        BM=cfg.dkv_bm, BN=cfg.dkv_bn, REVERSE=cfg.dkv_reverse, DQ_ATOMIC=cfg.fused_dq,
        SAME_T=q.stride(1) == o.stride(1), **flags,
        **_kw(cfg.dkv_warps, cfg.dkv_stages),
    )
    dq = torch.empty_like(o)
    if cfg.fused_dq:
        K.dq_finish_kernel[(math.ceil(T / cfg.pre_bm), B * H)](dqa, dq, *os_, T, H, scale, BM=cfg.pre_bm,
                                                               HALF=D // 2, **_kw(4, 1))
        return dq, dk, dv
    K.bwd_dq_kernel[(math.ceil(T / cfg.dq_bm), B * H)](
        q, k, v, do, lse, delta, dq, *qs, *os_, T, H, window or T, scale, scale * K.LOG2E,
        BM=cfg.dq_bm, BN=cfg.dq_bn, **flags, **_kw(cfg.dq_warps, cfg.dq_stages),
    )
    return dq, dk, dv


class _FlashFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal: bool, window: int | None, scale: float, cfg: FlashConfig):  # type: ignore[override]
        need = any(ctx.needs_input_grad[:3])
        o, lse = flash_forward(q, k, v, causal=causal, window=window, scale=scale, cfg=cfg, need_lse=need)
        if need:
            ctx.save_for_backward(q, k, v, o, lse)
            ctx.meta = (causal, window, scale, cfg)
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, o, lse = ctx.saved_tensors
        causal, window, scale, cfg = ctx.meta
        dq, dk, dv = flash_backward(do, q, k, v, o, lse, causal=causal, window=window, scale=scale, cfg=cfg)
        return dq, dk, dv, None, None, None, None


def flash_attention(q, k, v, *, causal: bool = True, window: int | None = None, scale: float,
                    config: FlashConfig | None = None) -> torch.Tensor:
    """Differentiable (B, T, H, D) attention: causal, non-causal, or causal with a window."""
    q, k, v = _prepare(q, k, v)
    cfg = _cfg(config, q.dtype, window)
    if window is not None and window >= q.shape[1]:
        window = None  # every causal key is inside the window: plain causal attention
        causal = True
    return _FlashFunction.apply(q, k, v, causal, window, scale, cfg)


_STEP_WS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def decode_step(q, k, v, kc, vc, *, n_old: int, cur: int, skip: bool, scale: float, cfg: FlashConfig) -> torch.Tensor:
    """One launch: write k, v (B, H, D) into slot ``cur`` of kc, vc (B, H, S, D) and attend q over the
    new token and the n_old older slots [0, n_old) (without slot cur when ``skip``)."""
    from ratbench.impls.full import triton_kernels as K

    B, H, D = q.shape
    if not (q.stride() == k.stride() == v.stride() and q.stride(-1) == 1):
        q, k, v = (x.contiguous() for x in (q, k, v))
    o = torch.empty(B, H, D, device=q.device, dtype=q.dtype)
    BH = B * H
    splits = 1
    if cfg.step_splits is not None:
        splits = cfg.step_splits
    elif (n_sm := sm_count(q.device)) is not None:
        while splits < 64 and BH * splits < 2 * n_sm and n_old > splits * 4 * cfg.step_bn:
            splits *= 2
    n_per = math.ceil(max(n_old, 1) / splits / cfg.step_bn) * cfg.step_bn
    if splits > 1:
        key = (q.device, BH, splits, D)
        if key not in _STEP_WS:
            _STEP_WS[key] = (torch.empty(BH * splits * (D + 2), device=q.device, dtype=torch.float32),
                             torch.zeros(BH, device=q.device, dtype=torch.int32))
        ws, cnt = _STEP_WS[key]
    else:
        ws = cnt = o
    K.decode_kernel[(BH, splits)](
        q, k, v, kc, vc, o, ws, cnt, q.stride(0), q.stride(1), o.stride(0), o.stride(1),
        kc.stride(0), kc.stride(1), kc.stride(2), H, n_old, cur, n_per, scale * K.LOG2E,
        HALF=D // 2, BN=cfg.step_bn, SKIP=skip, SPLITS=splits, **_kw(cfg.step_warps, 1),
    )
    return o


def check_cache(state: KVCache | RingCache, q: torch.Tensor) -> None:
    if state.k.dtype != q.dtype or state.k.device != q.device:
        raise ValueError(f"decode state holds {state.k.dtype} on {state.k.device}; the inputs are {q.dtype} on {q.device}")
    B, H, _, D = state.k.shape
    if (q.shape[0], q.shape[-2], q.shape[-1]) != (B, H, D):
        raise ValueError(f"decode state is for (B, H, D) = {(B, H, D)}, inputs have shape {tuple(q.shape)}")
    if state.k.stride(-1) != 1 or state.k.stride() != state.v.stride():
        raise ValueError("the triton decode step needs k and v caches with one layout, last dim contiguous")


class FullTriton(FullAttention):
    description = ("Triton FlashAttention-2 (shared core with rat/triton): causal fwd/bwd, "
                   "one-launch split-KV decode step")
    triton = True
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    head_dims = (32, 64, 128)
    profile_stages = (("forward", r"fwd\w*_kernel"), ("backward", r"bwd\w*_kernel|dq_finish_kernel"),
                      ("decode step", r"decode\w*_kernel"))

    def __init__(self, config: FlashConfig | None = None) -> None:
        self.config = config

    def _forward(self, q, k, v, *, causal: bool, scale: float) -> torch.Tensor:
        return flash_attention(q, k, v, causal=causal, scale=scale, config=self.config)

    def _prefill(self, state: KVCache, q, k, v) -> torch.Tensor:
        check_cache(state, q)
        T0 = q.shape[1]
        with torch.no_grad():
            o = flash_attention(q, k, v, causal=True, scale=state.scale, config=self.config)
            state.k[:, :, :T0] = k.transpose(1, 2)
            state.v[:, :, :T0] = v.transpose(1, 2)
        state.pos = T0
        return o

    def _step(self, state: KVCache, q, k, v) -> torch.Tensor:
        check_cache(state, q)
        p = state.pos
        o = decode_step(q, k, v, state.k, state.v, n_old=p, cur=p, skip=False, scale=state.scale,
                        cfg=_cfg(self.config, q.dtype, None))
        state.pos += 1
        return o
