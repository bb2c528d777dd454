"""Compile the full/swa triton kernels for sm_90 without a GPU and report registers, spills (LDL/STL),
shared memory and matrix instructions (HGMMA = Hopper wgmma). Uses scripts/sass_rat_triton.py's
compile helpers.

    python scripts/sass_full_swa_triton.py [--D 128] [--dtype bf16] [--only fwd]
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sass_rat_triton as S

from impls.full import triton_kernels as K
from impls.full.triton import DEFAULT_CONFIG as CFG
from impls.full.triton import FP32_CONFIG

S.NOT_DIV16 |= {"window", "n_old", "cur"}


def cases(D: int, dt: str):
    p, f32, i32 = f"*{dt}", "*fp32", "i32"
    HALF = D // 2
    cfg = FP32_CONFIG if dt == "fp32" else CFG
    prec = "tf32x3" if dt == "fp32" else "tf32"
    strides = {n: i32 for n in ("s_b", "s_t", "s_h", "o_b", "o_t", "o_h", "T", "H", "window")}
    for mode, causal, window in (("causal", True, False), ("window", True, True), ("noncausal", False, False)):
        for bm, bn, w, s in ((cfg.fwd_bm, cfg.fwd_bn, cfg.fwd_warps, cfg.fwd_stages), (128, 64, 8, 3), (128, 128, 8, 2)):
            yield (f"fwd {mode} bm={bm} bn={bn} w={w} s={s}", K.fwd_kernel,
                   {"Q": p, "K": p, "V": p, "O": p, "LSE": f32, **strides, "scale2": "fp32"},
                   {"BM": bm, "BN": bn, "HALF": HALF, "CAUSAL": causal, "WINDOW": window, "STORE_LSE": True,
                    "PREC": prec}, w, s)
        for bn, bm, w, s, atom in ((cfg.dkv_bn, cfg.dkv_bm, cfg.dkv_warps, cfg.dkv_stages, False),
                                   (128, 64, 8, 3, False), (64, 64, 4, 3, False), (128, 64, 8, 3, True),
                                   (64, 64, 8, 3, True)):
            yield (f"bwd_dkv{'+dq' if atom else ''} {mode} bn={bn} bm={bm} w={w} s={s}", K.bwd_dkv_kernel,
                   {"Q": p, "K": p, "V": p, "DO": p, "LSE": f32, "DELTA": f32, "DK": p, "DV": p, "DQA": f32,
                    **strides, "scale": "fp32", "scale2": "fp32"},
                   {"BM": bm, "BN": bn, "HALF": HALF, "CAUSAL": causal, "WINDOW": window, "PREC": prec,
                    "REVERSE": True, "DQ_ATOMIC": atom, "SAME_T": True}, w, s)
        for bm, bn, w, s in ((cfg.dq_bm, cfg.dq_bn, cfg.dq_warps, cfg.dq_stages), (128, 128, 8, 2)):
            yield (f"bwd_dq {mode} bm={bm} bn={bn} w={w} s={s}", K.bwd_dq_kernel,
                   {"Q": p, "K": p, "V": p, "DO": p, "LSE": f32, "DELTA": f32, "DQ": p, **strides,
                    "scale": "fp32", "scale2": "fp32"},
                   {"BM": bm, "BN": bn, "HALF": HALF, "CAUSAL": causal, "WINDOW": window, "PREC": prec}, w, s)
    yield ("bwd_pre", K.bwd_pre_kernel, {"O": p, "DO": p, "DELTA": f32, "o_b": i32, "o_t": i32, "o_h": i32, "T": i32,
                                          "H": i32}, {"BM": cfg.pre_bm, "HALF": HALF}, 4, 1)
    for skip, splits in ((False, 1), (False, 8), (True, 1)):
        yield (f"decode skip={skip} splits={splits}", K.decode_kernel,
               {"Q": p, "K": p, "V": p, "KC": p, "VC": p, "O": p, "WS": f32, "CNT": "*i32", "s_b": i32, "s_h": i32,
                "o_b": i32, "o_h": i32, "c_b": i32, "c_h": i32, "c_c": i32, "H": i32, "n_old": i32, "cur": i32,
                "n_per_split": i32, "scale2": "fp32"},
               {"HALF": HALF, "BN": cfg.step_bn, "SKIP": skip, "SPLITS": splits}, cfg.step_warps, 1)


def ones(name: str, fn, sig: dict, consts: dict, warps: int) -> None:
    from bench.static_gate import compile_sm90

    for k in [k for k in sig if k in ("T", "H", "window", "n_old", "cur", "n_per_split")]:
        sig1 = {a: ("constexpr" if a == k else b) for a, b in sig.items()}
        attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(sig1)
                 if n not in S.NOT_DIV16 and sig1[n] not in ("fp32", "constexpr")}
        try:
            compile_sm90(fn, {**sig1, **{x: "constexpr" for x in consts}}, {**consts, k: 1}, attrs, warps, 1)
            print(f"{name:40s} {k}=1 ok", flush=True)
        except Exception as exc:  # noqa: BLE001
            print(f"{name:40s} {k}=1 FAILED: {str(exc)[:300]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    ap.add_argument("--only", default=None, help="substring of the case names to compile")
    ap.add_argument("--ones", action="store_true",
                    help="compile each case once per int argument set to constexpr 1 (what the launcher's "
                         "specialisation does to an int that equals 1: T, H, window, n_old, cur)")
    args = ap.parse_args()
    for name, fn, sig, consts, w, s in cases(args.D, args.dtype):
        if args.only and args.only not in name:
            continue
        if args.ones:
            ones(name, fn, sig, consts, w)
            continue
        try:
            ck = S.compile_one(fn, sig, consts, w, s)
        except Exception as exc:  # noqa: BLE001
            print(f"{name:40s} FAILED: {str(exc)[:400]}")
            continue
        st, _ = S.sass_stats(ck.asm["cubin"])
        print(f"{name:40s} {st['res']:40s} smem={ck.metadata.shared:6d} HGMMA={st['HGMMA']:3d} HMMA={st['HMMA']:3d} "
              f"LDL={st['LDL']} STL={st['STL']}", flush=True)


if __name__ == "__main__":
    main()
