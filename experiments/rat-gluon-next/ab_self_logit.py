"""A/B of f5 and b8 (impls/rat/gluon/NOTES.md, "b7 and f5"; needs next.patch applied): the forward scan writing
each row's self logit q . kt for fwd_ws_kernel to read (RATTritonConfig.fwd_self_logit) against the scan writing
RoPE_c(kt) per row for the kernel to read (what ran before). At the issue's shapes (bf16, H 16, D 128, L 16, 131,072 tokens):
- prefill as the harness runs it (init_state, prefill under no_grad, the state's position reset): "off" against
  "prefill" (the scan writes no RoPE_c(kt)), the latter also at 8 chunks per scan program and 8 chunks / 2 warps;
  outputs and caches compared with "off"'s;
- rat/gluon's train step with its default backward: "prefill" (training unchanged) against "always" (the scan
  writes both, the forward kernel reads the logits) and b8 (bscan_recompute: no RoPE_c(kt) per row at all, the
  backward scan forms kt again; at its 8 and at 4 chunks per program); gradients compared with the first.
Each timed by interleaved do_bench (median of ROUNDS, 5 unless set), kernels from the profiler.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_self_logit.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import max_diffs, prefill_step, rat_inputs, result_header, time_and_record, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, RATGluon


def variants() -> tuple[dict, dict]:
    """(prefill variants, train variants): name -> config."""
    prefill = {"off": dataclasses.replace(GLUON_CONFIG, fwd_self_logit="off"),
               "prefill": dataclasses.replace(GLUON_CONFIG, fwd_self_logit="prefill"),
               "prefill_nc8": dataclasses.replace(GLUON_CONFIG, fwd_self_logit="prefill", scan_nc=8),
               "prefill_nc8_w2": dataclasses.replace(GLUON_CONFIG, fwd_self_logit="prefill", scan_nc=8,
                                                     scan_warps=2)}
    always = dataclasses.replace(GLUON_BWD_CONFIG, fwd_self_logit="always")
    train = {"train_kt": dataclasses.replace(GLUON_BWD_CONFIG, fwd_self_logit="prefill"), "train_logit": always,
             "train_rc": dataclasses.replace(always, bscan_recompute=True),
             "train_rc_nc4": dataclasses.replace(always, bscan_recompute=True, bscan_nc=4)}
    return prefill, train


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H, D, L = 16, 128, 16
    pre_vars, train_vars = variants()
    for T in (4096, 32768, 131072):
        B = 131072 // T
        x, do = rat_inputs(B, T, H, D)
        row = {"T": T, "B": B}
        fns, got = {}, {}
        for name, cfg in pre_vars.items():
            impl = RATGluon(cfg)
            state = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
            fn = prefill_step(impl, state, x)
            o = fn()
            got[name] = [o.float(), state.k_cache.float(), state.v_cache.float(), state.kt.clone(), state.vt.clone()]
            fns[name] = fn
        xs = [t.clone().requires_grad_(True) for t in x]
        for name, cfg in train_vars.items():
            fn = train_step(RATGluon(cfg), xs, do, L)
            fn()
            got[name] = [t.grad.float() for t in xs]
            fns[name] = fn
        for name, ref_name, keys in [(n, "off", ("o", "k_cache", "v_cache", "kt", "vt")) for n in pre_vars] + \
                                    [(n, "train_kt", ("dq", "dk", "dv", "df")) for n in train_vars]:
            row[name + "_maxdiff_vs_" + ref_name] = max_diffs(keys, got[name], got[ref_name])
        row["finite"] = all(bool(torch.isfinite(a).all()) for v in got.values() for a in v)
        del got
        time_and_record(res, row, fns, out / "ab_self_logit.json", rounds, 60 if T < 131072 else 120)


if __name__ == "__main__":
    main()
