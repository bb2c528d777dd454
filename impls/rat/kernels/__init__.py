"""Triton kernels of rat/triton (docs/rat-spec.md): intra-chunk scan, chunk-index RoPE and a flash-style
softmax over earlier chunks' final states with the self term merged exactly into the same softmax.

Notation: token t = (c, l), c = t // L; kt, vt are the scanned states (computed in float32); K_j =
RoPE_j(kt at the end of chunk j), V_j = vt at the end of chunk j ("chunk ends", compact (B, H, C, D)).
Every kernel works on the head dim in two halves [0, D/2) and [D/2, D), so rotate-half RoPE needs no
shuffles. Logits are kept in base 2 (scale2 = scale * log2(e)); lse is base 2 too.

Modules, in launch order (launchers and the config that picks them: impls/rat/triton.py; measurements and
removed variants: impls/rat/NOTES.md):
  scan.py          scan_kernel (forward scan), bwd_scan_kernel (reverse scan -> dk, dv, df)
  long_scan.py     lscan_sum_kernel, lscan_carry_kernel, lscan_kernel, bwd_lscan_sum_kernel,
                   bwd_lscan_kernel: the two-level scans for long chunks (chunk_size = T)
  forward.py       fwd_kernel (attention over the chunk ends + the self term)
  backward_dq.py   bwd_dq_pre_kernel (16-bit: Delta, RoPE(q), dq in one pass); bwd_pre_kernel,
                   bwd_dq_kernel (float32)
  backward_dkv.py  bwd_dkv_early_kernel (16-bit), bwd_dkv_kernel (float32)
  decode.py        step_kernel (one decode token, optional split over slots merged in-kernel)
  common.py        RoPE on halves and the scans' two-half loads / stores
A forward is scan + fwd (2 launches); a backward is bwd_dq_pre, bwd_dkv_early, bwd_scan (16-bit, 3 launches)
or bwd_pre, bwd_dkv, bwd_dq, bwd_scan (float32, 4 launches); the two-level scans replace each scan launch by
up to three.
"""
from __future__ import annotations

from ratbench.impls.attention_core import LOG2E
from ratbench.impls.rat.kernels.backward_dkv import bwd_dkv_early_kernel, bwd_dkv_kernel
from ratbench.impls.rat.kernels.backward_dq import bwd_dq_kernel, bwd_dq_pre_kernel, bwd_pre_kernel
from ratbench.impls.rat.kernels.decode import step_kernel
from ratbench.impls.rat.kernels.forward import fwd_kernel
from ratbench.impls.rat.kernels.long_scan import (
    bwd_lscan_kernel,
    bwd_lscan_sum_kernel,
    lscan_carry_kernel,
    lscan_kernel,
    lscan_sum_kernel,
)
from ratbench.impls.rat.kernels.scan import bwd_scan_kernel, scan_kernel

__all__ = [
    "LOG2E",
    "bwd_dkv_early_kernel",
    "bwd_dkv_kernel",
    "bwd_dq_kernel",
    "bwd_dq_pre_kernel",
    "bwd_lscan_kernel",
    "bwd_lscan_sum_kernel",
    "bwd_pre_kernel",
    "bwd_scan_kernel",
    "fwd_kernel",
    "lscan_carry_kernel",
    "lscan_kernel",
    "lscan_sum_kernel",
    "scan_kernel",
    "step_kernel",
]
