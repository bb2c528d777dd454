"""A/B of bwd_ws_kernel launch variants (VARIANTS: launch_backward keyword arguments; now the work items' segment
length, b4) at the issue-18 shapes: outputs compared with the first variant, the kernel alone timed by interleaved
do_bench. b3 against b4 (b4-ab-seg.json) ran the kernel of b57a15e beside this one (`git show
b57a15e:impls/rat/gluon/backward.py`, which wrote dK / dV instead of adding to them)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, record, result_header
from ratbench.impls.attention_core import LOG2E
from ratbench.impls.rat.gluon import GLUON_CONFIG
from ratbench.impls.rat.gluon import backward as GB
from ratbench.impls.rat.gluon import passes as P
from ratbench.impls.rat.triton import rat_forward, rope_tables

VARIANTS = [("seg128", {"seg": 128}), ("seg64", {"seg": 64}), ("seg32", {"seg": 32}), ("seg256", {"seg": 256})]


def setup(T, tokens, H, D, L):
    B = max(1, tokens // T)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16()
    do = torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16()
    scale = D ** -0.5
    o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, scale, GLUON_CONFIG, need_lse=True)
    C = ke.shape[2]
    cos, sin = rope_tables(C, D, q.device)
    Tp = math.ceil(T / 64) * 64
    ld = torch.empty(B * H, Tp // 64, 2, 64, device="cuda")
    delta = torch.empty(B * H, T, device="cuda")
    qr = torch.empty(B * H, Tp, D, device="cuda", dtype=q.dtype)
    acc0 = torch.empty(B * H, Tp, D, device="cuda")
    scale2 = scale * LOG2E
    P.bwd_ws_pre_kernel[(Tp // 64, B * H)](q, o, ktr, vt, do, cos, sin, lse, delta, ld, qr, acc0,
        q.stride(0), q.stride(1), q.stride(2), o.stride(0), o.stride(1), o.stride(2), T, Tp, H, scale2,
        L=L, BM=64, TILE=64, HALF=D // 2, ROPE=True, SELF=True, QR_OUT=True, num_warps=4)
    return {"qr": qr, "do": do, "ke": ke, "ve": ve, "acc0": acc0, "ld": ld, "C": C, "B": B, "T": T,
            "L": L, "scale": scale, "scale2": scale2, "H": H, "D": D}


def run(st, kw, acc):
    dke = torch.zeros(st["B"] * st["H"], st["C"], st["D"], device="cuda"); dve = torch.zeros_like(dke)
    GB.launch_backward(st["qr"], st["do"], st["ke"], st["ve"], acc, st["ld"], dke, dve, st["T"],
                       st["L"], st["scale"], st["scale2"], **kw)
    return dke, dve


def main():
    out = Path(os.environ.get("OUT", "/tmp"))
    res = result_header()
    for T, D, L in ((1000, 128, 8), (300, 64, 4), (4096, 128, 16), (32768, 128, 16), (131072, 128, 16), (32768, 64, 16)):
        st = setup(T, 131072, 16, D, L)
        C = st["C"]
        flops5 = 10 * st["B"] * 16 * sum(min(t // L, C) for t in range(T)) * D
        base = None
        row = {"T": T, "D": D, "L": L, "flops5": flops5}
        for name, kw in VARIANTS:
            acc = st["acc0"].clone()
            try:
                dke, dve = run(st, kw, acc)
                torch.cuda.synchronize()
            except Exception as e:  # noqa: BLE001
                row[name + "_error"] = str(e)[:300]
                continue
            if base is None:
                base = (dke, dve, acc)
            else:
                row[name + "_diff"] = [(a - b).abs().max().item() for a, b in zip((dke, dve, acc), base)]
        fns = {}
        for n, kw in VARIANTS:
            if n + "_error" not in row:
                acc = st["acc0"].clone()
                fns[n] = lambda kw=kw, acc=acc, st=st: run(st, kw, acc)
        for n, v_ in interleaved(fns, warmup=10, rep=100 if T < 131072 else 60).items():
            row[n + "_ms"] = median(v_)
            row[n + "_tfs"] = flops5 / row[n + "_ms"] / 1e9
        record(res, row, out / "ab_bwd.json")
        del st
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
