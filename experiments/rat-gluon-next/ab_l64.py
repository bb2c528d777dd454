"""A/B of rat/gluon's backward route at L 64 below T 16k (impls/rat/gluon/__init__.py, gluon_backward_used): there
rat/gluon trains with rat/triton's backward, since b4 measured the Gluon backward slower at L 64, 4k (2.61 against
2.35 ms, the passes around its kernel most of the time: NOTES.md b4). Since then b5 changed those passes and b7c's dq
writer came (no zeros in the pre pass, key block 0 stores its dq share first; at L 64 a sequence of 16k has 256
chunk ends, two key blocks, so below that the writer's flags have at most one waiter per tile). Train step at
bf16, H 16, D 128, L 64, 131,072 tokens, T 4k / 8k / 16k: rat/gluon as routed, with GLUON_WRITER_CONFIG and with
GLUON_BWD_CONFIG; gradients compared with the routed variant's, interleaved do_bench (median of ROUNDS, 5 unless
set). `OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_l64.py` (TS=4096,8192 chooses T)"""
from __future__ import annotations

import os
from pathlib import Path

from experiments._ab import compare_time_record, rat_inputs, result_header, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_WRITER_CONFIG, RATGluon


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "5"))
    res = result_header()
    H, D, L = 16, 128, 64
    for T in (int(t) for t in os.environ.get("TS", "4096,8192,16384").split(",")):
        B = 131072 // T
        x, do = rat_inputs(B, T, H, D)
        xs = [t.clone().requires_grad_(True) for t in x]
        row = {"T": T, "B": B, "routed_backward": RATGluon()._config(seq_len=T, chunk_size=L, head_dim=D).backward}
        fns, got = {}, {}
        for name, impl in (("routed", RATGluon()), ("writer", RATGluon(GLUON_WRITER_CONFIG)),
                           ("gluon_bwd", RATGluon(GLUON_BWD_CONFIG))):
            fn = train_step(impl, xs, do, L)
            fn()
            got[name] = [t.grad.float() for t in xs]
            fns[name] = fn
        compare_time_record(res, row, got, fns, lambda n: "routed", out / "ab_l64.json", rounds)


if __name__ == "__main__":
    main()
