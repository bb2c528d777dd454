"""A/B of the backward scan's launch parameters under rat/gluon's b5 backward (bwd_scan_kernel with DQ_OUT: it also
reads the dq accumulator and RoPE(q) and writes dq): chunks side by side (bscan_nc) and warps (bscan_warps) at the
issue-18 shapes (bf16, H 16, D 128, L 16, 131,072 tokens). Outputs compared with the default's, the scan alone timed
by interleaved do_bench (median of 3 rounds). `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-bwd/ab_scan.py`"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, rat_inputs, record, result_header
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG
from ratbench.impls.rat.gluon.backward import gluon_backward
from ratbench.impls.rat.triton import _bwd_scan, rat_forward, rope_tables

VARIANTS = [(4, 4), (2, 4), (8, 4), (4, 8), (8, 8), (2, 2), (4, 2), (16, 4)]


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    res = result_header()
    H, D, L, tokens = 16, 128, 16, 131072
    for T in (4096, 32768, 131072):
        B = tokens // T
        (q, k, v, f), do = rat_inputs(B, T, H, D)
        scale = D ** -0.5
        qr = torch.empty(B * H, math.ceil(T / 128) * 128, D, device="cuda", dtype=q.dtype)
        o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, scale, GLUON_BWD_CONFIG, need_lse=True, qr=qr)
        cos, sin = rope_tables(T // L, D, q.device)
        acc, delta, dke, dve, qr = gluon_backward(do, None, o, lse, ktr, vt, ke, ve, cos, sin, L, True, scale,
                                                  finish_dq=False, qr=qr)
        row = {"T": T, "B": B}
        fns, base = {}, None
        for nc, w in VARIANTS:
            cfg = dataclasses.replace(GLUON_BWD_CONFIG, bscan_nc=nc, bscan_warps=w)
            name = f"nc{nc}_w{w}"

            def fn(cfg=cfg, args=(k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, o, L, True, scale), acc=acc,
                   qr=qr):
                return _bwd_scan(None, *args, cfg, dqacc=acc, qr=qr)
            outs = fn()
            if base is None:
                base = outs
            else:
                row[name + "_maxdiff"] = max((a.float() - b.float()).abs().max().item() for a, b in zip(outs, base))
            fns[name] = fn
        for n, v_ in interleaved(fns, warmup=10, rep=100).items():
            row[n + "_ms"] = median(v_)
        record(res, row, out / "ab_scan.json")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
