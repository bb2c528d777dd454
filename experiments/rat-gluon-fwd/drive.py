"""One rat/gluon prefill (fwd_ws_kernel after the scan) per call, for Nsight Compute: warm-up calls, then the call
that `ncu --launch-skip` picks. `python experiments/rat-gluon-fwd/drive.py T [calls]` (bf16, H 16, D 128, L 16,
131,072 tokens; B = 131072 / T)."""
from __future__ import annotations

import sys

import torch

from ratbench.impls.rat.gluon import RATGluon


def main() -> None:
    T = int(sys.argv[1])
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    B, H, D, L = 131072 // T, 16, 128, 16
    g = torch.Generator(device="cuda").manual_seed(0)
    xs = [torch.randn(B, T, H, D, device="cuda", generator=g).bfloat16() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, device="cuda", generator=g) + 2.0).bfloat16())
    impl = RATGluon()
    with torch.no_grad():
        for _ in range(calls):
            impl.forward(*xs, chunk_size=L)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
