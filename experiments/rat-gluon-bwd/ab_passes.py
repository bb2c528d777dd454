"""A/B of rat/gluon's memory passes around its backward kernel (b5, impls/rat/gluon/NOTES.md): the train step of
rat/gluon at the issue-18 shapes (bf16, H 16, D 128, L 16, 131,072 tokens) with
    b4       the pre pass reads q, kt, vt and writes RoPE(q) and dq's self term; bwd_dq_post_kernel writes dq
    scan_dq  the backward scan adds dq's self term and writes dq (no post pass; the pre pass writes zeros)
    b5       scan_dq, and the forward writes RoPE(q) (the pre pass reads o and dO only)
gradients compared with b4's (max abs difference), the step timed by interleaved do_bench (median of 3 rounds) and
each kernel's time from the profiler. `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-bwd/ab_passes.py`"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, rat_inputs, record, result_header
from ratbench.impls.rat import triton as RT
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, RATGluon

VARIANTS = {"b4": (dataclasses.replace(GLUON_BWD_CONFIG, fwd_qr=False), False),
            "scan_dq": (dataclasses.replace(GLUON_BWD_CONFIG, fwd_qr=False), True),
            "b5": (GLUON_BWD_CONFIG, True)}


@contextlib.contextmanager
def scan_dq(on: bool):
    """b4's route (the post pass writes dq) when off."""
    keep = RT.scan_finishes_dq
    if not on:
        RT.scan_finishes_dq = lambda *a: False
    try:
        yield
    finally:
        RT.scan_finishes_dq = keep


def step(impl, xs, do, L, on):
    with scan_dq(on):
        impl.forward(*xs, chunk_size=L).backward(do)


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    res = result_header()
    H, D, L, tokens = 16, 128, 16, 131072
    for T in (4096, 32768, 131072):
        B = tokens // T
        base, do = rat_inputs(B, T, H, D)
        xs = [x.requires_grad_(True) for x in base]
        row = {"T": T, "B": B}
        ref = None
        for name, (cfg, on) in VARIANTS.items():
            step(RATGluon(cfg), xs, do, L, on)
            grads = [x.grad.clone() for x in xs]
            for x in xs:
                x.grad = None
            if ref is None:
                ref = grads
            else:
                row[name + "_maxdiff_vs_b4"] = {n: (a.float() - b.float()).abs().max().item()
                                                for n, a, b in zip("qkvf", grads, ref)}
            row[name + "_finite"] = all(bool(torch.isfinite(a).all()) for a in grads)
        del ref, grads
        fns = {name: (lambda cfg=cfg, on=on, xs=xs, do=do: step(RATGluon(cfg), xs, do, L, on))
               for name, (cfg, on) in VARIANTS.items()}
        for n, v in interleaved(fns, warmup=5, rep=60 if T < 131072 else 120, grad_to_none=xs).items():
            row[n + "_ms"] = median(v)
            row[n + "_all"] = v
        from torch.profiler import ProfilerActivity, profile
        for name, (cfg, on) in VARIANTS.items():
            impl = RATGluon(cfg)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    step(impl, xs, do, L, on)
                    for x in xs:
                        x.grad = None
                torch.cuda.synchronize()
            row[name + "_kernels_ms"] = {e.key[:48]: round(e.device_time_total / max(1, e.count) / 1e3, 4)
                                         for e in prof.key_averages() if e.device_type.name == "CUDA"}
        record(res, row, out / "ab_passes.json", hide=("_kernels_ms",))
        torch.cuda.empty_cache()


def phases() -> None:
    """PHASES=1: per variant (scan_dq, b5) at 32k / 128k, the forward and the backward of 20 steps timed apart by CUDA
    events (interleaved, 3 rounds, no L2 flush), and of 3 steps the kernels' busy time against the span they cover
    (Kineto): where a step's time outside its kernels goes."""
    out = Path(os.environ.get("OUT", "/tmp"))
    res = result_header()
    H, D, L, tokens = 16, 128, 16, 131072
    names = ("scan_dq", "b5")
    for T in (32768, 131072):
        B = tokens // T
        g = torch.Generator(device="cuda").manual_seed(0)
        xs = [torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16().requires_grad_(True) for _ in range(4)]
        do = torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16()
        row = {"T": T}
        fw = {n: [] for n in names}
        bw = {n: [] for n in names}
        for _ in range(3):
            for n in names:
                impl = RATGluon(VARIANTS[n][0])
                for _ in range(20):
                    for x in xs:
                        x.grad = None
                    ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                    ev[0].record()
                    y = impl.forward(*xs, chunk_size=L)
                    ev[1].record()
                    y.backward(do)
                    ev[2].record()
                    torch.cuda.synchronize()
                    fw[n].append(ev[0].elapsed_time(ev[1]))
                    bw[n].append(ev[1].elapsed_time(ev[2]))
        for n in names:
            row[n + "_fwd_ms"] = median(fw[n])
            row[n + "_bwd_ms"] = median(bw[n])
        from torch.profiler import ProfilerActivity, profile
        for n in names:
            impl = RATGluon(VARIANTS[n][0])
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    for x in xs:
                        x.grad = None
                    impl.forward(*xs, chunk_size=L).backward(do)
                torch.cuda.synchronize()
            evs = sorted((e for e in prof.events() if e.device_type.name == "CUDA"), key=lambda e: e.time_range.start)
            busy = sum(e.time_range.elapsed_us() for e in evs) / 1e3 / 3
            span = (evs[-1].time_range.end - evs[0].time_range.start) / 1e3 / 3
            row[n + "_kernels_busy_ms"] = busy
            row[n + "_span_ms"] = span
            row[n + "_largest_gaps_us"] = sorted(((b.time_range.start - a.time_range.end, a.name[:30], b.name[:30])
                                                  for a, b in itertools.pairwise(evs)), reverse=True)[:6]
        record(res, row, out / "ab_passes_phases.json")


if __name__ == "__main__":
    phases() if os.environ.get("PHASES") else main()
