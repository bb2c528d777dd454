"""Compile the rat/triton kernels for sm_90 without a GPU and report registers, spills (LDL/STL),
shared memory and the matrix instructions in the SASS (HGMMA = Hopper wgmma).

    python scripts/sass_rat_triton.py [--dump DIR] [--L 16] [--D 128] [--only NAME] [--loops]

The kernels of impls/rat/kernels/ at the default configs and at the tile settings measured beside them.
--loops: per loop (a backward branch, bodies over 100 instructions) the counts of MUFU.EX2, FFMA, FADD, FMNMX,
HGMMA, WARPGROUP.DEPBAR, spills and all instructions, and those issued with no wgmma in flight ("exposed": all
instructions, MUFU.EX2). The variants measured and removed are compiled from their last commit (impls/rat/NOTES.md,
"Removed variants").
"""
from __future__ import annotations

import argparse
import inspect
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.static_gate import compile_sm90, sass_stats  # shared with the static gate
from impls.rat import kernels as K
from impls.rat.triton import DEFAULT_CONFIG as CFG
from impls.rat.triton import step_launch

# run-time specialisation marks pointers and integers divisible by 16 (tt.divisibility = 16): do the
# same here, else the SASS shows scalar 2-byte loads that the real launch does not have
NOT_DIV16 = {"H", "C", "c", "reset", "n_rows", "scale", "scale2", "n_per_split", "NSB", "NS"}


def compile_one(fn, sig: dict, consts: dict, warps: int, stages: int):
    # constexpr parameters with a default get it, as a launch binds them (triton 3.6's ASTSource does not;
    # 3.7.1's does)
    consts = {**{n: p.default for n, p in inspect.signature(fn.fn).parameters.items()
                 if n not in sig and n not in consts and p.default is not inspect.Parameter.empty}, **consts}
    names = list(sig)
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names)
             if n not in NOT_DIV16 and sig[n] != "fp32"}
    sig = {**sig, **{k: "constexpr" for k in consts}}
    return compile_sm90(fn, sig, consts, attrs, warps, stages)


