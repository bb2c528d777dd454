"""Per-kernel times of rat/triton (forward + backward) for several configurations, on one GPU.

    OUT=/some/dir python scripts/gpu_rat_triton_tune.py [--ts 131072,16384] [--reps 6]

bf16, H = 16, D = 128, L = 16, 131072 tokens per batch. Each SWEEP entry overrides fields of the config
rat/triton picks by itself for that T; stage times come from CUDA events around each launch
(impls.rat.triton.STAGE_EVENTS), median over --reps runs after warm-up. Prints per T a line per entry
(stage times, total) and the best entry; writes $OUT/rat_triton_tune.json with TF/s per product stage.
Earlier sweeps (tile sizes, stage counts, walk order) are in reports/rat-triton/*tune*.json. The decode step's
launch sweep is scripts/gpu_rat_step_tune.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common
import torch

import impls.rat.triton as RT
from impls.rat.triton import RATTriton

# the default (backward "dq_first" since session 4) against the plain backward of the sessions before (bwd_pre,
# bwd_dkv at 4 stages, bwd_dq: what float32 runs). Session 2's sweep 5 also timed the fused-dq and full-head-dim
# kernel variants, measured and removed since (impls/rat/NOTES.md, "Removed variants")
SWEEP: dict[str, dict] = {
    "default": {},
    "plain backward": {"backward": "plain", "dkv_stages": 4},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", default="131072,16384")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--configs", default="", help="comma-separated SWEEP names (default: all)")
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
        flops = {"fwd": 2 * mm, "bwd_dkv": 4 * mm, "bwd_dq": 3 * mm, "bwd_dq_pre": 3 * mm}
        table = {}
        base = RT._cfg(None, C, torch.bfloat16)
        for name in [x for x in args.configs.split(",") if x] or list(SWEEP):
            impl = RATTriton(dataclasses.replace(base, **SWEEP[name]))
            for _ in range(3):
                o = impl.forward(*leaves, chunk_size=L)
                torch.autograd.grad(o, leaves, do)
            def step(impl=impl, leaves=leaves, do=do) -> None:
                torch.autograd.grad(impl.forward(*leaves, chunk_size=L), leaves, do)

            table[name] = _common.stage_medians(step, args.reps)
            table[name]["total"] = sum(table[name].values())
            tf = {n: flops[n] / (table[name][n] * 1e-3) / 1e12 for n in flops if n in table[name]}
            print(f"T={T} {name:22s} " + " ".join(f"{n}={t:.3f}" for n, t in table[name].items())
                  + "  TF/s " + " ".join(f"{n}={x:.0f}" for n, x in tf.items()), flush=True)
        best = min(table, key=lambda j: table[j]["total"])
        out["results"][T] = {"B": B, "base_config": dataclasses.asdict(base), "table": table, "best": best,
                             "best_overrides": SWEEP[best], "best_total_ms": table[best]["total"]}
        print(f"T={T} best: {best} {table[best]['total']:.2f} ms", flush=True)
        with open(os.path.join(os.environ.get("OUT", "/tmp"), "rat_triton_tune.json"), "w") as fh:
            json.dump(out, fh, indent=1)
        del q, k, v, f, do, leaves
        torch.cuda.empty_cache()
    print(f"\n== fwd + bwd, sum of stage medians (ms) == total {time.time() - t_start:.0f} s")
    for T, r in out["results"].items():
        print(f"T={T} B={r['B']}: " + "  ".join(f"{n} {x['total']:.2f}" for n, x in r["table"].items())
              + f"  -> best {r['best']}")


if __name__ == "__main__":
    main()
