"""A/B of f6-f8 and b9 (impls/rat/gluon/NOTES.md "f6-f8 and b9"; needs next.patch applied): fwd_ws_kernel's
softmax with a share of its exponentials by polynomial (RATTritonConfig.fwd_exp_poly, head dim 64), the unmasked
key blocks in a loop without the mask's selects (fwd_split_masked) and the row maximum / sum in trees
(fwd_row_tree), against the kernel before them ("base": none of the three). Prefill as the harness runs it
(init_state, prefill under no_grad, the state's position reset) at bf16, H 16, L 16, 131,072 tokens, head dims 64
and 128; outputs compared with base's (f7 and f8's maximum tree change no bit; the sum tree and the polynomial
change rounding); then one train step per variant at 4k, its gradients compared with base's. b9: the train step
with bwd_ws_kernel's unmasked query tiles in a loop of their own (RATTritonConfig.bwd_split_masked) against one
loop, at both head dims and the three T. Timed by interleaved do_bench (median of ROUNDS, 5 unless set), the
kernels' times from the profiler.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_softmax.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import prefill_step, rat_inputs, record, result_header, time_into, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, RATGluon


def variants(D: int) -> dict[str, dict]:
    """name -> the config fields it sets (the polynomial only where it acts: head dim 64)."""
    out = {"base": {"fwd_split_masked": False, "fwd_row_tree": 0, "fwd_exp_poly": 0},
           "split": {"fwd_split_masked": True, "fwd_row_tree": 0, "fwd_exp_poly": 0},
           "split_tree1": {"fwd_split_masked": True, "fwd_row_tree": 1, "fwd_exp_poly": 0},
           "split_tree2": {"fwd_split_masked": True, "fwd_row_tree": 2, "fwd_exp_poly": 0}}
    if D == 64:
        out |= {"split_tree1_poly8": {"fwd_split_masked": True, "fwd_row_tree": 1, "fwd_exp_poly": 8},
                "split_tree1_poly4": {"fwd_split_masked": True, "fwd_row_tree": 1, "fwd_exp_poly": 4}}
    return out


def kernel_ms(fn, name: str = "fwd_ws_kernel", calls: int = 5) -> float | None:
    """ms per call of the kernel `name` (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    ts = [e.device_time_total / max(1, e.count) / 1e3 for e in prof.key_averages()
          if e.device_type.name == "CUDA" and name in e.key]
    return round(ts[0], 4) if ts else None


def prefill_row(T: int, H: int, D: int, L: int, rounds: int) -> dict:
    B = 131072 // T
    x, _ = rat_inputs(B, T, H, D)
    row: dict = {"T": T, "B": B, "D": D, "L": L, "mode": "prefill"}
    fns, outs = {}, {}
    for name, fields in variants(D).items():
        impl = RATGluon(dataclasses.replace(GLUON_CONFIG, **fields))
        state = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
        fn = prefill_step(impl, state, x)
        outs[name] = fn().float()
        fns[name] = fn
    for name, o in outs.items():
        row[name + "_maxdiff_vs_base"] = (o - outs["base"]).abs().max().item()
        row[name + "_finite"] = bool(torch.isfinite(o).all())
    del outs
    time_into(row, fns, rounds, warmup=5, rep=60 if T < 131072 else 120)
    for name, fn in fns.items():
        row[name + "_kernel_ms"] = kernel_ms(fn)
    return row


def train_row(H: int, D: int, L: int) -> dict:
    """One train step per variant at T 4096: the training forward (lse) and gradients against base's."""
    T, B = 4096, 32
    x, do = rat_inputs(B, T, H, D)
    row: dict = {"T": T, "B": B, "D": D, "L": L, "mode": "train"}
    grads = {}
    for name, fields in variants(D).items():
        xs = [t.clone().requires_grad_(True) for t in x]
        RATGluon(dataclasses.replace(GLUON_BWD_CONFIG, **fields)).forward(*xs, chunk_size=L).backward(do)
        grads[name] = [t.grad.float() for t in xs]
    for name, g in grads.items():
        row[name + "_maxdiff_vs_base"] = {k: (a - b).abs().max().item() for k, a, b in zip(
            ("dq", "dk", "dv", "df"), g, grads["base"])}
        row[name + "_finite"] = all(bool(torch.isfinite(a).all()) for a in g)
    return row


def train_split_row(T: int, H: int, D: int, L: int, rounds: int) -> dict:
    """b9: rat/gluon's train step with bwd_split_masked off and on (the forward as the patch's defaults)."""
    B = 131072 // T
    x, do = rat_inputs(B, T, H, D)
    xs = [t.clone().requires_grad_(True) for t in x]
    row: dict = {"T": T, "B": B, "D": D, "L": L, "mode": "train_b9"}
    fns, grads = {}, {}
    for name, split in (("bwd_one_loop", False), ("bwd_split", True)):
        fn = train_step(RATGluon(dataclasses.replace(GLUON_BWD_CONFIG, bwd_split_masked=split)), xs, do, L)
        fn()
        grads[name] = [t.grad.float() for t in xs]
        fns[name] = fn
    row["bwd_split_maxdiff"] = {k: (a - b).abs().max().item() for k, a, b in zip(
        ("dq", "dk", "dv", "df"), grads["bwd_split"], grads["bwd_one_loop"])}
    row["finite"] = all(bool(torch.isfinite(a).all()) for g in grads.values() for a in g)
    del grads
    time_into(row, fns, rounds, warmup=5, rep=60 if T < 131072 else 120)
    for name, fn in fns.items():
        row[name + "_bwd_kernel_ms"] = kernel_ms(fn, "bwd_ws_kernel")
    return row


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp")) / "ab_softmax.json"
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H, L = 16, 16
    for D in (64, 128):
        record(res, train_row(H, D, L), out)
        for T in (4096, 32768, 131072):
            record(res, prefill_row(T, H, D, L, rounds), out, hide=("_all", "_kernel_ms"))
            torch.cuda.empty_cache()
    for D in (128, 64):
        for T in (4096, 32768, 131072):
            record(res, train_split_row(T, H, D, L, rounds), out, hide=("_all",))
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
