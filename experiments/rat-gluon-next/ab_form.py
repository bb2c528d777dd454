"""b12 on the device without the harness: rat/gluon's backward scan (bwd_scan_kernel, DQ_OUT, its launch 8 chunks /
4 warps) against bwd_scan_form_kernel's launches (form_cands.py's names), the scan alone (dk, dv, df, dq compared with
bwd_scan_kernel's) and the whole train step of rat/gluon with and without bscan_form, interleaved do_bench (median of
3 rounds), at D 128 / L 16, 131,072 tokens. Prints each variant's first call (its compile) as it goes; a row per T
to $OUT/ab_form.json. `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_form.py` (FORMS=48,24 and
TS=4096,32768,131072 choose)."""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch

from experiments._ab import interleaved, median, rat_inputs, record, result_header, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, RATGluon
from ratbench.impls.rat.gluon.backward import gluon_backward
from ratbench.impls.rat.triton import _bwd_scan, rat_forward, rope_tables


def _timed_first(name: str, fn) -> object:  # type: ignore[no-untyped-def]
    t0 = time.time()
    out = fn()
    torch.cuda.synchronize()
    print(f"  {name}: first call {time.time() - t0:.1f} s", flush=True)
    return out


class _Form(RATGluon):
    def __init__(self, fields: dict) -> None:
        super().__init__()
        self.fields = fields

    def _config(self, *a, **kw):  # type: ignore[no-untyped-def]
        return dataclasses.replace(super()._config(*a, **kw), **self.fields)


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    forms = [(int(s[0]), int(s[1:])) for s in os.environ.get("FORMS", "48,24").split(",")]
    res = result_header()
    H, D, L, tokens = 16, 128, 16, 131072
    for T in (int(t) for t in os.environ.get("TS", "4096,32768,131072").split(",")):
        B = tokens // T
        print(f"T {T}", flush=True)
        (q, k, v, f), do = rat_inputs(B, T, H, D)
        scale = D ** -0.5
        qr = torch.empty(B * H, math.ceil(T / 128) * 128, D, device="cuda", dtype=q.dtype)
        o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, scale, GLUON_BWD_CONFIG, need_lse=True, qr=qr)
        cos, sin = rope_tables(T // L, D, q.device)
        acc, delta, dke, dve, qr = gluon_backward(do, None, o, lse, ktr, vt, ke, ve, cos, sin, L, True, scale,
                                                  finish_dq=False, qr=qr)
        args = (k, v, f, ktr, vt, do, lse, delta, cos, sin, dke, dve, o, L, True, scale)
        cfgs = {"scan": GLUON_BWD_CONFIG}
        for nc, w in forms:
            cfgs[f"form{nc}{w}"] = dataclasses.replace(GLUON_BWD_CONFIG, bscan_form=True, bscan_form_nc=nc,
                                                       bscan_form_warps=w)
        row: dict = {"T": T, "B": B}
        fns, base = {}, None
        for name, cfg in cfgs.items():
            def fn(cfg=cfg, args=args, acc=acc, qr=qr):  # type: ignore[no-untyped-def]
                return _bwd_scan(None, *args, cfg, dqacc=acc, qr=qr)
            outs = _timed_first(name, fn)
            if base is None:
                base = outs
            else:
                for key, a, b in zip(("dk", "dv", "df", "dq"), outs, base):
                    row[f"{name}_{key}_maxdiff"] = (a.float() - b.float()).abs().max().item()
            fns[name] = fn
        for n, ms in interleaved(fns, warmup=10, rep=100).items():
            row[n + "_ms"] = median(ms)
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v, f)]
        steps = {"step_gluon": train_step(RATGluon(), leaves, do, L)}
        nc, w = forms[0]
        steps[f"step_form{nc}{w}"] = train_step(_Form({"bscan_form": True, "bscan_form_nc": nc,
                                                       "bscan_form_warps": w}), leaves, do, L)
        for n, fn in steps.items():
            _timed_first(n, fn)
        for n, ms in interleaved(steps, warmup=5, rep=50).items():
            row[n + "_ms"] = median(ms)
        record(res, row, out / "ab_form.json")
        print({k_: (round(v_, 4) if isinstance(v_, float) else v_) for k_, v_ in row.items()}, flush=True)
        del q, k, v, f, do, o, lse, ktr, vt, acc, qr, leaves, fns, steps, base
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
