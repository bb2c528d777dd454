"""f22 under compute-sanitizer (twenty-sixth session): call s25 on an H100 stopped at every f22 launch with an illegal
memory access, which the sm_90 compile here does not explain (its wgmma descriptors, ring offsets and barriers
checked in the PTX of triton 3.6.0 and 3.7.1). One prefill or train call of rat/gluon-half at the harness's shape
(or smaller), on the device:
`PYTHONPATH=.:experiments/rat-gluon-next compute-sanitizer --tool memcheck python experiments/rat-gluon-next/f22_san.py
prefill 4096 1`; with no sanitizer it says whether the call faults at all (exit 0 and "ok")."""
from __future__ import annotations

import sys

import torch


def main() -> None:
    from half_cands import CANDIDATES

    from ratbench.bench import cases as C
    from ratbench.bench.sweep import Case, case_fields

    mode, T, B = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    name = sys.argv[4] if len(sys.argv) > 4 else "rat/gluon-half"
    impl = CANDIDATES[name]()
    case = Case(impl=name, mode=mode, batch=B, seq_len=T, heads=16, head_dim=128, dtype="bfloat16", device="cuda",
                **case_fields({"chunk_size": 16}))
    prep = C.prepare(impl, case, seed=0)
    prep.fn()
    torch.cuda.synchronize()
    print(f"ok {name} {mode} T={T} B={B}")


if __name__ == "__main__":
    main()
