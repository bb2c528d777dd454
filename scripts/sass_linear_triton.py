"""Compile the linear/triton kernels for sm_90 without a GPU and report registers, spills, shared
memory and the matrix instructions in the SASS (HGMMA = Hopper wgmma).

    python scripts/sass_linear_triton.py [--dump DIR] [--only NAME] [--fresh-cache]

To compare two versions of the kernels, --dump both with --fresh-cache: Triton's cache key is the
kernels' source, not its line numbers, so a cached build can hide a change of line info (a helper
inlined in place of the same code changes only the PTX's line info, and that alone changed ptxas's
schedule of some kernels). DTYPES=bf16,fp16,fp32, FP32_PRECISION (the launcher uses tf32x3 for
float32) and BT pick the builds. The tf32x3 builds spill and are not byte-for-byte reproducible
run to run (spill slots move): compare their counts instead.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.static_gate import compile_sm90, sass_stats  # shared with the static gate
from impls.linear import triton_kernels as K  # noqa: E402


def compile_one(fn, sig: dict, consts: dict, warps: int, stages: int):
    # what the launcher specialises at run time: 16-byte aligned pointers (torch allocations)
    attrs = {(i,): [["tt.divisibility", 16]] for i, (k, t) in enumerate(sig.items()) if t.startswith("*")}
    return compile_sm90(fn, sig, consts, attrs, warps, stages)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=None)
    ap.add_argument("--only", default=None, help="substring of the kernel names to compile")
    ap.add_argument("--fresh-cache", action="store_true", help="compile into an empty Triton cache")
    args = ap.parse_args()
    if args.fresh_cache:
        os.environ["TRITON_CACHE_DIR"] = cache = tempfile.mkdtemp(prefix="sass_linear_")
        atexit.register(shutil.rmtree, cache, True)
    H, D, BT = 16, 128, int(os.environ.get("BT", 64))
    for dt in os.environ.get("DTYPES", "bf16").split(","):
        p = f"*{dt}"
        prec = os.environ.get("FP32_PRECISION", "ieee") if dt == "fp32" else "tf32"
        cases = []
        for use_g in (False, True):
            for bk, bv in ((64, 64), (64, 32), (32, 32)):
                cases.append((f"fwd_h g={use_g} bk={bk} bv={bv}", K.chunk_fwd_h_kernel,
                              {"k": p, "v": p, "g": "*fp32", "h": p, "ht": "*fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BK=bk, BV=bv, USE_G=use_g, STORE_H=True, STORE_FINAL=False, PRECISION=prec), 4, 2))
                cases.append((f"bwd_dh g={use_g} bk={bk} bv={bv}", K.chunk_bwd_dh_kernel,
                              {"q": p, "do": p, "g": "*fp32", "dh": p, "scale": "fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BK=bk, BV=bv, USE_G=use_g, PRECISION=prec), 4, 2))
            for bv, w in ((64, 4), (128, 8)):
                cases.append((f"fwd_o g={use_g} bv={bv} w={w}", K.chunk_fwd_o_kernel,
                              {"q": p, "k": p, "v": p, "g": "*fp32", "h": p, "o": p, "scale": "fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, PRECISION=prec), w, 2))
            for bk, bv, w in ((64, 64, 4), (64, 32, 4), (64, 64, 8), (128, 32, 8)):
                cases.append((f"bwd_dqk g={use_g} bk={bk} bv={bv} w={w}", K.chunk_bwd_dqk_kernel,
                              {"q": p, "k": p, "v": p, "g": "*fp32", "h": p, "do": p, "dh": p, "dq": p, "dk": p,
                               "dg": "*fp32", "scale": "fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BK=bk, BV=bv, USE_G=use_g, PRECISION=prec), w, 2))
            for bv, w in ((64, 4), (128, 8)):
                cases.append((f"bwd_dv g={use_g} bv={bv} w={w}", K.chunk_bwd_dv_kernel,
                              {"q": p, "k": p, "g": "*fp32", "do": p, "dh": p, "dv": p, "scale": "fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, PRECISION=prec), w, 2))
            for bv, w in ((64, 4), (64, 8), (32, 4)):
                cases.append((f"fused_bwd_dhv g={use_g} bv={bv} w={w}", K.chunk_fused_bwd_dhv_kernel,
                              {"q": p, "k": p, "g": "*fp32", "do": p, "dh": p, "dv": p, "scale": "fp32", "T": "i32", "NT": "i32"},
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, PRECISION=prec), w, 2))
            fwd_sig = {"q": p, "k": p, "v": p, "g": "*fp32", "o": p, "h": p, "ht": "*fp32", "h0": "*fp32", "scale": "fp32",
                       "T": "i32", "NT": "i32", "L": "i32"}
            for bv, w in ((64, 4), (64, 8), (32, 4)):
                cases.append((f"fused_fwd g={use_g} bv={bv} w={w}", K.chunk_fused_fwd_kernel, fwd_sig,
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, USE_H0=False, STORE_H=True, STORE_FINAL=True,
                                   PRECISION=prec), w, 2))
            # the segmented walker of the no-grad forward / prefill (pass 3), its variants, pass 1, pass 2
            for bv, w, st in ((64, 8, 2), (64, 8, 3), (32, 4, 2), (32, 4, 3), (128, 8, 2)):
                cases.append((f"seg_fwd g={use_g} bv={bv} w={w} s={st}", K.chunk_fused_fwd_kernel, fwd_sig,
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, USE_H0=True, STORE_H=False, STORE_FINAL=True,
                                   PRECISION=prec), w, st))
            cases.append((f"seg_fwd_train g={use_g} bv=64 w=8 s=2", K.chunk_fused_fwd_kernel, fwd_sig,
                          dict(H=H, D=D, BT=BT, BV=64, USE_G=use_g, USE_H0=True, STORE_H=True, STORE_FINAL=False,
                               PRECISION=prec), 8, 2))
            for bv, w, st in ((64, 4, 3), (64, 4, 2), (128, 8, 3)):
                cases.append((f"seg_state g={use_g} bv={bv} w={w} s={st}", K.chunk_seg_state_kernel,
                              {"k": p, "v": p, "g": "*fp32", "hs": "*fp32", "gs": "*fp32", "T": "i32", "NT": "i32",
                               "L": "i32", "NS": "i32"},
                              dict(H=H, D=D, BT=BT, BV=bv, USE_G=use_g, PRECISION=prec), w, st))
            cases.append((f"seg_scan g={use_g}", K.chunk_seg_scan_kernel, {"hs": "*fp32", "gs": "*fp32", "NS": "i32"},
                          dict(D=D, BLOCK=1024, USE_G=use_g), 4, 1))
        cases.append(("step g=True", K.recurrent_step_kernel,
                      {"q": p, "k": p, "v": p, "decay": p, "S": "*fp32", "o": p, "scale": "fp32"},
                      dict(D=D, BV=32, USE_G=True), 4, 1))
        for name, fn, sig, consts, w, s in cases:
            if args.only and args.only not in name:
                continue
            sig = {**sig, **{k: "constexpr" for k in consts}}
            try:
                ck = compile_one(fn, sig, consts, w, s)
            except Exception as exc:  # noqa: BLE001
                print(f"{name:36s} FAILED: {exc}")
                continue
            st, sass = sass_stats(ck.asm["cubin"])
            print(f"{name:36s} {st['res']:40s} smem={ck.metadata.shared:6d} HGMMA={st['HGMMA']:3d} HMMA={st['HMMA']:3d} "
                  f"LDL={st['LDL']} STL={st['STL']} LDGSTS={st['LDGSTS']}")
            if args.dump:
                os.makedirs(args.dump, exist_ok=True)
                with open(os.path.join(args.dump, name.replace(" ", "_").replace("=", "") + ".sass"), "w") as f:
                    f.write(sass)


if __name__ == "__main__":
    main()
