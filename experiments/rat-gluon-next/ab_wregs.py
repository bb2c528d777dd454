"""A/B of bwd_ws_kernel with the dq writer warp at 24 registers (w24, main) against 32 (w32, 1bea30d), and of the
writer against the plain backward (pre pass zeros, dq shares reduced by the MMA warpgroups) at every T.

Why: at 32 registers for the writer, the default partition (MMA warpgroup 0) gets 232 instead of 240 (the 384 threads'
168 x 384 registers shared out by setmaxnreg), and ptxas 12.8 as triton 3.6.0 calls it (without 3.7's
--regAllocOptLevel=2) serializes every wgmma of the kernel ("C7512 ... insufficient register resources"): each
HGMMA k-step is followed by WARPGROUP.DEPBAR.LE gsb0, 0x0 (Nsight Compute's source page of call H; the static gate's
compile with triton 3.6.0's wheel). At 24 the kernel's HGMMAs are pipelined again with both triton versions. The
writer (b7c) lost from 8k on in call D (tenth session) with the serialized kernel; whether it loses with the
pipelined one is measured here.

Variants per shape (train step, bf16, H 16, 131,072 tokens): plain = RATGluon(GLUON_BWD_CONFIG), w24 =
RATGluon(GLUON_WRITER_CONFIG), w32 = the same with backward_w32.py's kernel (`git show
1bea30d:impls/rat/gluon/backward.py`) swapped in; gradients against plain's; interleaved do_bench, median of ROUNDS
(3 unless set). `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_wregs.py` (SHAPES=D:L:T,... to choose)"""
from __future__ import annotations

import os
from pathlib import Path

from experiments._ab import compare_time_record, load_beside, rat_inputs, result_header, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_WRITER_CONFIG, RATGluon
from ratbench.impls.rat.gluon import backward as bw

SHAPES = ("128:16:4096,128:16:8192,128:16:16384,128:16:32768,128:16:131072,64:16:4096,64:16:8192,64:16:32768,"
          "64:16:131072,128:64:4096,128:64:16384")


def swapped(fn, kernel):
    """fn with bw.bwd_ws_kernel (which launch_backward looks up at each call) set to kernel during the call."""
    def run() -> None:
        keep = bw.bwd_ws_kernel
        bw.bwd_ws_kernel = kernel
        try:
            fn()
        finally:
            bw.bwd_ws_kernel = keep
    return run


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "3"))
    prev = load_beside(__file__, "backward_w32")
    res = result_header()
    for shape in os.environ.get("SHAPES", SHAPES).split(","):
        D, L, T = (int(s) for s in shape.split(":"))
        B = 131072 // T
        x, do = rat_inputs(B, T, 16, D)
        xs = [t.clone().requires_grad_(True) for t in x]
        row = {"D": D, "L": L, "T": T, "B": B}
        fns, got = {}, {}
        for name, impl, kern in (("plain", RATGluon(GLUON_BWD_CONFIG), None),
                                 ("w24", RATGluon(GLUON_WRITER_CONFIG), None),
                                 ("w32", RATGluon(GLUON_WRITER_CONFIG), prev.bwd_ws_kernel)):
            fn = train_step(impl, xs, do, L)
            if kern is not None:
                fn = swapped(fn, kern)
            fn()
            got[name] = [t.grad.float() for t in xs]
            fns[name] = fn
        compare_time_record(res, row, got, fns, lambda n: "plain", out / "ab_wregs.json", rounds)


if __name__ == "__main__":
    main()
