"""The H200's matmul ceiling held for seconds, as the 128k train step holds the GPU, beside the burst ceiling the
harness measures (bench/device.py: bf16 8192^3, median of a few runs at boost clock): is the step's gap to its
target a gap to what the board sustains under its power cap? Three phases of about 4 s each: bf16 8192^3 matmuls,
rat/gluon's train step and its prefill at T 128k (B 1, H 16, D 128, L 16); per 0.25 s window the rate (TF/s or ms
per call), and from NVML the SM clock, power and throttle reasons. `OUT=/tmp/x PYTHONPATH=. python
experiments/rat-gluon-bwd/sustained.py`"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from ratbench.bench.device import Nvml
from ratbench.bench.provenance import git_revision
from ratbench.impls.rat.gluon import RATGluon


def nvml_probe():
    """The GPU's SM clock, power and throttle reasons now (bench.device.Nvml; {} without NVML)."""
    nv = Nvml.open(torch.cuda.current_device())
    return nv.snapshot if nv is not None else dict


def windows(fn, seconds: float, work: float) -> list[dict]:
    """Calls fn back to back for `seconds`; per 0.25 s window: ms per call, work / time (TF/s with work in TFLOP)."""
    probe = nvml_probe()
    out, t_end = [], time.time() + seconds
    while time.time() < t_end:
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        n, t0 = 0, time.time()
        a.record()
        while time.time() - t0 < 0.25:
            fn()
            n += 1
        b.record()
        b.synchronize()
        ms = a.elapsed_time(b) / n
        out.append({"ms_per_call": ms, "rate": work / ms * 1e3, "calls": n, **probe()})
    return out


def summary(ws: list[dict]) -> dict:
    tail = ws[len(ws) // 2:]  # the second half: the clock has settled
    keys = [k for k in ("ms_per_call", "rate", "sm_clock_mhz", "power_w") if all(w.get(k) is not None for w in tail)]
    return {k: sum(w[k] for w in tail) / len(tail) for k in keys}


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "triton": __import__("triton").__version__, "git": git_revision(), "phases": {}}
    n = 8192
    mats = [torch.randn(n, n, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    res["phases"]["matmul_8192_tflops"] = windows(lambda: mats[0] @ mats[1], 4.0, 2 * n**3 / 1e12)
    mats.clear()
    B, T, H, D, L = 1, 131072, 16, 128, 16
    g = torch.Generator(device="cuda").manual_seed(0)
    xs = [torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16())
    do = torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16()
    impl = RATGluon()
    tr = [x.clone().requires_grad_(True) for x in xs]

    def train():
        for x in tr:
            x.grad = None
        impl.forward(*tr, chunk_size=L).backward(do)

    def prefill():
        with torch.no_grad():
            impl.forward(*xs, chunk_size=L)
    train()
    prefill()
    torch.cuda.synchronize()
    res["phases"]["train_128k_ms"] = windows(train, 4.0, 1.0)
    res["phases"]["prefill_128k_ms"] = windows(prefill, 4.0, 1.0)
    res["summary"] = {k: summary(v) for k, v in res["phases"].items()}
    (out / "sustained.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res["summary"], indent=1))


if __name__ == "__main__":
    main()
