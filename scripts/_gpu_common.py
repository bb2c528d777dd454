"""Helpers shared by the per-kernel GPU scripts (scripts/gpu_rat_triton.py, scripts/gpu_full_swa_triton.py,
scripts/gpu_linear_triton.py, scripts/gpu_peers.py): environment report, gradients for the
FlashAttention-rule error checks, relative errors and do_bench medians. triton is imported inside the
functions that use it: importing this module imports torch only (gpu_peers.py imports no triton)."""
from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence

import torch


def env_info(root: str, dry: bool, *, sm_count: bool = False) -> dict:
    """torch / triton / python versions, and on the GPU (not ``dry``) the device name, optionally its SM
    count, and the driver and clocks from nvidia-smi; the short git revision of ``root``."""
    import triton

    info = {"torch": torch.__version__, "triton": triton.__version__, "python": sys.version.split()[0]}
    if not dry:
        info["device"] = torch.cuda.get_device_name()
        if sm_count:
            info["sm_count"] = torch.cuda.get_device_properties(0).multi_processor_count
        try:
            info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.sm,clocks.mem",
                                             "--format=csv,noheader"], capture_output=True, text=True,
                                            check=False).stdout.strip()
        except Exception as exc:  # noqa: BLE001
            info["driver"] = repr(exc)
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                     text=True, check=False).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        info["git"] = repr(exc)
    return info


def grads_of(fn: Callable, xs: Sequence[torch.Tensor], do: torch.Tensor) -> list[torch.Tensor]:
    """[fn(*xs), d/dx of <fn(*xs), do> for each x] on detached copies of xs."""
    leaves = [x.detach().clone().requires_grad_(True) for x in xs]
    o = fn(*leaves)
    return [o.detach()] + [g.detach() for g in torch.autograd.grad(o, leaves, do.to(o.dtype))]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64; NaN when a is not finite."""
    a, b = a.double(), b.double()
    if not torch.isfinite(a).all():
        return float("nan")
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def bench(fn: Callable[[], object], ms_hint: float = 10.0, *, dry: bool = False) -> float:
    """do_bench median (ms) with the repeat count scaled by ``ms_hint`` (about one call's ms); ``dry``
    calls fn once and returns NaN (the CPU dry run checks the script, it times nothing)."""
    if dry:
        fn()
        return float("nan")
    from triton.testing import do_bench

    rep = max(50, min(400, int(30 * ms_hint)))
    return do_bench(fn, warmup=max(20, rep // 4), rep=rep, return_mode="median")
