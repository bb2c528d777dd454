"""A/B of b7b (the dq accumulator started by key block 0's stores, impls/rat/gluon/NOTES.md "b7, f5 and b8"; needs
next.patch applied) against the backward before it, written beside this script (not committed):
`git show 9ae7ed4:impls/rat/gluon/backward.py | sed 's/ratbench.impls.rat.gluon.passes/old_passes/' >
experiments/rat-gluon-next/old_backward.py` and `git show
9ae7ed4:impls/rat/gluon/passes.py > experiments/rat-gluon-next/old_passes.py` (the pre pass writes the accumulator's
zeros, every item adds). rat/gluon's train step at the issue's shapes (bf16, H 16, D 128, L 16, 131,072 tokens):
gradients of each against the old one's and of REPEATS runs of the new one against its first (a missed flag would
show as a difference far above the float32 reduction order's), "new_in_order" b7b with key block 0's items in
their own segment (b4's order, as b7 ran), the step timed by interleaved do_bench (median of ROUNDS,
5 unless set) and each kernel's time from the profiler. b9 off throughout (bwd_split_masked: the backward kernel's
one loop, as before it; ab_softmax.py measures b9).
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_first.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import load_beside, rat_inputs, record, result_header, time_into
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, RATGluon
from ratbench.impls.rat.gluon import backward as gb


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds, repeats = int(os.environ.get("ROUNDS", "5")), int(os.environ.get("REPEATS", "5"))
    new, work_items = gb.gluon_backward, gb.work_items

    def in_order(*a, **kw):  # b7b's items in b4's order: key block 0 with its own segment's others
        return work_items(*a, **{**kw, "first_ahead": False})
    # name -> (gluon_backward, work_items) while the step runs
    old = load_beside(__file__, "old_backward").gluon_backward

    def old_backward(*a, split=False, **kw):  # the patch's rat_backward passes b9's switch, which 9ae7ed4's lacks
        return old(*a, **kw)
    variants = {"old": (old_backward, work_items), "new": (new, work_items), "new_in_order": (new, in_order)}
    res = result_header()
    H, D, L = 16, 128, 16
    impl = RATGluon(dataclasses.replace(GLUON_BWD_CONFIG, bwd_split_masked=False))

    def step(name, xs, do):
        gb.gluon_backward, gb.work_items = variants[name]  # rat_backward / launch_backward look them up per call
        try:
            impl.forward(*xs, chunk_size=L).backward(do)
        finally:
            gb.gluon_backward, gb.work_items = new, work_items

    for T in (4096, 32768, 131072):
        B = 131072 // T
        xs, do = rat_inputs(B, T, H, D)
        xs = [x.requires_grad_(True) for x in xs]
        row = {"T": T, "B": B}
        got = {}
        for name in variants:
            step(name, xs, do)
            got[name] = [x.grad.clone() for x in xs]
            for x in xs:
                x.grad = None
        for name in ("new", "new_in_order"):
            row[name + "_vs_old_maxdiff"] = {n: (a.float() - b.float()).abs().max().item()
                                             for n, a, b in zip("qkvf", got[name], got["old"])}
        row["grad_absmax"] = {n: a.float().abs().max().item() for n, a in zip("qkvf", got["old"])}
        worst = {n: 0.0 for n in "qkvf"}
        for _ in range(repeats):
            step("new", xs, do)
            for n, x, a in zip("qkvf", xs, got["new"]):
                worst[n] = max(worst[n], (x.grad.float() - a.float()).abs().max().item())
                x.grad = None
        row["new_repeats_maxdiff"] = worst
        row["finite"] = all(bool(torch.isfinite(a).all()) for v in got.values() for a in v)
        del got
        fns = {name: (lambda name=name, xs=xs, do=do: step(name, xs, do)) for name in variants}
        time_into(row, fns, rounds, warmup=5, rep=60 if T < 131072 else 120, grad_to_none=xs)
        from torch.profiler import ProfilerActivity, profile
        for name in variants:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    step(name, xs, do)
                    for x in xs:
                        x.grad = None
                torch.cuda.synchronize()
            row[name + "_kernels_ms"] = {e.key[:48]: round(e.device_time_total / max(1, e.count) / 1e3, 4)
                                         for e in prof.key_averages() if e.device_type.name == "CUDA"}
        record(res, row, out / "ab_first.json", hide=("_all", "_kernels_ms"))
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
