"""v2 vs v4 forward kernels: timing (persistent and one CTA per tile) and an ncu pass at 128k."""
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
_spec = importlib.util.spec_from_file_location("fwd_v2", Path(__file__).parent / "forward_v2.py")
V2 = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(V2)
from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.gluon import forward as F
from ratbench.impls.rat.triton import DEFAULT_CONFIG, rat_forward, rope_tables


def setup(T, tokens=131072, H=16, D=128, L=16):
    B = max(1, tokens // T)
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16()
    o, lse, ktr, vt, ke, ve = rat_forward(q, k, v, f, L, True, D ** -0.5, DEFAULT_CONFIG, need_lse=True)
    cos, sin = rope_tables(math.ceil(T / L), D, q.device)
    s2 = D ** -0.5 * K.LOG2E
    args = (q, ktr, vt, cos, sin, ke, ve, o, lse, T, H, L, s2, True, True)
    flops = 4 * B * H * sum(min(t // L, math.ceil(T / L)) for t in range(T)) * D
    return args, flops

def v4_grid(ctas):
    def run(*a):
        old = F._sm_count
        F._sm_count = lambda dev: ctas
        try:
            F.launch_forward(*a)
        finally:
            F._sm_count = old
    return run

_spec = importlib.util.spec_from_file_location("fwd_v4b", Path(__file__).parent / "forward_v4b.py")
V4B = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(V4B)
VARIANTS = {"v2": V2.launch_forward, "v4a": F.launch_forward, "v4b": V4B.launch_forward}

if "--ncu" in sys.argv:
    args, _ = setup(int(sys.argv[-1]))
    for name in ("v2", "v4a", "v4b") * 2:
        VARIANTS[name](*args)
    torch.cuda.synchronize()
    sys.exit()
from triton.testing import do_bench

rows = []
for T in (4096, 32768, 131072):
    args, flops = setup(T)
    r = {"T": T}
    outs = {}
    for name, fn in VARIANTS.items():
        fn(*args); torch.cuda.synchronize(); outs[name] = args[7].clone()
        r[name] = []
    r["max_diff_vs_v2"] = {n: (o.float() - outs["v2"].float()).abs().max().item() for n, o in outs.items()}
    for rep in range(4):
        for name, fn in VARIANTS.items():
            r[name].append(round(do_bench(lambda fn=fn, args=args: fn(*args), warmup=10, rep=100), 4))
    for name in VARIANTS:
        ms = sorted(r[name])[len(r[name]) // 2]
        r[name + "_med"] = ms; r[name + "_tf"] = round(flops / ms / 1e9)
    rows.append(r); print(json.dumps(r), flush=True)
Path(os.environ.get("OUT", "/tmp"), "exp.json").write_text(json.dumps(rows, indent=1))
