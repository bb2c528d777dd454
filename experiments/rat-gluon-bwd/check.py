"""rat/gluon's 5-product backward (backward="gluon_ws") beside rat/triton's: gradients compared (to each other and
to float64), then the attention backward kernels and the train step timed (interleaved do_bench). Runs at 7a5807a
(README.md). WS_FIELDS (JSON) sets more fields of rat/gluon's config, e.g. a version of experiments/rat-gluon-next."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import torch

from ratbench.impls.rat.gluon import GLUON_CONFIG
from ratbench.impls.rat.gluon.backward import gluon_backward
from ratbench.impls.rat.reference import RATReference
from ratbench.impls.rat.triton import DEFAULT_CONFIG, RATTriton, _dkv, _dq_pre, rat_forward, rope_tables

WS = dataclasses.replace(GLUON_CONFIG, backward="gluon_ws")
if os.environ.get("WS_FIELDS"):  # more config fields as JSON, e.g. '{"fwd_self_logit": "off"}'
    WS = dataclasses.replace(WS, **json.loads(os.environ["WS_FIELDS"]))


def inputs(B, T, H, D, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(dtype) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).to(dtype)
    do = torch.randn(B, T, H, D, device="cuda", generator=g).to(dtype)
    return q, k, v, f, do


def grads(impl, xs, do, L, rope):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    o = impl.forward(*xs, chunk_size=L, rope=rope) if rope is not None else impl.forward(*xs, chunk_size=L)
    o.backward(do)
    return [x.grad for x in xs]


def check(B, T, H, D, L, dtype, rope) -> dict:
    q, k, v, f, do = inputs(B, T, H, D, dtype)
    gt = grads(RATTriton(DEFAULT_CONFIG), (q, k, v, f), do, L, rope)
    gg = grads(RATTriton(WS), (q, k, v, f), do, L, rope)
    torch.cuda.synchronize()
    rec = {"B": B, "T": T, "H": H, "D": D, "L": L, "dtype": str(dtype), "rope": rope}
    for n, a, b in zip("qkvf", gg, gt):
        rec[f"d{n}_gluon_vs_triton"] = (a.float() - b.float()).abs().max().item()
        rec[f"d{n}_finite"] = bool(torch.isfinite(a).all())
    if T <= 4096:
        gr = grads(RATReference(), [x.double() for x in (q, k, v, f)], do.double(), L, rope)
        for n, a, b, r in zip("qkvf", gg, gt, gr):
            rec[f"d{n}_gluon_f64"] = (a.double() - r).abs().max().item()
            rec[f"d{n}_triton_f64"] = (b.double() - r).abs().max().item()
    return rec


def time_bwd(T, tokens, H, D, L) -> dict:
    from triton.testing import do_bench
    B = max(1, tokens // T)
    q, k, v, f, do = inputs(B, T, H, D, torch.bfloat16)
    scale = D ** -0.5
    o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, scale, GLUON_CONFIG, need_lse=True)
    C = math.ceil(T / L)
    cos, sin = rope_tables(C, D, q.device)
    cfg = DEFAULT_CONFIG
    delta = torch.empty(B * H, T, device=q.device, dtype=torch.float32)
    qr = torch.empty(B * H, T, D, device=q.device, dtype=q.dtype)

    def tri():
        _dq_pre(q, o, ktr, vt, do, cos, sin, ke, ve, lse, delta, qr, L, True, scale, cfg)
        _dkv(qr, do, lse, delta, ke, ve, o, L, scale, cfg)

    def glu():
        gluon_backward(do, q, o, lse, ktr, vt, ke, ve, cos, sin, L, True, scale)

    flops5 = 5 * 2 * B * H * sum(min(t // L, C) for t in range(T)) * D
    out = {"T": T, "B": B, "D": D, "L": L, "flops_5products": flops5}
    for fn in (tri, glu):
        fn()
    torch.cuda.synchronize()
    ms = {"triton": [], "gluon": []}
    for _ in range(3):
        for name, fn in (("triton", tri), ("gluon", glu)):
            ms[name].append(do_bench(fn, warmup=10, rep=100))
    for name, vals in ms.items():
        out[name + "_ms"] = sorted(vals)[1]
        out[name + "_all"] = vals
    out["gluon_tflops_5"] = flops5 / out["gluon_ms"] / 1e9
    # the Gluon kernel alone (profiler)
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            glu()
        torch.cuda.synchronize()
    kt = {}
    for e in prof.key_averages():
        if e.device_type.name == "CUDA":
            kt[e.key[:60]] = e.device_time_total / max(1, e.count) / 1e3
    out["gluon_kernels_ms"] = kt
    # train step (forward + backward) of rat/gluon with each backward, interleaved
    from ratbench.impls.rat.gluon import RATGluon
    xs = [x.detach().requires_grad_(True) for x in (q, k, v, f)]
    steps = {"gluon_default": RATGluon(), "gluon_ws_bwd": RATGluon(WS)}
    sm = {n: [] for n in steps}

    def step(impl):
        o = impl.forward(*xs, chunk_size=L)
        o.backward(do)
    for impl in steps.values():
        step(impl)
    torch.cuda.synchronize()
    for _ in range(3):
        for n, impl in steps.items():
            sm[n].append(do_bench(lambda impl=impl: step(impl), warmup=5, rep=60, grad_to_none=xs))
    out["step_ms"] = {n: sorted(v)[1] for n, v in sm.items()}
    out["step_all"] = sm
    return out


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": __import__("triton").__version__,
           "git": os.environ.get("RATBENCH_GIT_REV"), "checks": [], "timing": []}
    shapes = [(1, 4096, 4, 128, 16, torch.bfloat16, True), (2, 1000, 3, 128, 8, torch.bfloat16, True),
              (1, 2048, 4, 128, 1, torch.bfloat16, True), (1, 4096, 4, 64, 64, torch.bfloat16, True),
              (1, 4096, 4, 128, 16, torch.float16, False), (1, 40, 2, 128, 8, torch.bfloat16, True),
              (3, 2048, 2, 64, 16, torch.float16, True), (5, 300, 7, 64, 4, torch.bfloat16, True),
              (1, 32768, 4, 128, 16, torch.bfloat16, True), (1, 131072, 2, 128, 16, torch.bfloat16, True),
              (1, 4096, 2, 128, 2048, torch.bfloat16, True)]  # the last: two-level scans, dq by bwd_dq_post_kernel
    if os.environ.get("QUICK"):
        shapes = shapes[:2]
    if os.environ.get("TIMING_ONLY"):
        shapes = []
    for s in shapes:
        t = time.time()
        try:
            r = check(*s)
        except Exception as e:  # noqa: BLE001
            import traceback
            r = {"shape": str(s), "error": f"{type(e).__name__}: {str(e)[:600]}", "tb": traceback.format_exc()[-1500:]}
        r["s"] = round(time.time() - t, 2)
        res["checks"].append(r)
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items() if k != "tb"}), flush=True)
        (out / "gpu_bwd.json").write_text(json.dumps(res, indent=1))
    if os.environ.get("CHECKS_ONLY"):
        return
    for T in (4096, 32768, 131072):
        for D, L in ((128, 16), (64, 16), (128, 64)):
            try:
                r = time_bwd(T, 131072, 16, D, L)
            except Exception as e:  # noqa: BLE001
                r = {"T": T, "error": f"{type(e).__name__}: {str(e)[:600]}"}
            res["timing"].append(r)
            print(json.dumps(r), flush=True)
            (out / "gpu_bwd.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
