"""A/B of fwd_ws_kernel against another version of impls/rat/gluon/forward.py written to old_forward.py beside this
script (not committed), e.g. f1, measured and rejected (impls/rat/gluon/NOTES.md, "b5"): `git show
901db5f:impls/rat/gluon/forward.py > experiments/rat-gluon-fwd/old_forward.py` (its ring stages hold (K_i, V_{i-1})
with one ready and one empty barrier per stage). Outputs compared (o, lse, RoPE(q)), the kernel alone timed by
interleaved do_bench (median of ROUNDS, 3 unless set), prefill (no lse) and train (lse, RoPE(q)) at the issue's shapes.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-fwd/ab_ring.py` ("old" in its output is old_forward.py; EXTRA=
"f3_forward" adds f3_forward.py beside it, and so on)."""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import torch

from experiments._ab import interleaved, median, record, result_header
from ratbench.impls.attention_core import LOG2E
from ratbench.impls.rat.gluon import GLUON_CONFIG
from ratbench.impls.rat.gluon import forward as new
from ratbench.impls.rat.triton import rat_forward, rope_tables


def load_old(name: str = "old_forward"):
    path = Path(__file__).with_name(name + ".py")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    old = load_old()
    # more versions beside this script (EXTRA="f3_forward,..."), each compared with old_forward
    mods = [("old", old)] + [(x, load_old(x)) for x in os.environ.get("EXTRA", "").split(",") if x] + [("new", new)]
    res = result_header()
    H, D, L = 16, 128, 16
    scale2 = D ** -0.5 * LOG2E
    for T in (4096, 32768, 131072):
        B = 131072 // T
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
        f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16()
        # the training forward's scan: it writes RoPE_c(kt) per row, which the kernels compared here read (a
        # prefill's may write the self logits instead: experiments/rat-gluon-next)
        _, _, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, D ** -0.5, GLUON_CONFIG, need_lse=True)
        cos, sin = rope_tables(T // L, D, q.device)
        row = {"T": T, "B": B}
        outs, fns = {}, {}
        for name, mod in mods:
            for mode, lse_on in (("prefill", False), ("train", True)):
                o = torch.empty_like(q)
                lse = torch.empty(B * H, T, device="cuda")
                qr = torch.zeros(B * H, math.ceil(T / 128) * 128, D, device="cuda", dtype=q.dtype)

                def fn(mod=mod, o=o, lse=lse, qr=qr, lse_on=lse_on, ins=(q, ktr, vt, cos, sin, ke, ve), T=T):
                    mod.launch_forward(*ins, o, lse, T, H, L, scale2, True, lse_on, qr=qr)
                fn()
                outs[(name, mode)] = (o, lse, qr)
                fns[f"{name}_{mode}"] = fn
        torch.cuda.synchronize()
        for name, _ in mods[1:]:
            tag = "" if name == "new" else name + "_"
            for mode in ("prefill", "train"):
                a, b = outs[("old", mode)], outs[(name, mode)]
                row[tag + mode + "_o_maxdiff"] = (a[0].float() - b[0].float()).abs().max().item()
                if mode == "train":
                    row[tag + "lse_maxdiff"] = (a[1] - b[1]).abs().max().item()
                    row[tag + "qr_equal"] = bool(torch.equal(a[2], b[2]))
        for n, v_ in interleaved(fns, int(os.environ.get("ROUNDS", "3")), warmup=10,
                                 rep=100 if T < 131072 else 200).items():
            row[n + "_ms"] = median(v_)
            row[n + "_all"] = v_
        record(res, row, out / "ab_ring.json")
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
