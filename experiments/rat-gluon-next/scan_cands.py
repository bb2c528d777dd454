"""The scans' launch shapes on the GPU (twenty-eighth session): scan_kernel (the prefill's launch with self logits,
and the training's with RoPE_c(kt)) and bwd_scan_kernel (rat/gluon's, finishing dq from a 16-bit or float32
accumulator) at chunks side by side NC and warps W, against rat/gluon's launches (scan 16 x 4, backward scan 8 x 4).

Each candidate's outputs are compared with the default's (the per-row math is the same, so they must be equal);
times are medians of interleaved rounds (CUDA events around REPS launches, the order reversed every round).
Writes $OUT/scan_cands.json and prints a table. Run from the repository root: `PYTHONPATH=. python
experiments/rat-gluon-next/scan_cands.py [--rounds 7]`."""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics

import torch

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.triton import rope_tables

TOKENS = 131072
H = 16
FWD = [(16, 4), (8, 4), (32, 4), (16, 8), (16, 2)]
BWD = [(8, 4), (4, 4), (16, 4), (8, 2), (8, 8)]


def _inputs(T: int, D: int, L: int, dev: torch.device) -> dict:
    B = TOKENS // T
    g = torch.Generator(device=dev).manual_seed(0)

    def r(*s, dt=torch.bfloat16):
        return torch.randn(*s, device=dev, dtype=torch.float32, generator=g).to(dt)

    C = T // L
    x = {n: r(B, T, H, D) for n in ("q", "k", "v", "do", "ktr", "vt")}
    x["f"] = torch.sigmoid(r(B, T, H, D, dt=torch.float32)).to(torch.bfloat16)
    x["qr"] = r(B * H, T, D)
    x["lse"] = r(B * H, T, dt=torch.float32) + 8.0
    x["delta"] = r(B * H, T, dt=torch.float32)
    x["dke"] = r(B * H, C, D, dt=torch.float32)
    x["dve"] = r(B * H, C, D, dt=torch.float32)
    x["acc32"] = r(B * H, T, D, dt=torch.float32)
    x["acc16"] = x["acc32"].to(torch.bfloat16)
    x["cos"], x["sin"] = rope_tables(C, D, dev)
    return x


def _fwd(x: dict, T: int, D: int, L: int, nc: int, w: int, prefill: bool):
    q, k, v, f = x["q"], x["k"], x["v"], x["f"]
    B = q.shape[0]
    C = T // L
    o_ktr = torch.empty_like(q)
    vt = torch.empty_like(q)
    ke = torch.empty(B, H, C, D, device=q.device, dtype=q.dtype)
    ve = torch.empty_like(ke)
    ss = torch.empty(B * H, T, device=q.device, dtype=torch.float32)

    def launch():
        K.scan_kernel[(math.ceil(C / nc), B * H)](
            k, v, f, x["cos"], x["sin"], o_ktr, vt, ke, ve, q, q, q, ss if prefill else q,
            k.stride(0), k.stride(1), k.stride(2), q.stride(0), q.stride(1), q.stride(2),
            ke.stride(0), ke.stride(1), ke.stride(2), q.stride(0), q.stride(1), q.stride(2), T, H, C, L,
            L=L, NC=nc, HALF=D // 2, ROPE=True, WRITE_LAST=False, SELF_LOGIT=prefill, WRITE_KT=not prefill,
            num_warps=w, num_stages=1)

    outs = [vt, ke, ve] + ([ss] if prefill else [o_ktr])
    return launch, outs


def _bwd(x: dict, T: int, D: int, L: int, nc: int, w: int, acc16: bool):
    q = x["q"]
    B = q.shape[0]
    C = T // L
    dk, dv, df, dq = (torch.empty_like(q) for _ in range(4))
    acc = x["acc16" if acc16 else "acc32"]
    ins = (q.stride(0), q.stride(1), q.stride(2))
    scale = D ** -0.5

    def launch():
        K.bwd_scan_kernel[(math.ceil(C / nc), B * H)](
            x["qr"], x["k"], x["v"], x["f"], x["ktr"], x["vt"], x["do"], x["lse"], x["delta"], x["cos"], x["sin"],
            x["dke"], x["dve"], dk, dv, df, acc, dq, *ins, *ins, T, H, C, L, scale, scale * K.LOG2E, T,
            L=L, NC=nc, HALF=D // 2, ROPE=True, DQ_OUT=True, num_warps=w, num_stages=1)

    return launch, [dk, dv, df, dq]


def _time(launch, reps: int) -> float:
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        launch()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--shapes", default="64:16,128:16,128:64", help="D:L pairs")
    args = ap.parse_args()
    dev = torch.device("cuda")
    T = 4096
    rows = []
    for shape in args.shapes.split(","):
        D, L = (int(s) for s in shape.split(":"))
        x = _inputs(T, D, L, dev)
        kinds = [("scan prefill", FWD, _fwd, True), ("scan train", FWD, _fwd, False),
                 ("bwd_scan acc16", BWD, _bwd, True), ("bwd_scan acc32", BWD, _bwd, False)]
        for kind, cands, make, flag in kinds:
            built = []
            for nc, w in cands:
                launch, outs = make(x, T, D, L, nc, w, flag)
                launch()
                torch.cuda.synchronize()
                built.append(((nc, w), launch, [o.clone() for o in outs]))
            ref = built[0][2]
            times = {c: [] for c, _, _ in built}
            for rnd in range(args.rounds):
                order = built if rnd % 2 == 0 else built[::-1]
                for c, launch, _ in order:
                    times[c].append(_time(launch, args.reps))
            base = statistics.median(times[built[0][0]])
            for c, _, outs in built:
                diff = max((o.float() - r.float()).abs().max().item() for o, r in zip(outs, ref))
                med = statistics.median(times[c])
                row = {"D": D, "L": L, "T": T, "kind": kind, "nc": c[0], "warps": c[1], "ms": med,
                       "rounds_ms": times[c], "vs_default": med / base, "max_diff_vs_default": diff}
                rows.append(row)
                print(f"D {D:3d} L {L:2d} {kind:15s} nc {c[0]:2d} w {c[1]}: {med:.4f} ms ({med / base:.3f}x) "
                      f"diff {diff:.3g}", flush=True)
        x.clear()
        torch.cuda.empty_cache()
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "scan_cands.json"), "w") as fh:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
