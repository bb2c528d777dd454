"""rat/triton's launch configuration: which kernels run and their tiles (RATTritonConfig) and the measured
defaults. impls/rat/triton.py re-exports all of it; impls/rat/NOTES.md and impls/rat/gluon/NOTES.md hold the
measurements behind the fields."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: RATTritonConfig.backward: the kernels of the backward pass (impls/rat/kernels/backward_dq.py)
BACKWARDS = ("plain", "dq_first", "gluon_ws")
#: RATTritonConfig.forward: the attention kernel of the forward pass: "triton" = kernels/forward.py (any GPU,
#: the interpreter); "gluon_ws" = impls/rat/gluon/forward.py (warp-specialized, TMA + wgmma: sm_90 only, 16-bit)
FORWARDS = ("triton", "gluon_ws")


@dataclass(frozen=True)
class RATTritonConfig:
    """Tile sizes and launch parameters (GPU). Under TRITON_INTERPRET=1: INTERPRET_CONFIG (16-row tiles)."""

    fwd_bm: int = 128  # query rows per forward program
    fwd_bn: int = 128  # chunk ends per inner step
    fwd_warps: int = 8
    fwd_stages: int = 3
    dkv_bn: int = 128  # chunk ends per dK/dV program
    dkv_bm: int = 64  # query rows per inner step
    dkv_warps: int = 8
    dkv_stages: int = 4
    #: the backward's kernels: "dq_first" = bwd_dq_pre_kernel (dq with Delta = rowsum(dO * o) and RoPE(q) in
    #: one pass) then bwd_dkv_early_kernel (dP^T issued before the exponentials): the 16-bit default (H200,
    #: NOTES.md session 4, run6); "plain" = bwd_pre_kernel, bwd_dkv_kernel, bwd_dq_kernel: what float32 runs;
    #: "gluon_ws" = impls/rat/gluon/backward.py (one 5-product kernel, dq by TMA reductions: sm_90 only, 16-bit)
    backward: str = "plain"
    #: the forward's attention kernel (FORWARDS); "gluon_ws" uses fwd_bn (chunk ends per block) and fwd_stages
    #: (K / V buffers); its query tile is 128 rows (fwd_bm must be 128)
    forward: str = "triton"
    #: with forward and backward "gluon_ws": the training forward also writes RoPE_c(q) (by TMA from the shared
    #: buffer it rotated q in) for the backward kernel, instead of the backward's pre pass reading q and writing it
    fwd_qr: bool = True
    #: with forward "gluon_ws" and the one-level scan, where the scan writes each row's self logit q . kt (float32)
    #: for the attention kernel to read instead of RoPE_c(kt) (impls/rat/gluon/NOTES.md f5): "prefill" (no lse: the
    #: scan writes no RoPE_c(kt) per row, 1 U less) or "off" (main's forward). Training always takes RoPE_c(kt):
    #: its backward reads it
    fwd_self_logit: str = "prefill"
    #: with forward "gluon_ws" at head dim 64: one in fwd_exp_poly (2, 4 or 8; 0: none) of the softmax's exponentials
    #: by polynomial on the FMA pipe instead of the MUFU, whose 16 results per clock take as long as the products
    #: there (impls/rat/gluon/NOTES.md f6)
    fwd_exp_poly: int = 8
    #: ... in the training forward (the launch that stores lse); None: fwd_exp_poly
    fwd_exp_poly_train: int | None = None
    #: with forward "gluon_ws": consumer warpgroups of 64 query rows per tile, 2 or 3 (head dim 64 only, 2 at others:
    #: f25, FA3's tile at that head dim; main's consumers, not f23's)
    fwd_wgs: int = 2
    #: ... in the training forward (the launch that stores lse); None: fwd_wgs
    fwd_wgs_train: int | None = None
    #: with forward "gluon_ws": the unmasked key blocks in a loop of their own, without the mask's selects (f7)
    fwd_split_masked: bool = True
    #: with forward "gluon_ws": the softmax's row maximum (1) and also its sum (2) in trees of independent
    #: instructions instead of a chain (f8); 0: the reductions' chains
    fwd_row_tree: int = 1
    #: with forward "gluon_ws", in the prefill: f23 (impls/rat/gluon/xt.py), a tile's last P V and epilogue under the
    #: next tile's RoPE of q and first S, where it applies (gluon/forward.py cross_tile_applies); rat/gluon takes it
    #: where it measured faster (gluon.cross_tile_used)
    fwd_cross_tile: bool = False
    #: ... in the training forward (f26: the launch that stores lse and RoPE(q), the self logit from kt)
    fwd_cross_tile_train: bool = False
    #: ... with a ring of this many K / V entries (3 fit at head dim 64 only)
    fwd_xt_stages: int = 2
    #: with backward "gluon_ws" and the one-level scans: dq's float32 accumulator is not zeroed by the pre pass; key
    #: block 0's items of bwd_ws_kernel store their share of each tile first and flag it, the others add theirs
    #: after the flag (b7b), and a fourth partition of bwd_ws_kernel, one warp, issues the dq shares' TMA copies and
    #: sets and waits for the flags (b7c; FlashAttention-3's dq writer). rat/gluon takes it where a sequence has few
    #: chunk ends (impls/rat/gluon/__init__.py, dq_writer_used); b7b and b7c each alone lost (NOTES.md, "Tenth
    #: session")
    bwd_dq_writer: bool = False
    #: with backward "gluon_ws": bwd_ws_kernel's query tiles per work item; 0: launch_backward's rule (32 up to 256
    #: chunk ends per head, 128 from 2048 on, else 64)
    bwd_seg: int = 0
    #: with bwd_dq_writer (or bwd_dq_acc16_plain) and the one-level scans, up to bwd_dq_acc16_max_ends chunk ends per
    #: sequence: dq's accumulator in the inputs' 16-bit dtype (with the writer a query tile's share stored, then the
    #: others added); False: float32 (b17)
    bwd_dq_acc16: bool = True
    #: ... the most chunk ends per sequence where it is: 256 (two key blocks, b17's measured range); more is b25, a
    #: candidate until measured (impls/rat/gluon/NOTES.md, "Thirty-fourth session")
    bwd_dq_acc16_max_ends: int = 256
    #: ... also without bwd_dq_writer: the pre pass's zeros and every share's TMA reduction in 16 bits (b25's
    #: candidate at head dim 64, where the writer does not run beyond 256 chunk ends)
    bwd_dq_acc16_plain: bool = False
    #: with backward "gluon_ws" at head dim 64: each MMA warpgroup of bwd_ws_kernel holds its K and V rows in registers
    #: as the A operands of S^T and dP^T, so those products read only q and dO from shared memory (b21)
    bwd_kv_regs: bool = False
    #: with backward "gluon_ws" at head dim 64: bwd_ws_kernel's MMA warpgroups take turns forming a query tile's whole
    #: dq share (one N = 64 product by the tile's owner, which alone waits for the other's dS^T) instead of each forming
    #: half of it after both wrote dS^T (b22)
    bwd_dq_owner: bool = False
    dq_bm: int = 128
    dq_bn: int = 64
    dq_warps: int = 8
    dq_stages: int = 3
    scan_nc: int = 16  # chunks side by side in the forward scan
    scan_warps: int = 4
    bscan_nc: int = 4  # ... and in the backward scan
    bscan_warps: int = 4
    pre_bm: int = 32
    #: decode step: slots per inner step and warps; None = the measured rule (`step_launch`): one program per
    #: (b, h) and no slot splits -> 2 warps, 64 slots per step up to 512 slots, else 128; split launches (few
    #: B*H) -> 128 slots, 4 warps (run 2's measured configuration)
    step_bn: int | None = None
    step_warps: int | None = None
    step_stages: int = 1  # software-pipeline stages of the step's slot loop (2, 3: no gain measured)
    #: slot splits of the decode step (None: enough programs for two per multiprocessor)
    step_splits: int | None = None
    #: two-level scans for long chunks (v7; kernels/long_scan.py): None = automatic (`long_scan_used`:
    #: min(L, T) >= lscan_min_len and at most lscan_max_lanes chunks (C * B * H) in all), True / False
    #: force the two-level / the plain scans. Default None: on the H200 (reports/rat-triton/run5_long_chunk.*)
    #: the two-level path passed the checks and trained the RNN op 1.7x / 5.1x / 18.6x faster at T = 4k / 32k /
    #: 128k (262144 tokens), the three shapes the rule sends there
    long_scan: bool | None = None
    lscan_s: int = 128  # rows per sub-block (the sequential part of a program)
    lscan_min_len: int = 1024
    lscan_max_lanes: int = 1024
    lscan_cb: int = 64  # sub-block summaries per step of the carry scan
    lscan_nb: int = 16  # sub-blocks side by side per forward program (warps: scan_warps)
    lscan_bnb: int = 8  # ... per backward program (warps: bscan_warps; 8 x D/2 gives 8-16-byte loads)

    def __post_init__(self) -> None:
        if self.backward not in BACKWARDS:
            raise ValueError(f"RATTritonConfig: backward must be one of {BACKWARDS}, got {self.backward!r}")
        if self.forward not in FORWARDS:
            raise ValueError(f"RATTritonConfig: forward must be one of {FORWARDS}, got {self.forward!r}")
        if self.fwd_self_logit not in ("off", "prefill"):
            raise ValueError(f"RATTritonConfig: fwd_self_logit must be 'off' or 'prefill', got {self.fwd_self_logit!r}")
        if self.fwd_exp_poly not in (0, 2, 4, 8):
            raise ValueError(f"RATTritonConfig: fwd_exp_poly must be 0, 2, 4 or 8, got {self.fwd_exp_poly!r}")
        if self.fwd_exp_poly_train not in (None, 0, 2, 4, 8):
            raise ValueError("RATTritonConfig: fwd_exp_poly_train must be None, 0, 2, 4 or 8, got "
                             f"{self.fwd_exp_poly_train!r}")
        if self.fwd_wgs not in (2, 3) or self.fwd_wgs_train not in (None, 2, 3):
            raise ValueError(f"RATTritonConfig: fwd_wgs must be 2 or 3 and fwd_wgs_train None, 2 or 3, got "
                             f"{self.fwd_wgs!r}, {self.fwd_wgs_train!r}")
        if self.fwd_row_tree not in (0, 1, 2):
            raise ValueError(f"RATTritonConfig: fwd_row_tree must be 0, 1 or 2, got {self.fwd_row_tree!r}")
        if self.bwd_dq_owner and self.bwd_dq_writer:
            raise ValueError("RATTritonConfig: bwd_dq_owner adds dq's shares by TMA reductions, without the dq writer "
                             "(bwd_dq_writer): the pair measured slower at every T (impls/rat/gluon/NOTES.md, "
                             "thirty-second session)")
        if self.forward == "gluon_ws" and self.fwd_bm != 128:
            raise ValueError(f"RATTritonConfig: forward 'gluon_ws' has a 128-row query tile, got fwd_bm={self.fwd_bm}")


# Tiles measured on an H200 (bf16, H = 16, D = 128, L = 16; reports/rat-triton/tune*.json): the defaults
# for many chunk ends per sequence; fewer chunk ends prefer smaller forward tiles; float32 operands
# take twice the shared memory, so smaller tiles and fewer stages.
# The 16-bit backward since session 4: backward="dq_first" (dq first with Delta and RoPE(q), v10, no bwd_pre;
# dK/dV issuing dP^T before the exponentials, v8) at 3 dK/dV stages. H200 harness run beside the previous
# default (reports/rat-triton/run6_harness, git 346fae3): train 6.56 -> 6.11 ms (4k), 14.9 -> 14.3 (32k),
# 43.4 -> 42.4 (128k); prefill unchanged; FlashAttention-rule checks pass (run6_overlap). float32 keeps the
# plain backward (not timed with these kernels).
_PLAIN = RATTritonConfig()
DEFAULT_CONFIG = dataclasses.replace(_PLAIN, backward="dq_first", dkv_stages=3)
SHORT_CONFIG = dataclasses.replace(DEFAULT_CONFIG, fwd_bm=64, fwd_bn=64, fwd_warps=4, fwd_stages=2)
FP32_CONFIG = dataclasses.replace(_PLAIN, fwd_bm=64, fwd_bn=64, fwd_warps=4, fwd_stages=1, dkv_bn=64,
                                  dkv_bm=64, dkv_stages=1, dq_bm=64, dq_bn=64, dq_stages=1)
INTERPRET_CONFIG = RATTritonConfig(
    fwd_bm=16, fwd_bn=16, dkv_bn=16, dkv_bm=16, dq_bm=16, dq_bn=16, scan_nc=4, bscan_nc=2, pre_bm=16,
    step_bn=16, lscan_s=16, lscan_cb=4, lscan_nb=4, lscan_bnb=2,
)
