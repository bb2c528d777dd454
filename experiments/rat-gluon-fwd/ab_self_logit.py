"""A/B of f5 (impls/rat/gluon/NOTES.md): rat/gluon's prefill with the forward scan writing each row's self logit
q . kt (RATTritonConfig.fwd_self_logit, the default) against the scan writing RoPE_c(kt) per row for the attention
kernel to read (fwd_self_logit=False, what ran before), and the logit scan at other chunk / warp counts. The
harness's prefill (init_state, then prefill under no_grad, the state's position reset) at the issue's shapes (bf16,
H 16, D 128, L 16, 131,072 tokens): outputs and caches compared with the first variant's, the call timed by
interleaved do_bench (median of ROUNDS, 5 unless set) and each kernel's time from the profiler.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-fwd/ab_self_logit.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, record, result_header
from ratbench.impls.rat.gluon import GLUON_CONFIG, RATGluon

VARIANTS = {"kt": dataclasses.replace(GLUON_CONFIG, fwd_self_logit=False),
            "logit": GLUON_CONFIG,
            "logit_nc8": dataclasses.replace(GLUON_CONFIG, scan_nc=8),
            "logit_nc8_w2": dataclasses.replace(GLUON_CONFIG, scan_nc=8, scan_warps=2)}


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H, D, L = 16, 128, 16
    for T in (4096, 32768, 131072):
        B = 131072 // T
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
        f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16()
        row = {"T": T, "B": B}
        fns, got = {}, {}
        for name, cfg in VARIANTS.items():
            impl = RATGluon(cfg)
            state = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)

            def fn(impl=impl, state=state, x=(q, k, v, f)):
                state.pos = 0
                with torch.no_grad():
                    return impl.prefill(state, *x)
            o = fn()
            got[name] = [o.float(), state.k_cache.float(), state.v_cache.float(), state.kt.clone(), state.vt.clone()]
            fns[name] = fn
        ref = got["kt"]
        for name, xs in got.items():
            row[name + "_maxdiff_vs_kt"] = {n: (a - b).abs().max().item()
                                            for n, a, b in zip(("o", "k_cache", "v_cache", "kt", "vt"), xs, ref)}
        del got, ref
        for n, ms in interleaved(fns, rounds=rounds, warmup=5, rep=60).items():
            row[n + "_ms"] = median(ms)
            row[n + "_all"] = ms
        from torch.profiler import ProfilerActivity, profile
        for name, fn in fns.items():
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    fn()
                torch.cuda.synchronize()
            row[name + "_kernels_ms"] = {e.key[:40]: round(e.device_time_total / max(1, e.count) / 1e3, 4)
                                         for e in prof.key_averages() if e.device_type.name == "CUDA"}
        record(res, row, out / "ab_self_logit.json", hide=("_all",))
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
