"""A/B of the forward scan's launch parameters (scan_kernel: chunks side by side scan_nc, warps scan_warps) at the
issue-18 shapes (bf16, H 16, D 128, L 16, 131,072 tokens): outputs (RoPE'd kt, vt, chunk ends) compared with the
first variant's, the scan alone timed by interleaved do_bench (median of 3 rounds).
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-fwd/ab_scan_fwd.py` (VARIANTS="nc:warps,...")."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, record, result_header
from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.triton import rope_tables

VARIANTS = [tuple(int(x) for x in v.split(":")) for v in os.environ.get(
    "VARIANTS", "16:4,8:4,32:4,16:8,32:8,8:2,16:2,4:4").split(",")]


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    res = result_header()
    H, D, L, tokens = 16, 128, 16, 131072
    for T in (4096, 32768, 131072):
        B = tokens // T
        C = T // L
        g = torch.Generator(device="cuda").manual_seed(0)
        k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(2))
        f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16()
        cos, sin = rope_tables(C, D, k.device)
        row = {"T": T, "B": B}
        fns, base = {}, None
        for nc, w in VARIANTS:
            outs = [torch.empty_like(k) for _ in range(2)] + [torch.empty(B, H, C, D, device="cuda",
                                                                          dtype=k.dtype) for _ in range(2)]

            def fn(nc=nc, w=w, outs=outs, ins=(k, v, f, cos, sin), shape=(B, T, C)):
                ktr, vt, ke, ve = outs
                k, v, f, cos, sin = ins
                B, T, C = shape
                K.scan_kernel[(math.ceil(C / nc), B * H)](
                    k, v, f, cos, sin, ktr, vt, ke, ve, ktr, vt, k, ke,  # Q, SS: not read without SELF_LOGIT
                    k.stride(0), k.stride(1), k.stride(2), ktr.stride(0), ktr.stride(1), ktr.stride(2),
                    ke.stride(0), ke.stride(1), ke.stride(2), k.stride(0), k.stride(1), k.stride(2), T, H, C, L,
                    L=L, NC=nc, HALF=D // 2, ROPE=True, WRITE_LAST=False, num_warps=w, num_stages=1)
            fn()
            name = f"nc{nc}_w{w}"
            if base is None:
                base = outs
            else:
                row[name + "_equal"] = all(torch.equal(a, b) for a, b in zip(outs, base))
            fns[name] = fn
        for n, v_ in interleaved(fns, warmup=10, rep=100).items():
            row[n + "_ms"] = median(v_)
        record(res, row, out / "ab_scan_fwd.json")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
