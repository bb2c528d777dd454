"""A/B of the Gluon kernels' ring depth at head dim 64 (impls/rat/gluon/NOTES.md, "b7, f5 and b8"): at D 64
a K / V stage is half the bytes of D 128's, so fwd_ws_kernel fits 3 and 4 stages (131 and 165 KB of shared memory,
no spills: compiled for sm_90) and bwd_ws_kernel 3 and 4 (133 and 150 KB), where D 128 has
room for 2; never measured at D 64. rat/gluon's prefill (forward under no_grad) and train step at bf16, H 16, D 64,
L 16, 131,072 tokens, each with rat/gluon's own config for the shape (the dq writer at 4k): forward stages 2 / 3 / 4
(RATTritonConfig.fwd_stages) and backward stages 2 / 3 / 4 (launch_backward's stages); outputs and gradients
compared with the first variant's, interleaved do_bench (median of ROUNDS, 5 unless set). TS=4096,32768 chooses T. `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_stages.py`"""
from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import torch

from experiments._ab import compare_time_record, rat_inputs, result_header
from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.gluon import backward as gb


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H, D, L = 16, 64, 16
    launch = gb.launch_backward

    def run(fn, bwd_stages):
        gb.launch_backward = functools.partial(launch, stages=bwd_stages)  # gluon_backward looks it up per call
        try:
            return fn()
        finally:
            gb.launch_backward = launch

    for T in (int(t) for t in os.environ.get("TS", "4096,32768,131072").split(",")):
        B = 131072 // T
        x, do = rat_inputs(B, T, H, D)
        xs = [t.clone().requires_grad_(True) for t in x]
        row = {"T": T, "B": B}
        fns, got = {}, {}
        base = RATGluon()._config(seq_len=T, chunk_size=L, head_dim=D)  # the train config (prefill: its forward)
        row["writer"] = base.bwd_dq_writer
        for s in (2, 3, 4):
            impl = RATGluon(dataclasses.replace(base, fwd_stages=s))

            def prefill(impl=impl, x=x):
                with torch.no_grad():
                    return impl.forward(*x, chunk_size=L)
            got[f"prefill_f{s}"] = [prefill().float()]
            fns[f"prefill_f{s}"] = prefill
        for fs, bs in ((2, 2), (2, 3), (2, 4), (4, 2), (4, 4)):
            impl = RATGluon(dataclasses.replace(base, fwd_stages=fs))

            def train(impl=impl, xs=xs, do=do, bs=bs):
                for t in xs:
                    t.grad = None
                run(lambda: impl.forward(*xs, chunk_size=L).backward(do), bs)
            train()
            got[f"train_f{fs}_b{bs}"] = [t.grad.float() for t in xs]
            fns[f"train_f{fs}_b{bs}"] = train
        compare_time_record(res, row, got, fns, lambda n: "prefill_f2" if n.startswith("prefill") else "train_f2_b2",
                            out / "ab_stages.json", rounds)


if __name__ == "__main__":
    main()
