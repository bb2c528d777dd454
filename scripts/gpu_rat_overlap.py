"""rat/triton launch variants against the default at 128k, one GPU: which tile / stage setting of the kernels
makes training faster. Each variant overrides fields of the config rat/triton picks at 128k (RATTritonConfig:
tiles, warps, stages, backward). The kernel variants studied with it (v8 fwd_pipe, v9 exp2 on the FMA pipe, v11
fused dq by TMA) were measured and removed: impls/rat/NOTES.md, "Removed variants" (their last commits).

    OUT=/some/dir python scripts/gpu_rat_overlap.py [--budget 110] [--variants a,b] [--reps 10] [--dry-run]

(a) correctness per variant: bf16, T = 4096, B = 1, H = 4, D = 128, L = 16, outputs over NaN-poisoned
memory: max|x - ref64| for o, dq, dk, dv, df against the float64 reference, pass if <= 2x the error of the
same reference math in bf16 (FlashAttention's rule; the variant's lse feeds the whole backward).
(b) timing per variant at T = 131072, B = 1, H = 16, D = 128, L = 16, bf16, triton.testing.do_bench medians:
the forward attention kernel alone and the dK/dV kernel alone (launches kept by impls.rat.triton.LAUNCHES
from one train step, re-run on its tensors), the whole train step (forward + autograd.grad of q, k, v, f);
also every stage's median from CUDA events around its launch (STAGE_EVENTS) over --reps train steps. --budget (s):
no new variant starts past 85% of it (about 8-10 s per variant with compiles). Writes $OUT/rat_overlap.json after
each row; prints a table last. --dry-run: Triton's CPU interpreter, tiny shapes, fp32, interpreter tiles with the
variants' switches (tile overrides dropped), nothing timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common  # first: --dry-run picks the interpreter before kernels are defined
import gpu_rat_triton
import torch

import impls.rat.triton as RT
from impls.rat.triton import RATTriton

DRY = _common.DRY_RUN
DEV = "cpu" if DRY else "cuda"

#: name -> overrides of the config rat/triton picks at 128k (the default: fwd 128x128, 8 warps, 3 stages; backward
#: "dq_first": bwd_dq_pre 128x64 s3, bwd_dkv_early 128/64 8 warps s3). Measured in session 4 (run10_tiles: none
#: beats the default) and session 3 (bn64, run5_overlap_v8).
VARIANTS: dict[str, dict] = {  # most informative first (--budget drops the tail)
    "default": {},
    "bn64": {"fwd_bn": 64},
    # the float32 path's kernels (bwd_pre, bwd_dkv at 4 stages, bwd_dq) on 16-bit inputs: the default before session 4
    "plain backward s4": {"backward": "plain", "dkv_stages": 4},
    # session 4: tile settings of the default's two backward kernels
    "dq_pre 128x64 s4": {"dq_stages": 4},
    "dq_pre 128x64 s2": {"dq_stages": 2},
    "dq_pre 128x128 s2": {"dq_bn": 128, "dq_stages": 2},
    "dq_pre 64x128 s3": {"dq_bm": 64, "dq_bn": 128},
    "early 128x64 s2": {"dkv_stages": 2},
    "early 64x64 w8 s3": {"dkv_bn": 64, "dkv_bm": 64},
}
#: the fields kept in --dry-run (tile and stage overrides are dropped there)
SWITCHES = ("backward",)


def config(name: str, n_chunks: int) -> RT.RATTritonConfig:
    ov = VARIANTS[name]
    if DRY:
        return dataclasses.replace(RT.INTERPRET_CONFIG, **{k: v for k, v in ov.items() if k in SWITCHES})
    return dataclasses.replace(RT._cfg(None, n_chunks, torch.bfloat16), **ov)


def check(name: str, T: int, H: int, D: int, L: int, n_chunks: int) -> dict:
    """FA-rule check of one variant with the tile config it is timed with (that of n_chunks chunk ends)."""
    dt = torch.float32 if DRY else torch.bfloat16
    return {"variant": name, **gpu_rat_triton.check(T, H, D, L, dt, impl=RATTriton(config(name, n_chunks)))}


def timing(name: str, T: int, H: int, D: int, L: int, reps: int) -> dict:
    impl = RATTriton(config(name, T // L))
    q, k, v, f = _common.rat_inputs(1, T, H, D, torch.float32 if DRY else torch.bfloat16, 1, DEV)
    _, train = _common.train_prefill_fns(lambda *a: impl.forward(*a, chunk_size=L), (q, k, v, f))
    RT.LAUNCHES = {}
    train()  # compiles; keeps this step's fwd and bwd_dkv launches (inputs alive) for timing them alone
    launches, RT.LAUNCHES = RT.LAUNCHES, None
    alone = {f"{n}_alone_ms": _common.bench(fn, 20.0, dry=DRY) for n, fn in sorted(launches.items())}
    del launches
    stages = {} if DRY else _common.stage_medians(train, reps)
    C = T // L
    mm = 2 * H * T * C * D / 2  # one T x C/2 x D product (B = 1)
    row = {"variant": name, "T": T, "H": H, "D": D, "L": L, "config": dataclasses.asdict(impl.config),
           **alone, "stages_ms": stages, "stage_sum_ms": sum(stages.values()) if stages else float("nan"),
           "fwd_tflops": 2 * mm / (alone["fwd_alone_ms"] * 1e-3) / 1e12,
           "dkv_tflops": 4 * mm / (alone["bwd_dkv_alone_ms"] * 1e-3) / 1e12,
           "train_ms": _common.bench(train, 45.0, dry=DRY)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=110.0)
    ap.add_argument("--variants", default="", help="comma-separated VARIANTS names (default: all)")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    names = [x for x in args.variants.split(",") if x] or list(VARIANTS)
    unknown = [x for x in names if x not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    ck = (64, 1, 32, 4) if DRY else (4096, 4, 128, 16)
    tm = (64, 2, 32, 4) if DRY else (131072, 16, 128, 16)
    out = _common.Results("rat_overlap.json", {"env": _common.env_info(ROOT, DRY, sm_count=True),
                                               "variants": VARIANTS, "checks": [], "timing": []})
    for name in names:
        if _common.over_budget(args.budget, 0.85, f"variant {name}"):
            break
        out.add("checks", _common.run_row(check, name, *ck, tm[0] // tm[3], variant=name))
        out.add("timing", _common.run_row(timing, name, *tm, args.reps, variant=name))
        if not DRY:
            torch.cuda.empty_cache()
    print(f"\n== rat/triton launch variants (T = {tm[0]}, H = {tm[1]}, D = {tm[2]}, L = {tm[3]}, {'fp32 interpreter' if DRY else 'bf16'}; "
          f"{_common.elapsed():.0f} s) ==")
    print(f"{'variant':30s} {'check':6s} {'fwd ms':>7s} {'TF/s':>5s} {'dkv ms':>7s} {'TF/s':>5s} {'pre ms':>6s} {'dq ms':>6s} "
          f"{'stages':>7s} {'train ms':>8s}")
    chk = {r["variant"]: r.get("pass", "error") for r in out.res["checks"]}
    nan = float("nan")
    for r in out.res["timing"]:
        s = r.get("stages_ms", {})
        print(f"{r['variant']:30s} {chk.get(r['variant'])!s:6s} {r.get('fwd_alone_ms', nan):7.2f} "
              f"{r.get('fwd_tflops', nan):5.0f} {r.get('bwd_dkv_alone_ms', nan):7.2f} {r.get('dkv_tflops', nan):5.0f} "
              f"{s.get('bwd_pre', nan):6.2f} {s.get('bwd_dq', s.get('bwd_dq_pre', nan)):6.2f} {r.get('stage_sum_ms', nan):7.2f} {r.get('train_ms', nan):8.2f}"
              + (f"  ERROR {r['error'][:80]}" if "error" in r else ""))
    print("(fwd, dkv: the kernel alone, do_bench; pre (Delta, RoPE(q)), dq: CUDA-event medians, dq_first: bwd_dq_pre "
          "(dq + Delta + RoPE(q)), no pre; stages: sum of the event medians; train: do_bench of forward + backward)")


if __name__ == "__main__":
    main()
