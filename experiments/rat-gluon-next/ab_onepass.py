"""A/B of f10 (impls/rat/gluon/NOTES.md, "f10"; needs next.patch applied): rat/gluon's forward in one pass
(fwd1p_kernel reads q, k, v and f once; RATTritonConfig.fwd_one_pass) against the two passes, scan_kernel then
fwd_ws_kernel (the patch's default, with f5's self logits in the prefill).
- Shapes: prefill as the harness runs it (init_state, prefill under no_grad, the position reset) and rat/gluon's train
  step (its default backward) at (D, L) = (128, 16) (the issue's), (64, 16) and (128, 64), T = 4k / 32k / 128k,
  131,072 tokens, H 16, bf16.
- Checks: outputs, caches and the decode state compared with the two passes', and the gradients; at 4k sequence
  0's prefill output also against float64 by the FlashAttention rule (bench/fa_rule.py).
- Timing: interleaved do_bench (median of ROUNDS, 5 unless set), and the kernels from the profiler.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_onepass.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import max_diffs, prefill_step, rat_inputs, result_header, time_and_record, train_step
from ratbench.bench.fa_rule import judge
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, RATGluon
from ratbench.impls.rat.reference import rat_attention


def fa_rule_seq0(x: list[torch.Tensor], o: torch.Tensor, L: int) -> dict:
    """Sequence 0 of o against float64 by the FlashAttention rule (bound from the reference in bf16)."""
    x0 = [t[:1] for t in x]
    scale = x0[0].shape[-1] ** -0.5
    ref64 = rat_attention(*[t.double() for t in x0], L, True, scale)[0]
    low = rat_attention(*x0, L, True, scale)[0]
    v = judge("o", o[:1], ref64, low, "bfloat16")
    return {"ok": v.ok, "err": v.err, "bound": v.bound}


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H = 16
    variants = {"two_pass": GLUON_CONFIG, "one_pass": dataclasses.replace(GLUON_CONFIG, fwd_one_pass=True)}
    train = {"train_two_pass": GLUON_BWD_CONFIG, "train_one_pass": dataclasses.replace(GLUON_BWD_CONFIG,
                                                                                       fwd_one_pass=True)}
    for D, L in ((128, 16), (64, 16), (128, 64)):
        for T in (4096, 32768, 131072):
            B = 131072 // T
            x, do = rat_inputs(B, T, H, D)
            row: dict = {"D": D, "L": L, "T": T, "B": B}
            fns, got = {}, {}
            for name, cfg in variants.items():
                impl = RATGluon(cfg)
                state = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
                fn = prefill_step(impl, state, x)
                o = fn()
                got[name] = [o.float(), state.k_cache.float(), state.v_cache.float(), state.kt.clone(),
                             state.vt.clone()]
                fns[name] = fn
            xs = [t.clone().requires_grad_(True) for t in x]
            for name, cfg in train.items():
                fn = train_step(RATGluon(cfg), xs, do, L)
                fn()
                got[name] = [t.grad.float() for t in xs]
                fns[name] = fn
            row["maxdiff"] = max_diffs(("o", "k_cache", "v_cache", "kt", "vt"), got["one_pass"], got["two_pass"])
            row["maxdiff_train"] = max_diffs(("dq", "dk", "dv", "df"), got["train_one_pass"], got["train_two_pass"])
            row["finite"] = all(bool(torch.isfinite(a).all()) for v in got.values() for a in v)
            if T == 4096:
                row["fa_rule_seq0"] = {n: fa_rule_seq0(x, got[n][0].bfloat16(), L) for n in variants}
            del got
            time_and_record(res, row, fns, out / "ab_onepass.json", rounds, 60 if T < 131072 else 120)


if __name__ == "__main__":
    main()
