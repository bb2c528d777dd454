"""A/B of f11 (impls/rat/gluon/NOTES.md, "Eleventh session"): fwd_ws_kernel's prologue loads (RoPE's cos / sin rows
and, in the prefill, the scan's self logits) issued a tile ahead, under the previous tile's epilogue, against the
kernel before it, which issued them at the tile's start (Nsight Compute on an H100 at train 4k: the first RoPE
multiply waiting on them held 8% of all stall samples, 12% of the consumer warps'). The previous kernel is
forward_prev.py beside this script, made before the call by `git show 385a1a3:impls/rat/gluon/forward.py >
experiments/rat-gluon-next/forward_prev.py` (not committed); its launch_forward goes in place of the module's,
which rat_forward looks up per call. rat/gluon's prefill and train step, bf16, H 16, 131,072 tokens, D 128 / L 16
at T 4k / 32k / 128k and D 64 / L 16 and D 128 / L 64 at 4k; outputs compared with the previous kernel's,
interleaved do_bench (median of ROUNDS, 5 unless set). `OUT=/tmp/x PYTHONPATH=. python
experiments/rat-gluon-next/ab_tables.py` (SHAPES=128:16:4096,... to choose D:L:T)"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from experiments._ab import compare_time_record, load_beside, rat_inputs, result_header, train_step
from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.gluon import forward as gf


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    prev = load_beside(__file__, "forward_prev")
    res = result_header()
    new_launch = gf.launch_forward
    shapes = os.environ.get("SHAPES", "128:16:4096,128:16:32768,128:16:131072,64:16:4096,128:64:4096")
    for D, L, T in (tuple(int(x) for x in s.split(":")) for s in shapes.split(",")):
        B, H = 131072 // T, 16
        x, do = rat_inputs(B, T, H, D)
        xs = [t.clone().requires_grad_(True) for t in x]
        impl = RATGluon()
        row = {"D": D, "L": L, "T": T, "B": B}
        fns, got = {}, {}
        for name, launch in (("prev", prev.launch_forward), ("f11", new_launch)):
            def with_launch(fn, launch=launch):
                def run():
                    gf.launch_forward = launch
                    try:
                        return fn()
                    finally:
                        gf.launch_forward = new_launch
                return run

            def prefill(x=x, impl=impl, L=L):
                with torch.no_grad():
                    return impl.forward(*x, chunk_size=L)
            fns[f"prefill_{name}"] = with_launch(prefill)
            got[f"prefill_{name}"] = [fns[f"prefill_{name}"]().float()]
            fns[f"train_{name}"] = with_launch(train_step(impl, xs, do, L))
            fns[f"train_{name}"]()
            got[f"train_{name}"] = [t.grad.float() for t in xs]
        compare_time_record(res, row, got, fns, lambda n: n.rsplit("_", 1)[0] + "_prev", out / "ab_tables.json",
                            rounds)


if __name__ == "__main__":
    main()
