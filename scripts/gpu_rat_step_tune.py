"""rat/triton decode step: launch-parameter sweep (slot block, warps, pipeline stages, slot splits) at the
shapes that matter, on one GPU.

    OUT=/some/dir python scripts/gpu_rat_step_tune.py [--budget 150] [--shapes issue4,layer,model] [--dry-run]

Shapes (bf16, H = 16, D = 128, L = 16; the step at position p writes slot p // 16 and attends slots 0..p // 16):
  issue4  B = 64,   p = 16384 (issue 4's target: <= 1.1x SDPA over the same slots)
  layer   B = 512,  p = 4095  (the paper's gen point, Figure 3)
  model   B = 2296, p = 3584  (Table 1: the 1.3B model's batch, halfway through generation)
Per configuration: the output and the updated state against the default configuration's on the same inputs
(max |diff|; bf16), then triton.testing.do_bench median of one step, the chunk-cache bytes it must read
(K and V of slots 0..c) over that time, and SDPA alone over the same slots for reference. Writes
$OUT/rat_step_tune.json after every row; prints a table last. --budget (s): no new configuration starts after
it. --dry-run: Triton's CPU interpreter, fp32, tiny shapes, two configurations, nothing timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common  # first: --dry-run picks the interpreter before kernels are defined
import torch

import impls.rat.triton as RT
from impls.rat.triton import RATTriton

DRY = _common.DRY_RUN
DEV = "cpu" if DRY else "cuda"
H, D, L = (2, 32, 4) if DRY else (16, 128, 16)
SHAPES = {"issue4": (64, 16384), "layer": (512, 4095), "model": (2296, 3584)}
DRY_SHAPES = {"issue4": (2, 37), "layer": (3, 20), "model": (2, 9)}
#: (step_bn, step_warps, step_stages, step_splits); None = impls.rat.triton.step_launch's rule (the first row)
AUTO = (None, None, 1, None)
CONFIGS = [(bn, w, s, None) for bn in (128, 64, 256) for w in (4, 8, 2) for s in (1, 2, 3)]


def make(B: int, p: int, cfg: RT.RATTritonConfig | None) -> tuple:
    impl = RATTriton(cfg)
    dt = torch.float32 if DRY else torch.bfloat16
    st = impl.init_state(B, H, D, p + L, device=DEV, dtype=dt, chunk_size=L)
    g = torch.Generator(device=DEV).manual_seed(0)
    st.k_cache.copy_(torch.randn(st.k_cache.shape, generator=g, device=DEV))
    st.v_cache.copy_(torch.randn(st.v_cache.shape, generator=g, device=DEV))
    st.kt.copy_(torch.randn(st.kt.shape, generator=g, device=DEV))
    st.vt.copy_(torch.randn(st.vt.shape, generator=g, device=DEV))
    x = [torch.randn(B, H, D, generator=g, device=DEV).to(dt) for _ in range(3)]
    f = torch.sigmoid(torch.randn(B, H, D, generator=g, device=DEV) + 2).to(dt)
    return impl, st, x + [f]


def one(name: str, B: int, p: int, conf: tuple, ref: dict | None) -> dict:
    """One configuration: its outputs (ref None: returned as the reference, not timed) or its row."""
    bn, w, s, sp = conf
    base = RT.INTERPRET_CONFIG if DRY else RT._cfg(None, 1 << 30, torch.bfloat16)
    cfg = dataclasses.replace(base, step_bn=bn, step_warps=w, step_stages=s, step_splits=sp)
    impl, st, x = make(B, p, cfg)
    st.pos = p
    o = impl.step(st, *x)
    sp_, bn_, w_ = RT.step_launch(cfg, B * H, p // L, None if DRY else torch.cuda.get_device_properties(0).multi_processor_count)
    row = {"shape": name, "B": B, "pos": p, "step_bn": bn_, "warps": w_, "stages": s, "splits": sp_,
           "auto": conf == AUTO}
    # clones: the timing below keeps stepping this state (a reference must not change under it)
    out = {"o": o.float().clone(), "kt": st.kt.float().clone(), "k_slot": st.k_cache[:, :, p // L].float().clone()}
    if ref is None:
        return {**row, "_ref": out}
    row["max_diff"] = max(float((out[k] - ref[k]).abs().max()) for k in out)
    if not DRY:
        from triton.testing import do_bench

        def step() -> None:  # the same position every call (the running state keeps evolving: same cost)
            st.pos = p
            impl.step(st, *x)

        c = p // L
        row["step_only_ms"] = do_bench(step, warmup=10, rep=100, return_mode="median")
        nbytes = 2 * B * H * (c + 1) * D * st.k_cache.element_size()
        row["cache_gbps"] = nbytes / (row["step_only_ms"] * 1e-3) / 1e9
        qs = x[0][:, :, None]
        kc, vc = st.k_cache[:, :, : c + 1], st.v_cache[:, :, : c + 1]
        row["sdpa_ms"] = do_bench(lambda: torch.nn.functional.scaled_dot_product_attention(qs, kc, vc),
                                  warmup=10, rep=100, return_mode="median")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=150.0)
    ap.add_argument("--shapes", default="issue4,layer,model")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    shapes = DRY_SHAPES if DRY else SHAPES
    names = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in names if s not in shapes]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; known: {list(shapes)}")
    res = _common.Results("rat_step_tune.json", {"env": _common.env_info(ROOT, DRY), "rows": []})
    confs = CONFIGS[:2] if DRY else CONFIGS
    for name in names:
        B, p = shapes[name]
        default = (RT.INTERPRET_CONFIG.step_bn, 4, 1, None) if DRY else AUTO
        ref = one(name, B, p, default, None)["_ref"]
        for conf in ([default] + confs):
            if _common.over_budget(args.budget, 1.0, f"{name} {conf}"):
                break
            if DRY and conf[0] != default[0]:
                conf = (default[0], *conf[1:])
            res.add("rows", _common.run_row(one, name, B, p, conf, ref, shape=name, conf=list(conf)))
        torch.cuda.empty_cache() if not DRY else None
    rows = [r for r in res.res["rows"] if "error" not in r]
    print("\n== rat/triton decode step sweep (bf16, H 16, D 128, L 16) ==")
    print(f"{'shape':7s} {'B':>5s} {'pos':>6s} {'bn':>4s} {'w':>2s} {'s':>2s} {'step ms':>8s} {'GB/s':>6s} "
          f"{'sdpa ms':>8s} {'diff':>8s}")
    for r in rows:
        print(f"{r['shape'] + ('*' if r['auto'] else ''):7s} {r['B']:5d} {r['pos']:6d} {r['step_bn']:4d} {r['warps']:2d} {r['stages']:2d} "
              f"{r.get('step_only_ms', float('nan')):8.4f} {r.get('cache_gbps', float('nan')):6.0f} "
              f"{r.get('sdpa_ms', float('nan')):8.4f} {r.get('max_diff', float('nan')):8.1e}")
    for name in names:
        sub = [r for r in rows if r["shape"] == name and "step_only_ms" in r]
        if sub:
            b = min(sub, key=lambda r: r["step_only_ms"])
            print(f"best {name}: bn {b['step_bn']} warps {b['warps']} stages {b['stages']}: {b['step_only_ms']:.4f} ms "
                  f"(first row, *: the automatic rule: {sub[0]['step_only_ms']:.4f} ms)")


if __name__ == "__main__":
    main()
