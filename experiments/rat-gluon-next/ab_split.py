"""Which of next.patch's versions make its train step slower than main's (impls/rat/gluon/NOTES.md, "Sixth session":
bwd_ws_kernel +14-29% with b7b and b9 together), and which win in prefill; needs next.patch applied. One process,
interleaved do_bench (median of ROUNDS, 3 unless set), kernel times from the profiler; each variant switches
versions off from the patch's defaults by RATTritonConfig's fields:
- train: "patch" (b7b and b9), "b7b" (bwd_split_masked off), "b9" (bwd_store_first off: the pre pass zeroes the
  accumulator, b4's item order), "fwd_only" (both off: bwd_ws_kernel's SASS is main's but for the parameter offsets,
  seventh session), "b7c" (b7b's flags in a dq writer warp, b9 off), "b7c_b10" (and the warpgroup tiles that see
  none of their keys skipped), "writer" (the writer warp, b7b and b9 off),
  "no_f678" (the forward's f6-f8 off), "main_like" (all of them off: main's kernels), the fields of cands.py's
  candidates (TRAIN_CANDS); gradients against "patch";
- prefill: "patch", "f5_off" (fwd_self_logit "off"), "no_f78", "poly0" (head dim 64: f6 off), "main_like"; o
  against "patch".
Shapes (bf16, H 16, 131,072 tokens): train at D 128 / L 16 and 4k / 32k / 128k, at L 64 and 4k / 32k (where b10
skips most), at D 64 and 32k; prefill at D 128 and D 64, 4k / 32k / 128k. Rows go to $OUT/ab_split.json as each
shape ends.
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_split.py`"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from experiments._ab import load_beside, max_diffs, prefill_step, rat_inputs, result_header, time_and_record, train_step
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, RATGluon

NO678 = {"fwd_split_masked": False, "fwd_row_tree": 0, "fwd_exp_poly": 0}
#: train variants: name -> cands.py's class whose fields it takes (besides "patch", {}, and "no_f678", NO678)
TRAIN_CANDS = {"b7b": "B7b", "b9": "B9", "fwd_only": "FwdOnly", "b7c": "B7c", "b7c_b10": "B7c10", "writer": "Writer",
               "main_like": "MainLike"}
PREFILL = {"patch": {}, "f5_off": {"fwd_self_logit": "off"}, "no_f78": {"fwd_split_masked": False, "fwd_row_tree": 0},
           "poly0": {"fwd_exp_poly": 0}, "main_like": {**NO678, "fwd_self_logit": "off"}}
PLAN = ([("train", 128, 16, T) for T in (4096, 32768, 131072)] + [("train", 128, 64, T) for T in (4096, 32768)]
        + [("train", 64, 16, 32768)] + [("prefill", 128, 16, T) for T in (4096, 32768, 131072)]
        + [("prefill", 64, 16, T) for T in (4096, 32768, 131072)])


def train_variants() -> dict[str, dict]:
    """name -> config fields of the train variants (cands.py's candidates beside this script)."""
    cands = load_beside(__file__, "cands")
    return {"patch": {}, **{n: getattr(cands, c).fields for n, c in TRAIN_CANDS.items()}, "no_f678": NO678}


def train_fn(fields: dict, xs, do, L: int):
    """rat/gluon's train step with the config's fields set."""
    return train_step(RATGluon(dataclasses.replace(GLUON_BWD_CONFIG, **fields)), xs, do, L)


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp")) / "ab_split.json"
    rounds = int(os.environ.get("ROUNDS", "3"))
    res = result_header()
    train = train_variants()
    H = 16
    for mode, D, L, T in PLAN:
        B = 131072 // T
        x, do = rat_inputs(B, T, H, D)
        row: dict = {"mode": mode, "D": D, "L": L, "T": T, "B": B}
        fns, got = {}, {}
        if mode == "train":
            xs = [t.clone().requires_grad_(True) for t in x]
            for name, fields in train.items():
                fns[name] = train_fn(fields, xs, do, L)
                fns[name]()
                got[name] = [t.grad.float() for t in xs]
            keys = ("dq", "dk", "dv", "df")
        else:
            for name, fields in PREFILL.items():
                if name == "poly0" and D != 64:
                    continue
                impl = RATGluon(dataclasses.replace(GLUON_CONFIG, **fields))
                state = impl.init_state(B, H, D, T, device="cuda", dtype=torch.bfloat16, chunk_size=L)
                fns[name] = prefill_step(impl, state, x)
                got[name] = [fns[name]().float()]
            keys = ("o",)
        row["maxdiff_vs_patch"] = {n: max_diffs(keys, g, got["patch"]) for n, g in got.items() if n != "patch"}
        row["finite"] = all(bool(torch.isfinite(a).all()) for g in got.values() for a in g)
        del got
        time_and_record(res, row, fns, out, rounds, 60 if T < 131072 else 120)


if __name__ == "__main__":
    main()
