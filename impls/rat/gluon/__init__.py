"""rat/gluon: RAT (docs/rat-spec.md) with warp-specialized Gluon attention kernels for Hopper.

Same interface, scans and decode state as rat/triton (impls/rat/triton.py). The config field ``forward =
"gluon_ws"`` routes the forward's attention to impls/rat/gluon/forward.py (fwd_ws_kernel: a TMA loader warp feeding
two consumer warpgroups, three at head dim 64 on long tiles (f25: `prefill_wgs3_used`, `train_wgs3_used`); one
warpgroup's softmax runs under the others' products, and the wait for its own previous P V product sits before its
exponentials in ptxas's schedule: NOTES.md, v4); ``backward = "gluon_ws"`` routes the
backward's attention to impls/rat/gluon/backward.py (bwd_ws_kernel: five products per tile pair, dq added by TMA
reductions), which rat/gluon takes where it measured faster than rat/triton's backward (`gluon_backward_used`).
sm_90 only (wgmma and TMA as Hopper has them), bf16 / fp16, head dims 64 and 128; Gluon has no CPU
interpreter: on the CPU the kernels are compiled for sm_90 (`run_bench.py static`) and their code is run by the
tests' emulator (tests/gluon_emu.py: shared memory, mbarriers, TMA and wgmma in torch, races and hangs reported);
speed and the final correctness check are measured on the H200 (impls/rat/gluon/NOTES.md).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math

import torch

from ratbench.impls.peer_utils import cuda_capability
from ratbench.impls.rat.gluon.items import KEY_BLOCK
from ratbench.impls.rat.triton import DEFAULT_CONFIG, RATTriton, RATTritonConfig

#: rat/triton's 16-bit default with the Gluon forward: 128 x 128 tiles, 2 buffers of K and V each (3 do not fit in
#: 227 KB beside q's two buffers) (H200, impls/rat/gluon/NOTES.md v2, v4)
GLUON_CONFIG = dataclasses.replace(DEFAULT_CONFIG, forward="gluon_ws", fwd_bm=128, fwd_bn=128, fwd_stages=2)
#: ... and the Gluon backward too (NOTES.md, "The backward in Gluon", "b4" and "b5"), its backward scan (which also
#: finishes dq since b5) with 8 chunks side by side: 1.84-1.86 ms against 1.96-1.98 at 4 (H200, ab_scan.json)
GLUON_BWD_CONFIG = dataclasses.replace(GLUON_CONFIG, backward="gluon_ws", bscan_nc=8)
#: ... with b7b's store-first dq accumulator (no zeros from the pre pass) and b7c's dq writer warp, at head dim 128 and
#: where a sequence has few chunk ends (`dq_writer_used`)
GLUON_WRITER_CONFIG = dataclasses.replace(GLUON_BWD_CONFIG, bwd_dq_writer=True)
#: the most chunk ends per sequence (two key blocks of 128) at which rat/gluon takes GLUON_WRITER_CONFIG at head dim 64
WRITER_MAX_ENDS = 256
#: the most chunk ends per sequence at which the dq accumulator is 16-bit (b17): two of bwd_ws_kernel's key blocks, as
#: gluon_backward's acc16 rule has it
ACC16_MAX_ENDS = 2 * KEY_BLOCK


def gluon_backward_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon trains with its Gluon backward (bwd_ws_kernel) rather than rat/triton's: where it measured
    faster (bf16, H 16, 131,072 tokens). On the H200 (NOTES.md b4, reports/h200-rat-gluon-bwd-2026-12-04/
    b4-checks-timing.json, the attention backward alone, interleaved): at head dim 64 at every T timed (4k / 32k /
    128k: 1.48 / 4.20 / 13.5 ms against 1.95 / 6.27 / 20.7), with L 16 at D 128 (2.95 / 7.47 / 21.8 against 2.97 /
    9.15 / 30.3) and with L 64 from T = 32k (3.35 / 7.05 against 4.10 / 10.8); below that, where the passes around
    the kernel are most of its time, it lost at L 64, 4k (2.61 against 2.35 ms) until b7c's dq writer took the pre
    pass's zeros away: on an H100 (NOTES.md "Eleventh session", reports/h100-rat-gluon-s11-2026-12-05, train step)
    with the writer 5.75 / 5.75 ms against rat/triton's backward 6.20 / 6.15 at L 64, 4k / 8k. So with L >= 64 at D
    128: from T 16k, and below it with the writer (which runs at every T at D 128: `dq_writer_used`; measured at L
    64, longer chunks carried over), not with chunks of lscan_min_len (1024) rows and more below 16k (the two-level
    scans' range: there the scan does not finish dq, so the writer is off, and that route is not measured)."""
    if head_dim <= 64 or chunk_size < 64 or seq_len >= 16384:
        return True
    return chunk_size < GLUON_BWD_CONFIG.lscan_min_len


