"""rat/triton: RAT (docs/rat-spec.md) in fused Triton kernels, forward, backward and decode.

Forward = two launches: the scan (float32 state; RoPE'd kt and vt per token in the input dtype, and
the chunk ends K_j, V_j, compact (B, H, C, D)), then one flash-style kernel that per BM query rows
starts the online softmax with the self term and runs it over the chunk ends j < c(t).
Backward (RATTritonConfig.backward) = three launches for 16-bit inputs ("dq_first": dq with Delta and
RoPE'd q; dK/dV of the chunk ends with dP^T issued before the exponentials; the backward scan) or four for
float32 ("plain": Delta and RoPE'd q; dK/dV; dq; the backward scan). The backward scan forms the self-term
gradients of kt and vt, adds the chunk-end gradients and runs the reverse recurrence -> dk, dv, df. Nothing
of size T x C is ever stored: memory is linear in T. Decode step = one launch (running-state update, slot
write, softmax over the slots, optional split over slots merged in-kernel), CUDA-graph capturable.
Long chunks with few chunks in all (chunk_size = T: the paper's RNN) use two-level scans instead of the
scan launches (sub-blocks in parallel + a carry scan; `long_scan_used`, RATTritonConfig.long_scan).
Kernels and their math: impls/rat/kernels/; measurements and the removed variants: impls/rat/NOTES.md.
"""
from __future__ import annotations

import math
import os

import torch

from ratbench.impls.peer_utils import sm_count
from ratbench.impls.rat.base import RAT, RATState
from ratbench.impls.rat.config import (  # noqa: F401 - re-exported: rat/triton's configuration lives in config.py
    BACKWARDS,
    DEFAULT_CONFIG,
    FORWARDS,
    FP32_CONFIG,
    INTERPRET_CONFIG,
    SHORT_CONFIG,
    RATTritonConfig,
)
from ratbench.impls.rope import rope_cos_sin


def forward_writes_qr(cfg: RATTritonConfig) -> bool:
    """Whether a training forward writes RoPE_c(q) for the backward (cfg.fwd_qr with the Gluon forward and backward)."""
    return cfg.fwd_qr and cfg.forward == "gluon_ws" and cfg.backward == "gluon_ws"


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _cfg(cfg: RATTritonConfig | None, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16
         ) -> RATTritonConfig:
    """The given config, else the interpreter's, else one chosen from the chunk count and dtype."""
    if cfg is not None:
        return cfg
    if _interpreting():
        return INTERPRET_CONFIG
    if dtype == torch.float32:
        return FP32_CONFIG
    return DEFAULT_CONFIG if n_chunks >= 2048 else SHORT_CONFIG


def step_launch(cfg: RATTritonConfig, BH: int, c: int, n_sm: int | None) -> tuple[int, int, int]:
    """(slot splits, slots per inner step, warps) of the decode step at chunk c with B*H = BH programs per split.
    Splits: enough programs for two per multiprocessor while each split keeps >= 4 slot blocks (GPU only).
    H200 (scripts/gpu_rat_step_tune.py, removed after ba51d7e; reports/rat-triton/run7_step_tune.json, bf16, H 16, D 128), one split:
    2 warps beat 4 at B = 64 / 1025 slots (0.143 vs 0.148 ms), B = 512 / 256 slots and B = 2296 / 225 slots,
    and 64-slot steps beat 128 at the last two (0.271 vs 0.285 ms; 1.037 vs 1.081 ms) but not at 1025 slots
    (0.160 vs 0.143 ms): 64 up to 512 slots is the rule (between 257 and 1025 slots it is not measured)."""
    base_bn = cfg.step_bn or 128
    splits = 1
    if cfg.step_splits is not None:
        splits = cfg.step_splits
    elif n_sm is not None:
        while splits < 64 and BH * splits < 2 * n_sm and c > splits * 4 * base_bn:
            splits *= 2
    if splits > 1:
        return splits, base_bn, cfg.step_warps or 4
    return 1, cfg.step_bn or (64 if c + 1 <= 512 else 128), cfg.step_warps or 2