def cases(L: int, D: int, dt: str = "bf16"):
    p, f32, i32 = f"*{dt}", "*fp32", "i32"
    HALF = D // 2
    for nc, w in ((CFG.scan_nc, CFG.scan_warps), (32, 4), (16, 8), (32, 8)):
        yield (f"scan nc={nc} w={w}", K.scan_kernel,
               {"K": p, "V": p, "F": p, "COS": f32, "SIN": f32, "KTR": p, "VT": p, "KE": p, "VE": p, "STK": f32, "STV": f32,
                    "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "e_b": i32, "e_h": i32, "e_c": i32, "T": i32, "H": i32,
                    "C": i32, "n_rows": i32}, {"L": L, "NC": nc, "HALF": HALF, "ROPE": True, "WRITE_LAST": False}, w, 1)
        yield (f"bwd_scan nc={nc // 2} w={w}", K.bwd_scan_kernel,
               {"Q": p, "K": p, "V": p, "F": p, "KTR": p, "VT": p, "DO": p, "LSE": f32, "DELTA": f32, "COS": f32, "SIN": f32, "DKE": f32, "DVE": f32,
                    "DK": p, "DV": p, "DF": p, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "T": i32, "H": i32, "C": i32,
                    "n_rows": i32, "scale": "fp32", "scale2": "fp32"},
               {"L": L, "NC": nc // 2, "HALF": HALF, "ROPE": True}, w, 1)
    # two-level scans for long chunks (v7)
    S = CFG.lscan_s
    for nb, w in ((CFG.lscan_nb, CFG.scan_warps), (8, 4), (32, 8)):
        yield (f"lscan_sum nb={nb} w={w}", K.lscan_sum_kernel,
               {"K": p, "V": p, "F": p, "SP": f32, "SK": f32, "SV": f32, "s_b": i32, "s_t": i32, "s_h": i32, "T": i32,
                    "H": i32, "NSB": i32, "NS": i32, "n_rows": i32}, {"L": L, "S": S, "NB": nb, "HALF": HALF}, w, 1)
        yield (f"lscan nb={nb} w={w}", K.lscan_kernel,
               {"K": p, "V": p, "F": p, "COS": f32, "SIN": f32, "KTR": p, "VT": p, "KE": p, "VE": p, "STK": f32, "STV": f32,
                    "SK": f32, "SV": f32, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "e_b": i32,
                    "e_h": i32, "e_c": i32, "T": i32, "H": i32, "NSB": i32, "NS": i32, "n_rows": i32},
               {"L": L, "S": S, "NB": nb, "HALF": HALF, "ROPE": True, "WRITE_LAST": False}, w, 1)
    for nb, w in ((CFG.lscan_bnb, CFG.bscan_warps), (4, 4), (16, 8)):
        bsig = {"Q": p, "F": p, "KTR": p, "VT": p, "DO": p, "LSE": f32, "DELTA": f32, "COS": f32, "SIN": f32, "DKE": f32,
                "DVE": f32, "SP": f32, "SK": f32, "SV": f32, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32,
                "o_h": i32, "T": i32, "H": i32, "C": i32, "NSB": i32, "NS": i32, "n_rows": i32, "scale": "fp32",
                "scale2": "fp32"}
        yield (f"bwd_lscan_sum nb={nb} w={w}", K.bwd_lscan_sum_kernel, bsig,
               {"L": L, "S": S, "NB": nb, "HALF": HALF, "ROPE": True}, w, 1)
        yield (f"bwd_lscan nb={nb} w={w}", K.bwd_lscan_kernel,
               {"Q": p, "K": p, "V": p, "F": p, "KTR": p, "VT": p, "DO": p, "LSE": f32, "DELTA": f32, "COS": f32, "SIN": f32,
                    "DKE": f32, "DVE": f32, "DK": p, "DV": p, "DF": p, "SK": f32, "SV": f32,
                    "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "T": i32, "H": i32, "C": i32,
                    "NSB": i32, "NS": i32, "n_rows": i32, "scale": "fp32", "scale2": "fp32"},
               {"L": L, "S": S, "NB": nb, "HALF": HALF, "ROPE": True}, w, 1)
    for cb in (CFG.lscan_cb, 32, 128):
        for rev in (False, True):
            yield (f"lscan_carry cb={cb} rev={rev}", K.lscan_carry_kernel,
                   {"SP": f32, "SK": f32, "SV": f32, "NSB": i32, "NS": i32}, {"D": D, "BD": 32, "CB": cb, "REVERSE": rev},
                   4, 1)
    for bm, bn, w, s in ((CFG.fwd_bm, CFG.fwd_bn, CFG.fwd_warps, CFG.fwd_stages), (128, 128, 8, 2),
                         (128, 64, 8, 3), (128, 128, 8, 3), (64, 64, 4, 2)):
        yield (f"fwd bm={bm} bn={bn} w={w} s={s}", K.fwd_kernel,
               {"Q": p, "KTR": p, "VT": p, "COS": f32, "SIN": f32, "KE": p, "VE": p, "O": p, "LSE": f32,
                    "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "e_b": i32, "e_h": i32, "e_c": i32, "T": i32,
                    "H": i32, "scale2": "fp32"},
               {"L": L, "BM": bm, "BN": bn, "HALF": HALF, "ROPE": True, "STORE_LSE": True, "PREC": "tf32"}, w, s)
    for bn, bm, w, s in ((128, 64, 8, 4), (128, 64, 8, 3), (128, 64, 8, 2), (64, 64, 4, 3), (64, 64, 8, 3),
                         (128, 32, 8, 3)):  # last: gate_variants.RATDkvBM32 on the session-4 default
        # dP^T before the exponentials (v8; the 16-bit default's dK/dV kernel at 3 stages since session 4)
        yield (f"bwd_dkv_early bn={bn} bm={bm} w={w} s={s}", K.bwd_dkv_early_kernel,
               {"QR": p, "DO": p, "LSE": f32, "DELTA": f32, "KE": p, "VE": p, "DKE": f32, "DVE": f32, "o_b": i32, "o_t": i32, "o_h": i32,
                    "e_b": i32, "e_h": i32, "e_c": i32, "T": i32, "H": i32, "C": i32, "scale": "fp32", "scale2": "fp32"},
               {"L": L, "BM": bm, "BN": bn, "HALF": HALF, "PREC": "tf32"}, w, s)
    yield ("bwd_pre", K.bwd_pre_kernel,
           {"Q": p, "O": p, "DO": p, "COS": f32, "SIN": f32, "DELTA": f32, "QR": p, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32,
                "o_h": i32, "T": i32, "H": i32}, {"L": L, "BM": CFG.pre_bm, "HALF": HALF, "ROPE": True}, 4, 1)
    for bn, bm, w, s in ((128, 64, 8, 4), (128, 64, 8, 3), (64, 64, 8, 1), (128, 32, 8, 4)):
        # the float32 backward's dK/dV kernel (FP32_CONFIG: 64 / 64, 8 warps, 1 stage) and its 16-bit tiles before
        # session 4 (last: gate_variants.RATDkvBM32 then)
        yield (f"bwd_dkv bn={bn} bm={bm} w={w} s={s}", K.bwd_dkv_kernel,
               {"QR": p, "DO": p, "LSE": f32, "DELTA": f32, "KE": p, "VE": p, "DKE": f32, "DVE": f32, "o_b": i32, "o_t": i32, "o_h": i32,
                    "e_b": i32, "e_h": i32, "e_c": i32, "T": i32, "H": i32, "C": i32, "scale": "fp32", "scale2": "fp32"},
               {"L": L, "BM": bm, "BN": bn, "HALF": HALF, "PREC": "tf32"}, w, s)
    for bm, bn, w, s in ((CFG.dq_bm, CFG.dq_bn, CFG.dq_warps, CFG.dq_stages), (128, 32, 8, 2), (128, 64, 8, 2),
                         (128, 64, 8, 3), (64, 64, 8, 3)):
        yield (f"bwd_dq bm={bm} bn={bn} w={w} s={s}", K.bwd_dq_kernel,
               {"Q": p, "KTR": p, "VT": p, "DO": p, "COS": f32, "SIN": f32, "KE": p, "VE": p, "LSE": f32, "DELTA": f32,
                    "DQ": p, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32, "o_h": i32, "e_b": i32,
                    "e_h": i32, "e_c": i32, "T": i32, "H": i32, "scale": "fp32", "scale2": "fp32"},
               {"L": L, "BM": bm, "BN": bn, "HALF": HALF, "ROPE": True, "PREC": "tf32"}, w, s)
    for bm, bn, w, s in ((CFG.dq_bm, CFG.dq_bn, CFG.dq_warps, CFG.dq_stages), (128, 64, 8, 2), (64, 64, 8, 3),
                         (128, 64, 8, 4), (128, 128, 8, 2), (64, 128, 8, 3), (64, 64, 4, 3)):
        # dq with Delta and RoPE(q), before the dK/dV kernel (v10; the 16-bit default since session 4)
        yield (f"bwd_dq_pre bm={bm} bn={bn} w={w} s={s}", K.bwd_dq_pre_kernel,
               {"Q": p, "O": p, "KTR": p, "VT": p, "DO": p, "COS": f32, "SIN": f32, "KE": p, "VE": p, "LSE": f32,
                    "DELTA": f32, "QR": p, "DQ": p, "s_b": i32, "s_t": i32, "s_h": i32, "o_b": i32, "o_t": i32,
                    "o_h": i32, "e_b": i32, "e_h": i32, "e_c": i32, "T": i32, "H": i32, "scale": "fp32",
                    "scale2": "fp32"},
               {"L": L, "BM": bm, "BN": bn, "HALF": HALF, "ROPE": True, "PREC": "tf32"}, w, s)
    step_sig = {"Q": p, "K": p, "V": p, "F": p, "KT": f32, "VT": f32, "KC": p, "VC": p, "COS": f32, "SIN": f32, "O": p,
                "WS": f32, "CNT": "*i32", "s_b": i32, "s_h": i32, "o_b": i32, "o_h": i32, "c_b": i32, "c_h": i32,
                "c_c": i32, "H": i32, "c": i32, "reset": i32, "n_per_split": i32, "scale2": "fp32"}
    # the launches impls.rat.triton.step_launch picks: split (few B*H), one split with few / many slots
    launches = (("step", step_launch(CFG, 16, 8192, 132)), ("step 1 split", step_launch(CFG, 1024, 256, 132)),
                ("step 1 split long", step_launch(CFG, 1024, 1024, 132)))
    for name, (sp, bn, w) in launches:
        yield (name, K.step_kernel, step_sig, {"HALF": HALF, "BN": bn, "ROPE": True, "SPLITS": sp}, w, 1)


LOOP_OPS = ("MUFU.EX2", "FFMA", "FADD", "FMUL", "FMNMX", "HGMMA", "WARPGROUP.DEPBAR", "STL", "LDL", "UTMAREDG",
            "DEPBAR", "BAR")


def loop_stats(sass: str, min_len: int = 100) -> list[dict]:
    """Instruction counts of every loop body (a branch back to an earlier address) of a cuobjdump -sass listing."""
    ins = [(int(m.group(1), 16), m.group(2).strip()) for m in re.finditer(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    at = {a: i for i, (a, _) in enumerate(ins)}
    out = []
    for i, (a, text) in enumerate(ins):
        m = re.search(r"\bBRA\s+(?:`\(\.L_x_\d+\)\s*)?0x([0-9a-f]+)", text)
        if not m or int(m.group(1), 16) > a or int(m.group(1), 16) not in at:
            continue
        body = [re.sub(r"^@!?U?P\w+\s+", "", t).split()[0] for _, t in ins[at[int(m.group(1), 16)]:i + 1]]
        if len(body) >= min_len:
            row = {op: sum(1 for b in body if b == op or b.startswith(op + ".")) for op in LOOP_OPS}
            # "exposed": issued while no wgmma is in flight (after a WARPGROUP.DEPBAR, before the next HGMMA; all
            # waits here are wait-0); the state at the loop head is the one at its end (second pass)
            busy = ex = ex_mufu = 0
            for rep in range(2):
                ex = ex_mufu = 0
                for b in body:
                    busy = 1 if b.startswith("HGMMA") else (0 if b.startswith("WARPGROUP.DEPBAR") else busy)
                    ex += 1 - busy
                    ex_mufu += (1 - busy) * b.startswith("MUFU.EX2")
            out.append({**row, "total": len(body), "exposed": ex, "exposed_MUFU.EX2": ex_mufu})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=None)
    ap.add_argument("--L", type=int, default=16)
    ap.add_argument("--D", type=int, default=128)
    ap.add_argument("--only", default=None, help="substring of the case names to compile")
    ap.add_argument("--loops", action="store_true", help="instruction counts per loop body")
    args = ap.parse_args()
    for name, fn, sig, consts, w, s in cases(args.L, args.D):
        if args.only and args.only not in name:
            continue
        try:
            ck = compile_one(fn, sig, consts, w, s)
        except Exception as exc:  # noqa: BLE001
            print(f"{name:36s} FAILED: {str(exc)[:400]}")
            continue
        st, sass = sass_stats(ck.asm["cubin"])
        print(f"{name:36s} {st['res']:40s} smem={ck.metadata.shared:6d} HGMMA={st['HGMMA']:3d} HMMA={st['HMMA']:3d} "
              f"LDL={st['LDL']} STL={st['STL']} LDGSTS={st['LDGSTS']}", flush=True)
        if args.loops:
            for row in loop_stats(sass):
                print("    loop: " + " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            with open(os.path.join(args.dump, name.replace(" ", "_").replace("=", "") + ".sass"), "w") as f:
                f.write(sass)


if __name__ == "__main__":
    main()
