"""Device (Nsight Compute): one training step of rat/gluon (forward + backward) between cudaProfilerStart / Stop,
bf16, H 16, D 128 by default, for `ncu --profile-from-start off ... python experiments/rat-gluon-next/ncu_train.py`.
SHAPE=T,B,D,L chooses the shape (default 32768,4,128,16: the issue's 32k train cell). Warm-up steps compile first."""
from __future__ import annotations

import os

import torch

from ratbench.impls.rat.gluon import RATGluon


def main() -> None:
    T, B, D, L = (int(x) for x in os.environ.get("SHAPE", "32768,4,128,16").split(","))
    H = 16
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, T, H, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g)).to(torch.bfloat16)
    do = torch.randn(B, T, H, D, device="cuda", generator=g, dtype=torch.bfloat16)
    leaves = [x.requires_grad_(True) for x in (q, k, v, f)]
    impl = RATGluon()
    for step in range(4):  # three warm-up steps (compiles), then the profiled one
        if step == 3:
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStart()
        y = impl.forward(*leaves, chunk_size=L)
        y.backward(do)
        if step == 3:
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStop()
        for x in leaves:
            x.grad = None
    print(f"profiled one training step at T {T}, B {B}, D {D}, L {L}", flush=True)


if __name__ == "__main__":
    main()
