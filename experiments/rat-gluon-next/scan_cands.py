"""The scans' launch shapes on the GPU (twenty-eighth session; measured on an H100 in the twenty-ninth): scan_kernel
(the prefill's launch with self logits, and the training's with RoPE_c(kt)) and bwd_scan_kernel (rat/gluon's,
finishing dq from a 16-bit or float32 accumulator) at chunks side by side NC and warps W, against the launches
rat/gluon had before the twenty-ninth session (scan 16 x 4, backward scan 8 x 4; since then the backward scan's per
head dim and accumulator: impls.rat.gluon.BSCAN_NC).

Each candidate's outputs are compared with the default's (measured: the forward scan's within 2e-6, the backward
scan's within one bf16 rounding); times are medians of interleaved rounds (experiments/_ab.py). Appends a row per
shape and kind to $OUT/scan_cands.json as it goes. Run from the repository root: `PYTHONPATH=. python
experiments/rat-gluon-next/scan_cands.py [--shapes 64:16,128:16] [--rounds 7]`."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch

from experiments._ab import compare_time_record, rat_inputs, result_header
from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.triton import rope_tables

TOKENS = 131072
H = 16
FWD = [(16, 4), (8, 4), (32, 4), (16, 8), (16, 2)]
BWD = [(8, 4), (4, 4), (16, 4), (8, 2), (8, 8)]


def _inputs(T: int, D: int, L: int, dev: torch.device) -> dict:
    B = TOKENS // T
    C = T // L
    (q, k, v, f), do = rat_inputs(B, T, H, D, device=dev.type)
    g = torch.Generator(device=dev).manual_seed(1)

    def r(*s, dt=torch.bfloat16):
        return torch.randn(*s, device=dev, generator=g).to(dt)

    x = {"q": q, "k": k, "v": v, "f": f, "do": do, "ktr": r(B, T, H, D), "vt": r(B, T, H, D), "qr": r(B * H, T, D)}
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shapes", default="64:16,128:16,128:64", help="D:L pairs")
    args = ap.parse_args()
    dev = torch.device("cuda")
    T = 4096
    res = result_header(script="scan_cands.py", tokens=TOKENS, heads=H, seq_len=T)
    path = Path(os.environ.get("OUT", ".")) / "scan_cands.json"
    kinds = [("scan prefill", FWD, _fwd, True), ("scan train", FWD, _fwd, False),
             ("bwd_scan acc16", BWD, _bwd, True), ("bwd_scan acc32", BWD, _bwd, False)]
    for shape in args.shapes.split(","):
        D, L = (int(s) for s in shape.split(":"))
        x = _inputs(T, D, L, dev)
        for kind, cands, make, flag in kinds:
            fns, got = {}, {}
            for nc, w in cands:
                launch, outs = make(x, T, D, L, nc, w, flag)
                launch()
                fns[f"{nc}x{w}"] = launch
                got[f"{nc}x{w}"] = [o.clone() for o in outs]
            default = f"{cands[0][0]}x{cands[0][1]}"
            row = {"D": D, "L": L, "kind": kind, "default": default}
            compare_time_record(res, row, got, fns, lambda _n, d=default: d, path, args.rounds)
        x.clear()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
