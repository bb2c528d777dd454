"""One prefill of rat/gluon (MODE=main: without f23) or with f23 forced at every T (MODE=xt), between
cudaProfilerStart / Stop, for Nsight Compute (call_s27f.sh): why f23 wins at short T and loses at long T.
`MODE=xt SHAPE=131072,1,64,16 python experiments/rat-gluon-next/ncu_xt.py` (SHAPE = T,B,D,L)."""
from __future__ import annotations

import dataclasses
import os

import torch

from ratbench.impls.rat.gluon import RATGluon


class _Forced(RATGluon):
    def __init__(self, xt: bool) -> None:
        super().__init__()
        self.xt = xt

    def _config(self, *a, **kw):
        cfg = super()._config(*a, **kw)
        d = kw.get("head_dim")
        return dataclasses.replace(cfg, fwd_cross_tile=self.xt, fwd_xt_stages=3 if self.xt and d == 64 else 2)


class XtAll(_Forced):
    """f23 at every T (registered as rat/gluon-xtall by call_s27g.sh)."""

    description = "rat/gluon with f23 in the prefill at every T (three ring entries at head dim 64)"

    def __init__(self) -> None:
        super().__init__(True)


def main() -> None:
    T, B, D, L = (int(x) for x in os.environ.get("SHAPE", "131072,1,64,16").split(","))
    impl = _Forced(os.environ.get("MODE", "xt") == "xt")
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, T, 16, D, device="cuda", generator=g, dtype=torch.bfloat16) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, 16, D, device="cuda", generator=g)).to(torch.bfloat16)
    with torch.no_grad():
        for _ in range(2):
            impl.forward(q, k, v, f, chunk_size=L)
        torch.cuda.synchronize()
        torch.cuda.profiler.start()
        impl.forward(q, k, v, f, chunk_size=L)
        torch.cuda.synchronize()
        torch.cuda.profiler.stop()


if __name__ == "__main__":
    main()