def dq_writer_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's Gluon backward runs with b7c's dq writer and b7b's store-first accumulator: at head dim 128
    at every T, at head dim 64 where a sequence has at most WRITER_MAX_ENDS chunk ends (at most two key blocks that
    wait on each query tile's store-first flag). Measured on an H100 (train, bf16, H 16, 131,072 tokens):
    - tenth session (NOTES.md, reports/h100-rat-gluon-b7c-2026-12-05): faster at 4k only, at both head dims. At head
      dim 128 that kernel was serialized: its writer's 32 registers left MMA warpgroup 0 232, and ptxas 12.8 (as
      triton 3.6.0 calls it) issued every wgmma k-step alone.
    - twelfth session (NOTES.md, reports/h100-rat-gluon-wregs-2026-12-05, ab_wregs.py), the writer at 24 registers:
      at head dim 128 faster than the plain backward at every T timed (L 16: 6.23 / 6.83 / 8.26 / 11.40 / 30.71 ms
      against 7.06 / 7.47 / 8.44 / 11.80 / 31.11 at 4k / 8k / 16k / 32k / 128k; L 64: 5.75 / 6.01 against 6.57 / 6.85
      at 4k / 16k); at head dim 64 faster at 4k (3.61 against 3.76), slower from 8k (4.13 / 7.64 against 4.10 /
      7.20 at 8k / 32k, even at 128k)."""
    return head_dim > 64 or math.ceil(seq_len / chunk_size) <= WRITER_MAX_ENDS


def dq_acc16_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's backward keeps dq's accumulator in the inputs' 16-bit dtype (b17: RATTritonConfig
    .bwd_dq_acc16, gluon_backward's acc16 in impls/rat/gluon/backward.py) where the backward scan finishes dq
    (impls.rat.triton.scan_finishes_dq, which the caller checks): with the dq writer, at most ACC16_MAX_ENDS chunk
    ends per sequence (two key blocks: a query tile's share is stored, then at most one other added). Measured on an
    H100 (NOTES.md "Seventeenth session"), train step against the float32 accumulator: 4k 5.71 against 6.07 ms (D
    128, L 16), 3.26 against 3.51 (D 64), 5.30 against 5.64 (L 64); L 64 16k 5.58 against 5.92."""
    return (gluon_backward_used(seq_len, chunk_size, head_dim) and dq_writer_used(seq_len, chunk_size, head_dim)
            and seq_len // chunk_size <= ACC16_MAX_ENDS)


#: bwd_scan_kernel's chunks side by side (4 warps) by (head dim, dq accumulator 16-bit) where another count measured
#: faster than GLUON_BWD_CONFIG's 8 (NOTES.md "Twenty-ninth session", reports/h100-rat-gluon-s29-2026-12-07; an
#: H100). Per kernel (experiments/rat-gluon-next/scan_cands.py, 4k, interleaved rounds): head dim 64 with the float32
#: accumulator 16 (1.277 against 1.333 ms, -4.2%), head dim 128 with the 16-bit one 4 (-1.3% at L 16, -1.9% at L 64);
#: 8 stays where it was fastest (head dim 64 16-bit: 16 +1.5%, 4 +7.1%; head dim 128 float32: 4 +2.9%, 16 +3.4%).
#: Train step in the harness's gate rounds against 8, faster in each of 6 rounds: D 64 L 16 32k -0.6 to -1.1%, D 128
#: 4k L 16 -0.4 to -0.8%, L 64 -0.5 to -1.1%
BSCAN_NC = {(64, False): 16, (128, True): 4}


def bscan_nc(seq_len: int, chunk_size: int, head_dim: int) -> int:
    """bwd_scan_kernel's chunks side by side for rat/gluon's backward at this shape (BSCAN_NC; the accumulator's dtype
    by `dq_acc16_used`)."""
    return BSCAN_NC.get((head_dim, dq_acc16_used(seq_len, chunk_size, head_dim)), GLUON_BWD_CONFIG.bscan_nc)


#: the most chunk ends per sequence at which rat/gluon's prefill takes f23 (impls/rat/gluon/xt.py), per head dim
XT_MAX_ENDS = {128: 512, 64: 2048}
#: f23's K / V ring entries per head dim (three fit beside its three q buffers at head dim 64 only)
XT_STAGES = {64: 3}


def cross_tile_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's prefill takes f23, the tile boundary overlapped (RATTritonConfig.fwd_cross_tile; the kernel
    takes it where it applies: gluon/forward.py cross_tile_applies): where the tiles have few key blocks, so that their
    boundaries count. Measured on an H100 (NOTES.md "Twenty-seventh session", reports/h100-rat-gluon-s27-2026-12-07;
    prefill, bf16, H 16, 131,072 tokens, each ratio against rat/gluon in the gate's rounds, every round):
    - head dim 128, L 16: -0.0 to -2.7% at 4k (256 chunk ends), -0.3 to -3.2% at 8k (512); 16k (1024) -0.8 to +0.7%;
      32k (2048) +1.0 to +1.3%, slower;
    - head dim 128, L 64: -1.2 to -2.3% at 4k and 8k, -1.7 to -4.6% at 16k, -4.9 to -7.0% at 32k (512); +1.2 to +1.7%
      at 128k (2048);
    - head dim 64, L 16, with three ring entries: -4.5 to -5.0% at 4k, -6.9 to -8.9% at 8k, -8.2 to -8.8% at 16k,
      -2.7 to -5.4% at 32k (2048); +0.7 to +1.5% at 64k (4096), +3.5 to +5.0% at 128k.
    Other chunk sizes (and L 64 at head dim 64) are carried over by the chunk-end count, not measured."""
    return math.ceil(seq_len / chunk_size) <= XT_MAX_ENDS.get(head_dim, 0)


#: beside f23's consumers, the most chunk ends per sequence at which rat/gluon's D 64 prefill has every exponential on
#: the MUFU (`prefill_exp_poly_off`)
POLY_OFF_XT_MAX_ENDS = 512


def prefill_exp_poly_off(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's prefill forward runs every softmax exponential on the MUFU (RATTritonConfig.fwd_exp_poly 0)
    instead of one in 8 by polynomial (f6; head dim 64 only); the training forward keeps one in 8
    (fwd_exp_poly_train). Measured on an H100 (NOTES.md "Thirtieth session", reports/h100-rat-gluon-s30-2026-12-07;
    D 64, L 16, bf16, H 16, 131,072 tokens, speed-up over rat/gluon in each of the gate's rounds):
    - with f23's consumers: 1.034-1.044 at 4k (256 chunk ends), 1.006-1.022 at 8k (512); 0.991-0.998 at 16k (1024) and
      0.917-0.974 at 32k (2048), slower in every round;
    - with main's consumers: 1.026-1.036 at 64k, 1.005-1.036 at 128k;
    - training (rule: faster in every round at 4k, 32k and 128k): faster in 2 of 4 rounds at 4k, 3 of 4 at 128k; kept.
    Other chunk sizes are carried over by the chunk-end count, not measured."""
    if head_dim != 64:
        return False
    return not cross_tile_used(seq_len, chunk_size, head_dim) or math.ceil(seq_len / chunk_size) <= POLY_OFF_XT_MAX_ENDS


#: the fewest chunk ends per sequence at which rat/gluon's D 64 training forward has three consumer warpgroups
WGS3_TRAIN_MIN_ENDS = 8192


def prefill_wgs3_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's prefill forward has three consumer warpgroups (f25, RATTritonConfig.fwd_wgs 3: 192-row
    tiles, o by TMA where T is a multiple of 64: f25b; head dim 64 where f23's consumers do not run). Measured on an
    H100 (NOTES.md "Thirtieth session", reports/h100-rat-gluon-s30-2026-12-07; D 64, L 16, bf16, H 16, 131,072
    tokens, speed-up over two warpgroups in each of the gate's rounds): 1.040-1.046 at 64k, 1.078-1.087 at 128k (f25b;
    f25 before it 1.038-1.053 and 1.058-1.086); in place of f23's consumers 0.723-0.735 at 16k and 0.790-0.811 at 32k
    (f25, slower). Other chunk sizes are carried over by f23's chunk-end count, not measured."""
    return head_dim == 64 and not cross_tile_used(seq_len, chunk_size, head_dim)


def train_wgs3_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's training forward has three consumer warpgroups (f25b, RATTritonConfig.fwd_wgs_train 3; head
    dim 64 from WGS3_TRAIN_MIN_ENDS chunk ends per sequence). Measured on an H100 (as `prefill_wgs3_used`; the training
    step's speed-up over two warpgroups per gate round): 0.963-0.975 at 4k, 0.959-0.967 at 32k (slower in every round),
    1.017-1.064 at 128k (8192 chunk ends: faster in every round); 64k not measured, so the threshold is 128k's count."""
    return head_dim == 64 and math.ceil(seq_len / chunk_size) >= WGS3_TRAIN_MIN_ENDS


#: the fewest and most chunk ends per sequence at which rat/gluon's D 64 backward holds K and V in registers (b21) and
#: its warpgroups take turns at a tile's dq share (b22): `bwd_kv_owner_used`
KV_OWNER_ENDS = (1024, 8192)
#: the fewest and most chunk ends per sequence at which rat/gluon's training forward takes f23's consumers (f26), by
#: (head dim, chunk size) measured: `train_cross_tile_used`
TRAIN_XT_ENDS = {(64, 16): (256, 2048), (128, 64): (512, 512)}


def train_cross_tile_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's training forward takes f23's consumers (f26, RATTritonConfig.fwd_cross_tile_train: a tile's
    last P V and epilogue under the next tile's RoPE of q, self logit and first S; the kernel takes them where they
    apply, gluon/forward.py cross_tile_applies): within TRAIN_XT_ENDS chunk ends per sequence at the (head dim, chunk
    size) measured. Measured on an H100 (NOTES.md "Thirty-second session", reports/h100-rat-gluon-s32-2026-12-07;
    train, bf16, H 16, 131,072 tokens, speed-up over rat/gluon in each of 4 gate rounds): D 64 L 16 1.013-1.020 at
    4k, 1.019-1.024 at 16k, 1.023-1.031 at 32k; D 128 L 64 1.002-1.009 at 32k (4k 0.998-1.005, 3 of 4); D 128 L 16
    0.998-1.001 at 4k and 0.996-1.007 at 16k (not faster in every round). Other shapes are not measured: main's
    consumers."""
    lo, hi = TRAIN_XT_ENDS.get((head_dim, chunk_size), (1, 0))
    return lo <= math.ceil(seq_len / chunk_size) <= hi


def bwd_kv_owner_used(seq_len: int, chunk_size: int, head_dim: int) -> bool:
    """Whether rat/gluon's Gluon backward at head dim 64 runs b21 (RATTritonConfig.bwd_kv_regs: each MMA warpgroup's K
    and V rows in registers as S^T's and dP^T's A operands) with b22 (bwd_dq_owner: the warpgroups take turns at a
    query tile's whole dq share): between KV_OWNER_ENDS chunk ends per sequence. Measured on an H100 (NOTES.md
    "Thirty-first session", reports/h100-rat-gluon-s31-2026-12-07; train, D 64, L 16, bf16, H 16, 131,072 tokens,
    speed-up per gate round over rat/gluon, call s31b's 6 rounds): b21 + b22 1.020-1.029 at 16k and 1.037-1.065 at
    32k (b21 alone 1.011-1.028 and 1.004-1.041); 4k (the writer's route) 0.989-1.006, slower in 5 of 6; 64k 0.990-1.055
    and 128k 0.982-1.103 (5 of 6 each); call s32c's 6 rounds (thirty-second session): 1.030-1.071 at 64k and
    1.036-1.106 at 128k. Other chunk sizes are carried over by the chunk-end count, not measured."""
    ends = math.ceil(seq_len / chunk_size)
    return (head_dim == 64 and gluon_backward_used(seq_len, chunk_size, head_dim)
            and KV_OWNER_ENDS[0] <= ends <= KV_OWNER_ENDS[1])


class RATGluon(RATTriton):
    description = ("rat/triton with warp-specialized Gluon attention kernels (TMA loader warp, two wgmma warpgroups): "
                   "the forward (persistent) always, the 5-product backward (dq by TMA reductions) where it "
                   "measured faster; sm_90")
    triton = False
    requires = ("triton",)
    devices = ("cuda",)
    dtypes = (torch.float16, torch.bfloat16)
    head_dims = (64, 128)

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        if importlib.util.find_spec("triton.experimental.gluon") is None:
            return "this triton has no Gluon (triton.experimental.gluon); triton >= 3.6 has it"
        cap = cuda_capability()
        if cap is not None and cap != (9, 0):
            return f"the Gluon kernels use Hopper's wgmma and TMA (sm_90); this GPU is sm_{cap[0]}{cap[1]}"
        return None

    profile_stages = (("scans", r"scan\w*_kernel"), ("forward", r"fwd\w*_kernel"),
                      ("dq", r"bwd_(dq|pre|dq_pre)_kernel"), ("dK/dV", r"bwd_dkv\w*_kernel"),
                      ("bwd pre/post", r"bwd_(ws_pre|dq_post)_kernel"), ("backward", r"bwd_ws_kernel"),
                      ("decode step", r"step\w*_kernel"))

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        """The Gluon forward at every shape: since v4 (persistent CTAs, q and the self term by TMA) it measured faster
        than rat/triton's kernels at every shape timed, including the few-chunk-end ones where rat/triton's short
        tiles used to win (NOTES.md, "Where it is used"). The Gluon backward where `gluon_backward_used` (the shape given:
        seq_len, chunk_size, head_dim), with b7c's dq writer where `dq_writer_used` and the backward scan's launch by
        `bscan_nc`; f23's prefill consumers where `cross_tile_used`; the D 64 prefill's exponentials all on the MUFU where
        `prefill_exp_poly_off`; three consumer warpgroups in the D 64 forward where `prefill_wgs3_used` and
        `train_wgs3_used`; f23's consumers in the training forward where `train_cross_tile_used`; the D 64 backward's K
        and V in registers and dq by owners where `bwd_kv_owner_used`. A config
        given by the caller is used as given."""
        if self.config is not None:
            return self.config
        if None in (seq_len, chunk_size, head_dim):
            return GLUON_CONFIG
        cfg = GLUON_CONFIG
        if gluon_backward_used(seq_len, chunk_size, head_dim):
            bwd = GLUON_WRITER_CONFIG if dq_writer_used(seq_len, chunk_size, head_dim) else GLUON_BWD_CONFIG
            cfg = dataclasses.replace(bwd, bscan_nc=bscan_nc(seq_len, chunk_size, head_dim))
        if cross_tile_used(seq_len, chunk_size, head_dim):
            cfg = dataclasses.replace(cfg, fwd_cross_tile=True, fwd_xt_stages=XT_STAGES.get(head_dim, cfg.fwd_stages))
        if prefill_exp_poly_off(seq_len, chunk_size, head_dim):
            train = cfg.fwd_exp_poly if cfg.fwd_exp_poly_train is None else cfg.fwd_exp_poly_train
            cfg = dataclasses.replace(cfg, fwd_exp_poly=0, fwd_exp_poly_train=train)
        if train_cross_tile_used(seq_len, chunk_size, head_dim):
            cfg = dataclasses.replace(cfg, fwd_cross_tile_train=True,
                                      fwd_xt_stages=XT_STAGES.get(head_dim, cfg.fwd_xt_stages))
        if bwd_kv_owner_used(seq_len, chunk_size, head_dim):
            cfg = dataclasses.replace(cfg, bwd_kv_regs=True, bwd_dq_owner=True)
        wgs = (3 if prefill_wgs3_used(seq_len, chunk_size, head_dim) else 2,
               3 if train_wgs3_used(seq_len, chunk_size, head_dim) else 2)
        if wgs != (2, 2):
            cfg = dataclasses.replace(cfg, fwd_wgs=wgs[0], fwd_wgs_train=wgs[1])
        return cfg