def _kw(warps: int, stages: int) -> dict:
    return {} if _interpreting() else {"num_warps": warps, "num_stages": stages}


def _prec(dtype: torch.dtype) -> str:
    # float32 inputs: three-pass tf32 (about float32 accuracy on the tensor cores); "ieee" products
    # spill 3-8 KB per thread on sm_90 (NOTES.md; `run_bench.py static` / `profile --sass` show it)
    return "tf32x3" if dtype == torch.float32 else "tf32"


_TABLES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _d64(D: int, train: bool, value: int, train_value: int | None, other: int) -> int:
    """A Gluon forward option that applies at head dim 64 only (`other` elsewhere): the training forward's own value
    where set (fwd_exp_poly / fwd_exp_poly_train, fwd_wgs / fwd_wgs_train)."""
    if D != 64:
        return other
    return train_value if train and train_value is not None else value


def rope_tables(n: int, D: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (n', D/2) float32 for chunk indices 0..n'-1 (n' >= n, a power of two), from
    impls.rope.rope_cos_sin (angles in float64, rounded once); cached per device and head dim."""
    n2 = 1 << max(4, (n - 1).bit_length())
    key = (device, D)
    have = _TABLES.get(key)
    if have is None or have[0].shape[0] < n2:
        cos, sin = rope_cos_sin(torch.arange(n2, device=device), D, dtype=torch.float32)
        have = (cos[:, : D // 2].contiguous(), sin[:, : D // 2].contiguous())
        _TABLES[key] = have
    return have


def _check_grid(B: int, H: int) -> None:
    if B * H > 65535:  # B*H is the second launch-grid axis
        raise ValueError(f"rat/triton supports B * H <= 65535 sequences per call, got B={B}, H={H}: "
                         "split the batch")


def _same_strides(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    if all(x.stride() == xs[0].stride() for x in xs) and xs[0].stride(-1) == 1:
        return xs
    return tuple(x.contiguous() for x in xs)


def long_scan_used(cfg: RATTritonConfig, B: int, H: int, T: int, L: int) -> bool:
    """Whether the two-level scans (kernels/long_scan.py) replace scan_kernel / bwd_scan_kernel.

    The plain scans walk every chunk's rows in one program: C * B * H sequential lanes of min(L, T)
    dependent steps. With few lanes the GPU idles on memory latency (about one DRAM round trip per
    row: chunk_size = T = 131072 at B * H = 32 is 32 lanes of 131072 steps). The two-level scans move
    8 instead of 5 (forward) and 15 instead of 10 (backward) token-sized passes of memory but keep every
    lane S rows long. Rule (measured in session 3, impls/rat/NOTES.md v7: the two-level path won at every T): the plain
    scans saturate memory with about 1.5-2.5k lanes of 0.7-1 us per row, so the two-level ones win
    when min(L, T) >= lscan_min_len and C * B * H <= lscan_max_lanes; chunk sizes up to 256 never
    qualify (min_len 1024)."""
    if cfg.long_scan is not None:
        return cfg.long_scan
    return min(L, T) >= cfg.lscan_min_len and math.ceil(T / L) * B * H <= cfg.lscan_max_lanes


def _lscan_shape(cfg: RATTritonConfig, T: int, L: int) -> tuple[int, int, int]:
    """(S, NS, BD): rows per sub-block, sub-blocks per chunk, head-dim slice of the carry scan."""
    S = cfg.lscan_s
    return S, math.ceil(min(L, T) / S), 32


def _lscan_buffers(B: int, H: int, C: int, NS: int, D: int, device: torch.device):
    # per sub-block summaries (P, k part, v part), float32 (B*H, C*NS, D); dummies when NS == 1
    n = C * NS if NS > 1 else 1
    return tuple(torch.empty(B * H, n, D, device=device, dtype=torch.float32) for _ in range(3))


def rat_forward(q, k, v, f, L: int, rope: bool, scale: float, cfg: RATTritonConfig, *, need_lse: bool,
                ke=None, ve=None, last_state=None, qr=None):
    """scan_kernel then fwd_kernel. Returns o, lse (or None), ktr (None where rat/gluon's prefill did not write it),
    vt (per-token states, (B, T, H, D)),
    ke, ve (chunk ends (B, H, C, D), or the given decode-cache views). qr: (B*H, Tq, D) that the "gluon_ws" forward
    fills with RoPE_c(q) for the Gluon backward (`forward_writes_qr`). rat/gluon's prefill (cfg.fwd_self_logit
    "prefill", no lse, the one-level scan): the scan writes each row's self logit q . kt instead of RoPE_c(kt)."""
    from ratbench.impls.rat import kernels as K

    B, T, H, D = q.shape
    C = math.ceil(T / L)
    HALF = D // 2
    o = torch.empty(B, T, H, D, device=q.device, dtype=q.dtype)
    long_scan = long_scan_used(cfg, B, H, T, L)
    self_logit = cfg.forward == "gluon_ws" and not long_scan and cfg.fwd_self_logit == "prefill" and not need_lse
    ss = torch.empty(B * H, T, device=q.device, dtype=torch.float32) if self_logit else None
    ktr = o if self_logit else torch.empty_like(o)  # o: a pointer the scan does not write through then
    vt = torch.empty_like(o)
    if ke is None:
        ke = torch.empty(B, H, C, D, device=q.device, dtype=q.dtype)
        ve = torch.empty_like(ke)
    cos, sin = rope_tables(C, D, q.device) if rope else (o, o)
    stk, stv = last_state if last_state is not None else (o, o)
    if long_scan:
        _lscan_forward(k, v, f, cos, sin, ktr, vt, ke, ve, stk, stv, T, H, C, L, rope, last_state is not None, cfg)
    else:
        K.scan_kernel[(math.ceil(C / cfg.scan_nc), B * H)](
            k, v, f, cos, sin, ktr, vt, ke, ve, stk, stv, q, o if ss is None else ss,
            k.stride(0), k.stride(1), k.stride(2), o.stride(0), o.stride(1), o.stride(2),
            ke.stride(0), ke.stride(1), ke.stride(2), q.stride(0), q.stride(1), q.stride(2), T, H, C, L,
            L=L, NC=cfg.scan_nc, HALF=HALF, ROPE=rope, WRITE_LAST=last_state is not None, SELF_LOGIT=self_logit,
            WRITE_KT=not self_logit, **_kw(cfg.scan_warps, 1),
        )
    lse = torch.empty(B * H, T, device=q.device, dtype=torch.float32) if need_lse else o
    if cfg.forward == "gluon_ws":
        from ratbench.impls.rat.gluon.forward import launch_forward

        launch_forward(q, ktr, vt, cos, sin, ke, ve, o, lse, T, H, L, scale * K.LOG2E, rope, need_lse,
                       bn=cfg.fwd_bn, stages=cfg.fwd_stages, qr=qr, ss=ss,
                       exp_poly=_d64(D, need_lse, cfg.fwd_exp_poly, cfg.fwd_exp_poly_train, 0),
                       split=cfg.fwd_split_masked, tree=cfg.fwd_row_tree,
                       cross_tile=cfg.fwd_cross_tile_train if need_lse else cfg.fwd_cross_tile,
                       xt_stages=cfg.fwd_xt_stages, wgs=_d64(D, need_lse, cfg.fwd_wgs, cfg.fwd_wgs_train, 2))
        return o, (lse if need_lse else None), (None if self_logit else ktr), vt, ke, ve
    K.fwd_kernel[(math.ceil(T / cfg.fwd_bm), B * H)](
        q, ktr, vt, cos, sin, ke, ve, o, lse,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2),
        ke.stride(0), ke.stride(1), ke.stride(2), T, H, scale * K.LOG2E,
        L=L, BM=cfg.fwd_bm, BN=cfg.fwd_bn, HALF=HALF, ROPE=rope, STORE_LSE=need_lse,
        PREC=_prec(q.dtype), **_kw(cfg.fwd_warps, cfg.fwd_stages),
    )
    return o, (lse if need_lse else None), ktr, vt, ke, ve


def _two_level(cfg: RATTritonConfig, B: int, H: int, T: int, L: int, C: int, D: int, device: torch.device,
               nb: int, reverse: bool, launch_sum, launch_run) -> None:
    """The launches of a two-level scan (kernels/long_scan.py): per sub-block summaries
    (launch_sum(grid, sp, sk, sv, NSB, NS, S)), the carry scan across each chunk's sub-blocks (last to
    first with ``reverse``: the backward), then every sub-block re-run from its carry
    (launch_run(grid, sk, sv, NSB, NS, S)). One sub-block per chunk: the re-run alone."""
    from ratbench.impls.rat import kernels as K

    S, NS, BD = _lscan_shape(cfg, T, L)
    NSB = C * NS
    sp, sk, sv = _lscan_buffers(B, H, C, NS, D, device)
    grid = (math.ceil(NSB / nb), B * H)
    if NS > 1:
        launch_sum(grid, sp, sk, sv, NSB, NS, S)
        K.lscan_carry_kernel[(C * (D // BD), B * H)](sp, sk, sv, NSB, NS, D=D, BD=BD, CB=cfg.lscan_cb,
                                                       REVERSE=reverse, **_kw(4, 1))
    launch_run(grid, sk, sv, NSB, NS, S)


def _lscan_forward(k, v, f, cos, sin, ktr, vt, ke, ve, stk, stv, T: int, H: int, C: int, L: int, rope: bool,
                   write_last: bool, cfg: RATTritonConfig) -> None:
    """The forward scan as a two-level scan (lscan_sum_kernel, the carry scan, lscan_kernel); writes what
    scan_kernel writes."""
    from ratbench.impls.rat import kernels as K

    B, _, _, D = k.shape
    ins = (k.stride(0), k.stride(1), k.stride(2))
    kw = {"L": L, "NB": cfg.lscan_nb, "HALF": D // 2, **_kw(cfg.scan_warps, 1)}

    def launch_sum(grid, sp, sk, sv, NSB, NS, S):
        K.lscan_sum_kernel[grid](k, v, f, sp, sk, sv, *ins, T, H, NSB, NS, S, S=S, **kw)

    def launch_run(grid, sk, sv, NSB, NS, S):
        K.lscan_kernel[grid](
            k, v, f, cos, sin, ktr, vt, ke, ve, stk, stv, sk, sv,
            *ins, ktr.stride(0), ktr.stride(1), ktr.stride(2), ke.stride(0), ke.stride(1), ke.stride(2),
            T, H, NSB, NS, S, S=S, ROPE=rope, WRITE_LAST=write_last, **kw,
        )

    _two_level(cfg, B, H, T, L, C, D, k.device, cfg.lscan_nb, False, launch_sum, launch_run)


def _acc16(cfg: RATTritonConfig, n_ends: int) -> bool:
    """Whether the Gluon backward's dq accumulator is 16-bit (b17, b25): RATTritonConfig.bwd_dq_acc16 within
    bwd_dq_acc16_max_ends chunk ends, with the dq writer or bwd_dq_acc16_plain."""
    return (cfg.bwd_dq_acc16 and n_ends <= cfg.bwd_dq_acc16_max_ends
            and (cfg.bwd_dq_writer or cfg.bwd_dq_acc16_plain))


def rat_backward(do, q, k, v, f, o, lse, ktr, vt, ke, ve, L: int, rope: bool, scale: float,
                 cfg: RATTritonConfig, qr=None):
    """The backward of rat_forward: (dq, dk, dv, df). cfg.backward "dq_first": bwd_dq_pre_kernel (dq, Delta,
    RoPE(q)), bwd_dkv_early_kernel, the backward scan; "plain": bwd_pre_kernel (Delta, RoPE(q)),
    bwd_dkv_kernel, bwd_dq_kernel, the backward scan (kernels/backward_dq.py, backward_dkv.py, scan.py);
    "gluon_ws": impls/rat/gluon/backward.py's passes and kernel (qr: RoPE(q) from the forward, or None), then the
    backward scan, which also finishes dq where `scan_finishes_dq` (reading RoPE(q), not q: q may be None then)."""
    B, T, H, D = o.shape
    C = T // L
    if do.stride() != o.stride():
        do = do.contiguous()
    cos, sin = rope_tables(C, D, o.device) if rope else (o, o)
    if cfg.backward == "gluon_ws":  # Delta, dq and dK, dV of the chunk ends by impls/rat/gluon/backward.py
        from ratbench.impls.rat.gluon.backward import gluon_backward

        by_scan = scan_finishes_dq(cfg, B, H, T, L)
        dq, delta, dke, dve, qr = gluon_backward(do, q, o, lse, ktr, vt, ke, ve, cos, sin, L, rope, scale,
                                                 finish_dq=not by_scan, qr=qr, writer=cfg.bwd_dq_writer,
                                                 seg=cfg.bwd_seg or None,
                                                 acc16=_acc16(cfg, ke.shape[2]),
                                                 kv_regs=cfg.bwd_kv_regs, owner=cfg.bwd_dq_owner)
        dk, dv, df, dq_scan = _bwd_scan(q, k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, o, L, rope, scale,
                                        cfg, dqacc=dq if by_scan else None, qr=qr)
        return (dq_scan if by_scan else dq), dk, dv, df
    # 1. Delta = rowsum(dO * o), q after RoPE in (B*H, T, D) (and dq with "dq_first")
    delta = torch.empty(B * H, T, device=q.device, dtype=torch.float32)
    qr = torch.empty(B * H, T, D, device=q.device, dtype=q.dtype)
    if cfg.backward == "dq_first":
        dq = _dq_pre(q, o, ktr, vt, do, cos, sin, ke, ve, lse, delta, qr, L, rope, scale, cfg)
    else:
        _bwd_pre(q, o, do, cos, sin, delta, qr, L, rope, cfg)
    # 2. dK, dV of the chunk ends (float32, w.r.t. the RoPE'd keys)
    dke, dve = _dkv(qr, do, lse, delta, ke, ve, o, L, scale, cfg)
    del qr
    # 3. dq (chunk ends + self term)
    if cfg.backward != "dq_first":
        dq = _dq(q, ktr, vt, do, cos, sin, ke, ve, lse, delta, o, L, rope, scale, cfg)
    # 4. self-term gradients of kt, vt, chunk-end dK/dV, reverse scan -> dk, dv, df
    dk, dv, df, _ = _bwd_scan(q, k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, o, L, rope, scale, cfg)
    return dq, dk, dv, df


def _bwd_pre(q, o, do, cos, sin, delta, qr, L: int, rope: bool, cfg: RATTritonConfig) -> None:
    """"plain": bwd_pre_kernel (stage "bwd_pre") writes Delta and RoPE'd q."""
    from ratbench.impls.rat import kernels as K

    B, T, H, D = q.shape
    K.bwd_pre_kernel[(math.ceil(T / cfg.pre_bm), B * H)](
        q, o, do, cos, sin, delta, qr, q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1),
        o.stride(2), T, H, L=L, BM=cfg.pre_bm, HALF=D // 2, ROPE=rope, **_kw(4, 1),
    )


def _dq_pre(q, o, ktr, vt, do, cos, sin, ke, ve, lse, delta, qr, L: int, rope: bool, scale: float,
            cfg: RATTritonConfig) -> torch.Tensor:
    """"dq_first": bwd_dq_pre_kernel (stage "bwd_dq_pre"): writes Delta and
    RoPE'd q for the dK/dV kernel and the backward scan; returns dq."""
    from ratbench.impls.rat import kernels as K

    B, T, H, D = q.shape
    dq = torch.empty_like(o)
    K.bwd_dq_pre_kernel[(math.ceil(T / cfg.dq_bm), B * H)](
        q, o, ktr, vt, do, cos, sin, ke, ve, lse, delta, qr, dq,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2),
        ke.stride(0), ke.stride(1), ke.stride(2), T, H, scale, scale * K.LOG2E,
        L=L, BM=cfg.dq_bm, BN=cfg.dq_bn, HALF=D // 2, ROPE=rope, PREC=_prec(q.dtype),
        **_kw(cfg.dq_warps, cfg.dq_stages),
    )
    return dq


def _dkv(qr, do, lse, delta, ke, ve, o, L: int, scale: float, cfg: RATTritonConfig
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """dK, dV of the chunk ends (float32 (B*H, C, D)): bwd_dkv_early_kernel ("dq_first") or bwd_dkv_kernel
    ("plain"), stage "bwd_dkv"."""
    from ratbench.impls.rat import kernels as K

    B, H, C, D = ke.shape
    T = qr.shape[1]
    dke = torch.empty(B * H, C, D, device=qr.device, dtype=torch.float32)
    dve = torch.empty_like(dke)
    kern = K.bwd_dkv_early_kernel if cfg.backward == "dq_first" else K.bwd_dkv_kernel
    kern[(math.ceil(C / cfg.dkv_bn), B * H)](
        qr, do, lse, delta, ke, ve, dke, dve, o.stride(0), o.stride(1), o.stride(2),
        ke.stride(0), ke.stride(1), ke.stride(2), T, H, C, scale, scale * K.LOG2E,
        L=L, BM=cfg.dkv_bm, BN=cfg.dkv_bn, HALF=D // 2, PREC=_prec(qr.dtype), **_kw(cfg.dkv_warps, cfg.dkv_stages),
    )
    return dke, dve


def _dq(q, ktr, vt, do, cos, sin, ke, ve, lse, delta, o, L: int, rope: bool, scale: float,
        cfg: RATTritonConfig) -> torch.Tensor:
    """"plain": bwd_dq_kernel (stage "bwd_dq"): dq over the chunk ends and the self term."""
    from ratbench.impls.rat import kernels as K

    B, T, H, D = q.shape
    dq = torch.empty_like(o)
    K.bwd_dq_kernel[(math.ceil(T / cfg.dq_bm), B * H)](
        q, ktr, vt, do, cos, sin, ke, ve, lse, delta, dq,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2),
        ke.stride(0), ke.stride(1), ke.stride(2), T, H, scale, scale * K.LOG2E,
        L=L, BM=cfg.dq_bm, BN=cfg.dq_bn, HALF=D // 2, ROPE=rope, PREC=_prec(q.dtype),
        **_kw(cfg.dq_warps, cfg.dq_stages),
    )
    return dq


def _bwd_scan(q, k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, o, L: int, rope: bool, scale: float,
              cfg: RATTritonConfig, dqacc: torch.Tensor | None = None, qr: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """dk, dv, df and, given dqacc and qr, dq: bwd_scan_kernel (stage "bwd_scan"), or the two-level scan
    (bwd_lscan_sum_kernel, carry scan, bwd_lscan_kernel) when long_scan_used (no dqacc there: `scan_finishes_dq`).
    dqacc: (B*H, Tp, D) float32 (or 16-bit: rat/gluon's b17), sum_j dS_tj K_j (rat/gluon's backward kernel), and
    qr, RoPE(q) in the same rows, read instead of q (which may be None then): the scan adds each row's self term,
    scales, rotates back and writes dq (one pass less than rat/gluon's bwd_dq_post_kernel)."""
    from ratbench.impls.rat import kernels as K

    B, T, H, D = o.shape
    C = T // L
    HALF = D // 2
    os_ = (o.stride(0), o.stride(1), o.stride(2))
    ins = (k.stride(0), k.stride(1), k.stride(2))
    dk = torch.empty_like(o)
    dv = torch.empty_like(o)
    df = torch.empty_like(o)
    if long_scan_used(cfg, B, H, T, L):
        kw = {"L": L, "NB": cfg.lscan_bnb, "HALF": HALF, "ROPE": rope, **_kw(cfg.bscan_warps, 1)}

        def launch_sum(grid, sp, sk, sv, NSB, NS, S):
            K.bwd_lscan_sum_kernel[grid](q, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, sp, sk, sv, *ins, *os_,
                                         T, H, C, NSB, NS, S, scale, scale * K.LOG2E, S=S, **kw)

        def launch_run(grid, sk, sv, NSB, NS, S):
            K.bwd_lscan_kernel[grid](q, k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, dk, dv, df, sk, sv,
                                     *ins, *os_, T, H, C, NSB, NS, S, scale, scale * K.LOG2E, S=S, **kw)

        if dqacc is not None:
            raise ValueError("rat/triton: the two-level backward scan does not finish dq (scan_finishes_dq)")
        _two_level(cfg, B, H, T, L, C, D, o.device, cfg.lscan_bnb, True, launch_sum, launch_run)
        return dk, dv, df, None
    dq = None if dqacc is None else torch.empty_like(o)
    dq_args = (dk, dk, 0) if dqacc is None else (dqacc, dq, dqacc.shape[1])
    K.bwd_scan_kernel[(math.ceil(C / cfg.bscan_nc), B * H)](
        q if dqacc is None else qr, k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, dk, dv, df, *dq_args[:2],
        *ins, *os_, T, H, C, L, scale, scale * K.LOG2E, dq_args[2],
        L=L, NC=cfg.bscan_nc, HALF=HALF, ROPE=rope, DQ_OUT=dqacc is not None, **_kw(cfg.bscan_warps, 1),
    )
    return dk, dv, df, dq


def scan_finishes_dq(cfg: RATTritonConfig, B: int, H: int, T: int, L: int) -> bool:
    """Whether the backward scan takes rat/gluon's dq accumulator and writes dq (bwd_scan_kernel's DQ_OUT): with
    the one-level scan; the two-level scans leave dq to bwd_dq_post_kernel (impls/rat/gluon/passes.py)."""
    return not long_scan_used(cfg, B, H, T, L)


class _RATFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, f, L: int, rope: bool, scale: float, cfg: RATTritonConfig):  # type: ignore[override]
        need = any(ctx.needs_input_grad[:4])
        B, T, H, _ = q.shape
        qr = None
        if need and forward_writes_qr(cfg):
            from ratbench.impls.rat.gluon.forward import rope_q_buffer

            qr = rope_q_buffer(q)
        o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, rope, scale, cfg, need_lse=need, qr=qr)
        if need:  # with RoPE(q) saved, q itself only where dq's self term is not the scan's (scan_finishes_dq)
            keep_q = qr is None or not scan_finishes_dq(cfg, B, H, T, L)
            ctx.save_for_backward(q if keep_q else None, k, v, f, o, lse, ktr, vt, ke, ve, qr)
            ctx.meta = (L, rope, scale, cfg)
        return o

    @staticmethod
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, f, o, lse, ktr, vt, ke, ve, qr = ctx.saved_tensors
        L, rope, scale, cfg = ctx.meta
        dq, dk, dv, df = rat_backward(do, q, k, v, f, o, lse, ktr, vt, ke, ve, L, rope, scale, cfg, qr=qr)
        return dq, dk, dv, df, None, None, None, None


_STEP_WS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


class RATTriton(RAT):
    description = ("fused Triton: scan + chunk-index RoPE + flash softmax over chunk ends with the self term "
                   "merged exactly; fwd/bwd; one-launch decode step")
    triton = True
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    head_dims = (32, 64, 128)
    profile_stages = (("scans", r"scan\w*_kernel"), ("forward", r"fwd\w*_kernel"),
                      ("dq", r"bwd_(dq|pre|dq_pre)_kernel"), ("dK/dV", r"bwd_dkv\w*_kernel"),
                      ("decode step", r"step\w*_kernel"))

    def __init__(self, config: RATTritonConfig | None = None) -> None:
        self.config = config

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        """The launch config for a call: the given one, else the default for the chunk count and dtype (seq_len,
        chunk_size and head_dim are for subclasses' rules; rat/triton's defaults do not depend on them)."""
        return _cfg(self.config, n_chunks, dtype)

    def _forward(self, q, k, v, f, *, chunk_size: int, rope: bool, scale: float) -> torch.Tensor:
        q, k, v, f = _same_strides(q, k, v, f)
        _check_grid(q.shape[0], q.shape[2])
        cfg = self._config(q.shape[1] // chunk_size, q.dtype, seq_len=q.shape[1], chunk_size=chunk_size,
                           head_dim=q.shape[3])
        return _RATFunction.apply(q, k, v, f, chunk_size, rope, scale, cfg)

    def _check_state(self, state: RATState, q: torch.Tensor) -> None:
        if state.k_cache.dtype != q.dtype or state.k_cache.device != q.device:
            raise ValueError(f"decode state holds {state.k_cache.dtype} on {state.k_cache.device}; "
                             f"the inputs are {q.dtype} on {q.device}")
        B, H, _, D = state.k_cache.shape
        if (q.shape[0], q.shape[-2], q.shape[-1]) != (B, H, D):
            raise ValueError(f"decode state is for (B, H, D) = {(B, H, D)}, inputs have shape {tuple(q.shape)}")
        if state.kt.dtype != torch.float32 or not state.kt.is_contiguous() or not state.vt.is_contiguous():
            raise ValueError("rat/triton needs a decode state made by its own init_state (float32 running state)")
        if state.k_cache.stride(-1) != 1 or state.k_cache.stride() != state.v_cache.stride():
            raise ValueError("rat/triton needs k_cache and v_cache with one layout, last dim contiguous")

    def _prefill(self, state: RATState, q, k, v, f) -> torch.Tensor:
        self._check_state(state, q)
        _check_grid(q.shape[0], q.shape[2])
        q, k, v, f = _same_strides(q, k, v, f)
        cfg = self._config(math.ceil(q.shape[1] / state.chunk_size), q.dtype, seq_len=q.shape[1],
                           chunk_size=state.chunk_size, head_dim=q.shape[3])
        with torch.no_grad():
            o, *_ = rat_forward(q, k, v, f, state.chunk_size, state.rope, state.scale, cfg, need_lse=False,
                                ke=state.k_cache, ve=state.v_cache, last_state=(state.kt, state.vt))
        state.pos = q.shape[1]
        return o

    def _step(self, state: RATState, q, k, v, f) -> torch.Tensor:
        from ratbench.impls.rat import kernels as K

        self._check_state(state, q)
        cfg = self._config()
        B, H, D = q.shape
        c, l = divmod(state.pos, state.chunk_size)
        q, k, v, f = _same_strides(q, k, v, f)
        o = torch.empty(B, H, D, device=q.device, dtype=q.dtype)
        cos, sin = rope_tables(state.k_cache.shape[2], D, q.device) if state.rope else (o, o)
        BH = B * H
        n_sm = sm_count(q.device)
        splits, bn, warps = step_launch(cfg, BH, c, n_sm)
        n_per = math.ceil(max(c, 1) / splits / bn) * bn
        key = (q.device, BH, splits, D)
        if splits > 1:
            if key not in _STEP_WS:
                _STEP_WS[key] = (torch.empty(BH * splits * (D + 2), device=q.device, dtype=torch.float32),
                                 torch.zeros(BH, device=q.device, dtype=torch.int32))
            ws, cnt = _STEP_WS[key]
        else:
            ws = cnt = state.kt
        kc = state.k_cache
        K.step_kernel[(BH, splits)](
            q, k, v, f, state.kt, state.vt, kc, state.v_cache, cos, sin, o, ws, cnt,
            q.stride(0), q.stride(1), o.stride(0), o.stride(1), kc.stride(0), kc.stride(1), kc.stride(2), H, c, int(l == 0), n_per,
            state.scale * K.LOG2E, HALF=D // 2, BN=bn, ROPE=state.rope, SPLITS=splits,
            **_kw(warps, cfg.step_stages),
        )
        state.pos += 1
        return o

