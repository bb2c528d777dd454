"""Device (call Q): one prefill call of rat/gluon and of f13 (f13_cands.Fused) at T 4k, B 32, H 16, L 16, bf16, head
dim 128 and 64, between cudaProfilerStart/Stop, for Nsight Compute: `ncu --profile-from-start off ... python
experiments/rat-gluon-next/ncu_f13.py` (IMPLS=rat/gluon,f13 to choose)."""
from __future__ import annotations

import os

import f13_cands
import torch

from ratbench.impls.rat.gluon import RATGluon


def main() -> None:
    impls = {"rat/gluon": RATGluon, "f13": f13_cands.Fused, "f13h": f13_cands.FusedHeads, "f13s4": f13_cands.FusedS4}
    names = os.environ.get("IMPLS", "rat/gluon,f13").split(",")
    for D in (int(d) for d in os.environ.get("HEAD_DIMS", "128,64").split(",")):
        B, T, H, L = 32, 4096, 16, 16
        g = torch.Generator(device="cuda").manual_seed(0)
        q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
        f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g)).to(torch.bfloat16)
        for name in names:
            impl = impls[name]()
            for _ in range(3):  # compile and warm up
                st = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
                with torch.no_grad():
                    impl.prefill(st, q, k, v, f)
            st = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStart()
            with torch.no_grad():
                impl.prefill(st, q, k, v, f)
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
            print(f"D {D} {name}: profiled one prefill", flush=True)


if __name__ == "__main__":
    main()
