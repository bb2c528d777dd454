"""Helpers shared by the per-kernel GPU scripts (scripts/gpu_rat_triton.py, scripts/gpu_rat_long_chunk.py,
scripts/gpu_full_swa_triton.py, scripts/gpu_linear_triton.py, scripts/gpu_peers.py): environment report,
gradients and errors for the FlashAttention-rule checks, NaN-poisoned memory, do_bench medians, the time
budget. triton is imported inside the functions that use it: importing this module imports torch only
(gpu_peers.py imports no triton). A script run with --dry-run runs on Triton's CPU interpreter: importing
this module then sets TRITON_INTERPRET=1 (DRY_RUN), so a script imports it before impls defines kernels."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import torch

DRY_RUN = "--dry-run" in sys.argv
if DRY_RUN:  # the interpreter must be chosen before any kernel is defined
    os.environ["TRITON_INTERPRET"] = "1"
_T0 = time.time()


def elapsed() -> float:
    """Seconds since the script started (imported this module): the scripts' time budgets."""
    return time.time() - _T0


def over_budget(budget: float, frac: float, what: str) -> bool:
    """True, and a line saying what is skipped, once elapsed() is past frac * budget seconds."""
    if elapsed() > budget * frac:
        print(f"skip {what}: budget", flush=True)
        return True
    return False


def run_row(fn: Callable[..., dict], *args: object, **ident: object) -> dict:
    """fn(*args), or, when it raises, the traceback printed and {**ident, "error": repr(exc)[:300]}."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        return {**ident, "error": repr(exc)[:300]}


class Results:
    """A script's results (a dict of lists of rows and other fields), written as JSON to $OUT/<name>
    (OUT defaults to /tmp) after every row, so that a run cut short keeps what it measured."""

    def __init__(self, name: str, fields: dict) -> None:
        out_dir = os.environ.get("OUT", "/tmp")
        os.makedirs(out_dir, exist_ok=True)
        self.path = os.path.join(out_dir, name)
        self.res = fields

    def add(self, key: str, row: dict, *, save: bool = True) -> None:
        """Append row to res[key], print it as one JSON line and (``save``) write the file."""
        self.res[key].append(row)
        print(json.dumps(row), flush=True)
        if save:
            self.save()

    def save(self) -> None:
        with open(self.path, "w") as fh:
            json.dump(self.res, fh, indent=1)


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


def train_prefill_fns(forward: Callable, xs: Sequence[torch.Tensor]) -> tuple[Callable[[], None], Callable[[], None]]:
    """(prefill, train) for timing: prefill = forward(*xs) under no_grad; train = forward on leaf copies of
    xs, then autograd.grad of every one of them for one random dO (drawn here, like xs[0])."""
    do = torch.randn_like(xs[0])
    leaves = [x.clone().requires_grad_(True) for x in xs]

    def prefill() -> None:
        with torch.no_grad():
            forward(*xs)

    def train() -> None:
        o = forward(*leaves)
        torch.autograd.grad(o, leaves, do)

    return prefill, train


def errors(x: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(max|x - ref|, ||x - ref|| / ||ref||) against a float64 reference: FlashAttention's error measure
    and the relative L2 error."""
    x = x.double()
    return (x - ref).abs().max().item(), ((x - ref).norm() / ref.norm()).item()


def fa_rule_ok(x: torch.Tensor, e_ours: tuple[float, float], e_low: tuple[float, float], fp32: bool) -> bool:
    """x finite and, for float32 inputs (tf32x3 products), a relative error <= 1e-4; for bf16/fp16 the
    FlashAttention rule max|x - ref64| <= 2 max|low-precision reference - ref64| + 1e-6 (errors() pairs)."""
    finite = bool(torch.isfinite(x).all())
    return finite and (e_ours[1] <= 1e-4 if fp32 else e_ours[0] <= 2 * e_low[0] + 1e-6)


def poison_free_memory(numel: int) -> None:
    """Fill ``numel`` float32 of the CUDA caching allocator's free memory with NaN (emptying its cache
    first), so that outputs a kernel leaves unwritten show up as NaN in the checks."""
    torch.cuda.empty_cache()
    junk = torch.full((numel,), float("nan"), device="cuda", dtype=torch.float32)
    del junk


def rat_inputs(B: int, T: int, H: int, D: int, dtype: torch.dtype, seed: int, device: str):
    """q, k, v ~ N(0, 1) and gates f = sigmoid(N(1, 1)) (B, T, H, D), seeded, in ``dtype``."""
    g = torch.Generator(device=device).manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, device=device, generator=g).to(dtype) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device=device, generator=g) + 1.0).to(dtype)
    return q, k, v, f


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


def stage_medians(train: Callable[[], object], reps: int) -> dict[str, float]:
    """Median CUDA-event milliseconds per rat/triton stage over ``reps`` calls of ``train`` (a warmed-up
    forward + backward): impls.rat.triton.STAGE_EVENTS collects (stage, start, end) events while set."""
    import statistics

    import impls.rat.triton as RT

    runs: dict[str, list[float]] = {}
    torch.cuda.synchronize()
    for _ in range(reps):
        RT.STAGE_EVENTS = []
        try:
            train()
            torch.cuda.synchronize()
            for stage, s0, e0 in RT.STAGE_EVENTS:
                runs.setdefault(stage, []).append(s0.elapsed_time(e0))
        finally:
            RT.STAGE_EVENTS = None
    return {n: statistics.median(x) for n, x in runs.items()}
