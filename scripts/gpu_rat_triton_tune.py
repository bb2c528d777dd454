"""Per-kernel times of rat/triton (forward + backward) for several tile configurations, on one GPU.

    OUT=/some/dir python scripts/gpu_rat_triton_tune.py [--ts 4096,131072] [--reps 10]

bf16, H = 16, D = 128, L = 16, 131072 tokens per batch. Config i sets option i of every stage at
once (the stages are separate launches, so one run times one option of each); the stage times come
from CUDA events around each launch (impls.rat.triton.STAGE_EVENTS), median over --reps runs after
warm-up. Prints, per T, a table stage x option and the best option per stage; writes
$OUT/rat_triton_tune.json. FLOP counts per stage are written next to the times (TF/s).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch

import impls.rat.triton as RT
from impls.rat.triton import DEFAULT_CONFIG, RATTriton

# sweep 4 (earlier sweeps' options are in reports/rat-triton/*tune*.json): full-head-dim kernels
# (fwd: V/accumulator over D; dK/dV: all products over D) against the two-halves kernels.
# FWD: (BM, BN, warps, stages, full_v); DKV: (BN, BM, warps, stages, reverse, full)
FWD = [(128, 128, 8, 3, True), (128, 128, 8, 3, False), (128, 64, 8, 3, True), (128, 128, 8, 3, False)]
DKV = [(128, 64, 8, 4, True, True), (128, 64, 8, 4, True, False), (128, 64, 8, 3, True, True),
       (128, 32, 8, 3, True, True)]
DQ = [(128, 64, 8, 3)] * 4
SCAN = [(16, 4)] * 4
BSCAN = [(4, 4)] * 4
PRE = [32] * 4
STEP = [(128, 4, 1), (128, 4, 2), (256, 4, 1), (256, 8, 1)]


def config(i: int) -> RT.RATTritonConfig:
    fb, fn, fw, fs, ffv = FWD[i]
    kb, km, kw, ks, kr, kf = DKV[i]
    qb, qn, qw, qs = DQ[i]
    nc, sw = SCAN[i]
    bn_, bw = BSCAN[i]
    return dataclasses.replace(DEFAULT_CONFIG, fwd_bm=fb, fwd_bn=fn, fwd_warps=fw, fwd_stages=fs, fwd_full_v=ffv,
                               dkv_bn=kb, dkv_bm=km, dkv_warps=kw, dkv_stages=ks, dkv_reverse=kr, dkv_full=kf,
                               dq_bm=qb, dq_bn=qn, dq_warps=qw, dq_stages=qs, scan_nc=nc, scan_warps=sw,
                               bscan_nc=bn_, bscan_warps=bw, pre_bm=PRE[i])


def label(stage: str, i: int) -> str:
    return {"fwd": str(FWD[i]), "bwd_dkv": str(DKV[i]), "bwd_dq": str(DQ[i]), "scan": str(SCAN[i]),
            "bwd_scan": str(BSCAN[i]), "bwd_pre": str(PRE[i])}[stage]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", default="4096,131072")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--configs", default="0,1,2,3")
    ap.add_argument("--no-decode", action="store_true")
    args = ap.parse_args()
    H, D, L, TOKENS = 16, 128, 16, 131072
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": {}}
    import triton
    out["triton"] = triton.__version__
    t_start = time.time()
    for T in [int(x) for x in args.ts.split(",")]:
        B = TOKENS // T
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
        f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 1).bfloat16()
        do = torch.randn_like(q)
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v, f)]
        C = T // L
        mm = 2 * B * H * T * C * D / 2  # one T x C/2 x D matmul (causal at chunk granularity)
        flops = {"fwd": 2 * mm, "bwd_dkv": 4 * mm, "bwd_dq": 3 * mm}
        table = {}
        for i in [int(x) for x in args.configs.split(",")]:
            impl = RATTriton(config(i))
            for _ in range(3):
                o = impl.forward(*leaves, chunk_size=L)
                torch.autograd.grad(o, leaves, do)
            torch.cuda.synchronize()
            runs: dict[str, list[float]] = {}
            for _ in range(args.reps):
                RT.STAGE_EVENTS = []
                o = impl.forward(*leaves, chunk_size=L)
                torch.autograd.grad(o, leaves, do)
                torch.cuda.synchronize()
                for name, s, e in RT.STAGE_EVENTS:
                    runs.setdefault(name, []).append(s.elapsed_time(e))
                RT.STAGE_EVENTS = None
            table[i] = {n: statistics.median(x) for n, x in runs.items()}
            table[i]["total"] = sum(table[i].values())
            print(f"T={T} config {i}: " + " ".join(f"{n}={t:.3f}" for n, t in table[i].items()), flush=True)
        stages = [s for s in table[next(iter(table))] if s != "total"]
        best = {}
        for s in stages:
            i = min(table, key=lambda j: table[j][s])
            tf = flops.get(s, 0) / (table[i][s] * 1e-3) / 1e12
            best[s] = {"option": label(s, i), "ms": table[i][s], "tflops": tf}
        bf = min(table, key=lambda j: table[j]["fwd"])
        bk = min(table, key=lambda j: table[j]["bwd_dkv"])
        f_, k_ = FWD[bf], DKV[bk]
        override = (f"fwd_bm={f_[0]},fwd_bn={f_[1]},fwd_warps={f_[2]},fwd_stages={f_[3]},fwd_full_v={f_[4]},"
                    f"dkv_bn={k_[0]},dkv_bm={k_[1]},dkv_warps={k_[2]},dkv_stages={k_[3]},dkv_reverse={k_[4]},"
                    f"dkv_full={k_[5]}")
        print(f"T={T} override: {override}", flush=True)
        out["results"][T] = {"B": B, "table": table, "best": best, "override": override,
                             "best_total_ms": sum(b["ms"] for b in best.values())}
        print(f"T={T} best: " + json.dumps(best), flush=True)
        with open(os.path.join(os.environ.get("OUT", "/tmp"), "rat_triton_tune.json"), "w") as fh:
            json.dump(out, fh, indent=1)
        del q, k, v, f, do, leaves
        torch.cuda.empty_cache()
    # decode step variants (step_bn, step_warps, splits) at B = 64, T = 16384, position T (1025 slots)
    from triton.testing import do_bench
    B, T = 64, 16384
    dec = []
    for bn, w, sp in ([] if args.no_decode else STEP):
        impl = RATTriton(dataclasses.replace(DEFAULT_CONFIG, step_bn=bn, step_warps=w, step_splits=sp))
        st = impl.init_state(B, H, D, T + L, device="cuda", dtype=torch.bfloat16, chunk_size=L)
        st.k_cache.normal_()
        st.v_cache.normal_()
        x = [torch.randn(B, H, D, device="cuda").bfloat16() for _ in range(4)]

        def step(st=st, impl=impl, x=x):
            st.pos = T
            impl.step(st, *x)

        ms = do_bench(step, warmup=20, rep=200, return_mode="median")
        qs, kc, vc = x[0][:, :, None], st.k_cache[:, :, : T // L + 1], st.v_cache[:, :, : T // L + 1]
        sd = do_bench(lambda qs=qs, kc=kc, vc=vc: torch.nn.functional.scaled_dot_product_attention(qs, kc, vc),
                      warmup=20, rep=200, return_mode="median")
        dec.append({"step_bn": bn, "warps": w, "splits": sp, "step_ms": ms, "sdpa_ms": sd})
        print(json.dumps(dec[-1]), flush=True)
    out["decode"] = dec
    with open(os.path.join(os.environ.get("OUT", "/tmp"), "rat_triton_tune.json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"\n== best per stage (ms, TF/s) == total {time.time() - t_start:.0f} s")
    for T, r in out["results"].items():
        print(f"T={T} B={r['B']} sum of best stages {r['best_total_ms']:.2f} ms")
        for s, b in r["best"].items():
            print(f"  {s:9s} {b['ms']:8.3f} ms  {b['tflops']:6.1f} TF/s  {b['option']}")


if __name__ == "__main__":
    main()
