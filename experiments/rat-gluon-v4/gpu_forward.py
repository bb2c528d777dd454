"""rat/gluon's forward attention kernel beside rat/triton's, on one sm_90 GPU: outputs compared (o, lse, and the
float64 reference at small shapes), then both attention kernels alone timed by triton's do_bench at the issue-18
shapes. Writes a JSON of every number to $OUT/gpu_forward.json and prints a short table.

    OUT=/tmp/x python experiments/rat-gluon/gpu_forward.py [--ts 4096,32768,131072] [--tokens 131072]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import importlib.util

_spec = importlib.util.spec_from_file_location("fwd_v2", Path(__file__).parent / "forward_v2.py")
V2 = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(V2)

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.gluon import GLUON_CONFIG
from ratbench.impls.rat.gluon.forward import launch_forward
from ratbench.impls.rat.reference import RATReference
from ratbench.impls.rat.triton import DEFAULT_CONFIG, RATTriton, rat_forward, rope_tables


def inputs(B, T, H, D, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).to(dtype) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).to(dtype)
    return q, k, v, f


def check(B, T, H, D, L, dtype, rope, strided=False) -> dict:
    q, k, v, f = inputs(B, T, H, D, dtype)
    if strided:
        q = q.transpose(1, 2).contiguous().transpose(1, 2)
    scale = D ** -0.5
    o_t, lse_t, *_ = rat_forward(q, k, v, f, L, rope, scale, DEFAULT_CONFIG, need_lse=True)
    o_g, lse_g, *_ = rat_forward(q, k, v, f, L, rope, scale, GLUON_CONFIG, need_lse=True)
    torch.cuda.synchronize()
    rec = {"strided": strided, "B": B, "T": T, "H": H, "D": D, "L": L, "dtype": str(dtype), "rope": rope,
           "o_gluon_vs_triton": (o_g.float() - o_t.float()).abs().max().item(),
           "lse_gluon_vs_triton": (lse_g - lse_t).abs().max().item(),
           "finite": bool(torch.isfinite(o_g).all())}
    if T <= 4096:
        ref = RATReference().forward(*(x.double() for x in (q, k, v, f)), chunk_size=L, rope=rope)
        rec["o_gluon_vs_f64"] = (o_g.double() - ref).abs().max().item()
        rec["o_triton_vs_f64"] = (o_t.double() - ref).abs().max().item()
    return rec


def time_kernels(T, tokens, H, D, L) -> dict:
    from triton.testing import do_bench

    B = max(1, tokens // T)
    q, k, v, f = inputs(B, T, H, D, torch.bfloat16)
    scale = D ** -0.5
    o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, scale, DEFAULT_CONFIG, need_lse=True)
    C = math.ceil(T / L)
    cos, sin = rope_tables(C, D, q.device)
    cfg = DEFAULT_CONFIG
    scale2 = scale * K.LOG2E

    def tri():
        K.fwd_kernel[(math.ceil(T / cfg.fwd_bm), B * H)](
            q, ktr, vt, cos, sin, ke, ve, o, lse, q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1),
            o.stride(2), ke.stride(0), ke.stride(1), ke.stride(2), T, H, scale2, L=L, BM=cfg.fwd_bm, BN=cfg.fwd_bn,
            HALF=D // 2, ROPE=True, STORE_LSE=True, PREC="ieee", num_warps=cfg.fwd_warps, num_stages=cfg.fwd_stages)

    def glu():
        launch_forward(q, ktr, vt, cos, sin, ke, ve, o, lse, T, H, L, scale2, True, True)

    def glu2():
        V2.launch_forward(q, ktr, vt, cos, sin, ke, ve, o, lse, T, H, L, scale2, True, True)

    flops = 4 * B * H * sum(min(t // L, C) for t in range(T)) * D  # two products over the chunk ends j < c(t)
    out = {"T": T, "B": B, "D": D, "L": L}
    for name, fn in (("triton", tri), ("gluon", glu), ("gluon_v2", glu2)):
        fn()
        torch.cuda.synchronize()
        ms = do_bench(fn, warmup=25, rep=200)
        out[name + "_ms"] = ms
        out[name + "_tflops"] = flops / ms / 1e9
    prefill = {}
    for name, impl in (("triton", RATTriton()), ("gluon", RATTriton(GLUON_CONFIG))):
        fn = lambda impl=impl: impl.forward(q, k, v, f, chunk_size=L)
        with torch.no_grad():
            fn()
            prefill[name] = do_bench(fn, warmup=25, rep=200)
    out["op_forward_ms"] = prefill
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", default="4096,32768,131072")
    ap.add_argument("--tokens", type=int, default=131072)
    a = ap.parse_args()
    out = Path(os.environ.get("OUT", "/tmp"))
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "triton": __import__("triton").__version__, "checks": [], "timing": []}
    shapes = [(1, 4096, 4, 128, 16, torch.bfloat16, True), (2, 1000, 3, 128, 8, torch.bfloat16, True),
              (1, 2048, 4, 128, 1, torch.bfloat16, True), (1, 4096, 4, 64, 64, torch.bfloat16, True),
              (1, 4096, 4, 128, 16, torch.float16, False), (1, 40, 2, 128, 8, torch.bfloat16, True),
              (1, 32768, 4, 128, 16, torch.bfloat16, True), (3, 2048, 2, 64, 16, torch.float16, True),
              (2, 1000, 3, 128, 8, torch.bfloat16, True, True), (5, 300, 7, 64, 4, torch.bfloat16, True),
              (1, 131072, 2, 128, 16, torch.bfloat16, True)]
    for s in shapes:
        t = time.time()
        try:
            r = check(*s)
        except Exception as e:  # noqa: BLE001
            r = {"shape": str(s), "error": f"{type(e).__name__}: {str(e)[:400]}"}
        r["s"] = round(time.time() - t, 2)
        res["checks"].append(r)
        print(json.dumps(r), flush=True)
    if os.environ.get("CHECKS_ONLY"):
        return
    plan = [(T, 128, 16) for T in (int(x) for x in a.ts.split(",") if x)]
    plan += [(4096, 64, 16), (32768, 64, 16), (4096, 128, 64), (32768, 128, 64)]
    for T, D, L in plan:
        r = time_kernels(T, a.tokens, 16, D, L)
        res["timing"].append(r)
        print(json.dumps(r), flush=True)
    (out / "gpu_forward.json").write_text(json.dumps(res, indent=1))
    print("| T D L | triton fwd ms (TF/s) | gluon v4 fwd ms (TF/s) | gluon v2 | op fwd triton / gluon v4 ms |")
    for r in res["timing"]:
        print(f"| {r['T']} {r['D']} {r['L']} | {r['triton_ms']:.3f} ({r['triton_tflops']:.0f}) | {r['gluon_ms']:.3f} ({r['gluon_tflops']:.0f}) "
              f"| {r['gluon_v2_ms']:.3f} ({r['gluon_v2_tflops']:.0f}) "
              f"| {r['op_forward_ms']['triton']:.3f} / {r['op_forward_ms']['gluon']:.3f} |")


if __name__ == "__main__":
    main()
