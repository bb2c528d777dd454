"""The backward scan's memory-level parallelism (thirty-third session): bwd_scan_kernel as rat/gluon launches it
(DQ_OUT, RoPE) against two variants of its loop, each timed alone per kernel.

The count: at D 128, 32k the scan moves 13 U (reads q_r, kt_r, vt, dO, f, k, v and the float32 dq accumulator,
writes dk, dv, df, dq; U = one bf16 token tensor, 0.54 GB at 131,072 tokens) in 1.86 ms on the H200 (s22's profile):
89% of the 4.2 TB/s copy rate, where the forward scan moves its 5 U at 93% and the pre pass its 2 U at 98.5%. On an
H100 the same kernel runs at 92-95%. Each row's loads wait for the row before it in the program's loop (a program is
NC chunks of one head side by side), so the bytes in flight per multiprocessor are what its resident programs have
issued for one row each.
- `pf`: the next row's loads issued before this row's arithmetic and stores (one row of software pipelining by
  hand). Row l - 1's kt_r and vt are this row's previous states and the next row's self-term inputs: loaded once.
- `hf`: the grid's axes swapped, heads fastest, so that the programs running together read the same rows of 16
  heads (the inputs are (B, T, H, D): one 4 KB token row at D 128) rather than 256 B of each row of two or three
  heads.
- `acc`: bwd_scan_kernel's loop with the dq accumulator's load before the row's stores (in bwd_scan_kernel's SASS
  it comes after them: ptxas does not move a load above stores it may alias, so each row waits for loads twice).
- `cr` (thirty-fourth session): acc, and a row's kt_r, vt carried from the row after it (which loaded them as its
  previous states) instead of loaded again: 18 global loads per row in its SASS against bwd_scan_kernel's 22 (sm_90,
  triton 3.7.1, D 128 32k: 127 registers against 126, no spills), all before the row's 8 stores.
- `acc-nc/2` (thirty-fourth session): acc with half the chunks side by side (at D 128 32k with the float32
  accumulator 4 instead of 8: 72 registers, seven programs per multiprocessor instead of four; measured only at 4k
  before, where 4 was 2.9% slower than 8, twenty-ninth session).
- `pfhf`: both; `pf-nc/2`: pf with half the chunks side by side (pf takes 168 registers against 126 at D 128 with 8
  chunks on sm_90, triton 3.7.1: three programs per multiprocessor against four; 96 against 72 at 4 chunks).
Prediction (written before any GPU run): on the H200 pf 0-6% faster than the product kernel (at most up to about
95% of the copy rate, -0.11 ms at 32k), hf within +-2%; on an H100 (92-95% already) pf within +-2%. Rule: a variant
that is faster in every round at D 128 and D 64 on the H200 goes into scan.py.

Outputs are compared with the product kernel's (they do the same arithmetic in the same order: equal up to fused
multiply-adds). Times: medians of interleaved rounds (experiments/_ab.py). Run from the repository root:
`PYTHONPATH=. python experiments/rat-gluon-next/bscan_mlp.py [--shapes 128:16:32768,64:16:4096] [--rounds 7]
[--variants main,acc,cr]`;
`TRITON_INTERPRET=1 PYTHONPATH=. python experiments/rat-gluon-next/bscan_mlp.py --cpu` checks the variants against
the product kernel in float32 on the interpreter.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import torch
import triton
import triton.language as tl

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _rope_t, _store2
from ratbench.impls.rat.kernels.scan import _bwd_direct, _bwd_scan_step
from ratbench.impls.rat.triton import rope_tables

TOKENS = 131072
H = 16
#: name: (PF, HF, chunks side by side as a share of the product launch's, ACC_FIRST, CR)
VARIANTS = {"main": (False, False, 1.0, False, False), "pf": (True, False, 1.0, False, False),
            "pf-nc/2": (True, False, 0.5, False, False), "hf": (False, True, 1.0, False, False),
            "pfhf": (True, True, 1.0, False, False), "acc": (False, False, 1.0, True, False),
            "cr": (False, False, 1.0, True, True), "acc-nc/2": (False, False, 0.5, True, False)}


@triton.jit
def _chunks_hf(COS, SIN, H, C, NC: tl.constexpr, HALF: tl.constexpr, HF: tl.constexpr):
    """scan.py's _chunks (RoPE on) with the grid's axes swappable: HF, program (bh, chunk group) instead of (chunk
    group, bh). Returns bh, b, h, the chunk ids and their mask, the half-row's column offsets and cos, sin per chunk.
    (fscan_hf.py's copy of scan_kernel has these lines of its own: the study scripts import from the repository root
    only, tests/test_scripts_folded.py.)"""
    if HF:
        bh = tl.program_id(0)
        pid = tl.program_id(1)
    else:
        pid = tl.program_id(0)
        bh = tl.program_id(1)
    cid = pid * NC + tl.arange(0, NC)
    cm = cid < C
    d2 = tl.arange(0, HALF)[None, :]
    cos, sin = _cos_sin(COS, SIN, cid, cm, d2, HALF)
    return bh, bh // H, bh % H, cid, cm, d2, cos, sin


@triton.jit
def _row_at(cid, l, cm, T, in_off, out_off, s_t, o_t, bh, Tp, L: tl.constexpr, HALF: tl.constexpr):
    """Row l of the program's chunks: rows, their mask (rv, and m as a column), the inputs' (ptr), outputs' (optr)
    and RoPE(q) / accumulator's (qp, (B*H, Tp, D)) offsets."""
    rows = cid.to(tl.int64) * L + l
    rv = cm & (rows < T)
    d2 = tl.arange(0, HALF)[None, :]
    qp = (bh.to(tl.int64) * Tp + rows)[:, None] * (2 * HALF) + d2
    return rows, rv, rv[:, None], in_off + rows[:, None] * s_t + d2, out_off + rows[:, None] * o_t + d2, qp


@triton.jit
def _row_in(Q, K_, V, F, DO, LSE, DELTA, DQACC, qp, ptr, optr, rows, m, rv, r_off, HALF: tl.constexpr):
    """A row's inputs but its kt_r and vt: q_r, dO, lse, Delta, f, k, v and the dq accumulator (float32)."""
    q1, q2 = _load2(Q + qp, m, 0.0, HALF)
    do1, do2 = _load2(DO + optr, m, 0.0, HALF)
    lse = tl.load(LSE + r_off + rows, mask=rv, other=0.0)
    delta = tl.load(DELTA + r_off + rows, mask=rv, other=0.0)
    f1, f2 = _load2(F + ptr, m, 0.0, HALF)
    k1, k2 = _load2(K_ + ptr, m, 0.0, HALF)
    v1, v2 = _load2(V + ptr, m, 0.0, HALF)
    a1, a2 = _load2(DQACC + qp, m, 0.0, HALF)
    return q1, q2, do1, do2, lse, delta, f1, f2, k1, k2, v1, v2, a1, a2


@triton.jit
def _row_out(DK, DV, DF, DQ, optr, m, last, q1, q2, do1, do2, lse, delta, f1, f2, k1, k2, v1, v2, a1, a2, kr1, kr2,
             vt1, vt2, kp1, kp2, vp1, vp2, gk1, gk2, gv1, gv2, fn1, fn2, dke1, dke2, dve1, dve2, cos, sin, scale, scale2,
             HALF: tl.constexpr):
    """A row's outputs from its loaded inputs (kp, vp: its previous states, RoPE'd kt and vt of the row before): the
    self term (as _bwd_direct), dK_c / dV_c at the chunk's last row, the recurrence and dk, dv, df, dq (as
    _bwd_scan_step and bwd_scan_kernel's DQ_OUT). Returns g (gk1, gk2, gv1, gv2)."""
    p_s = tl.exp2(tl.sum(q1 * kr1 + q2 * kr2, 1) * scale2 - lse)
    ds_s = scale * p_s * (tl.sum(do1 * vt1 + do2 * vt2, 1) - delta)
    dk1 = ds_s[:, None] * q1
    dk2 = ds_s[:, None] * q2
    dv1 = p_s[:, None] * do1
    dv2 = p_s[:, None] * do2
    if last:
        dk1 += dke1
        dk2 += dke2
        dv1 += dve1
        dv2 += dve2
    dk1, dk2 = _rope_t(dk1, dk2, cos, sin)
    gk1 = dk1 + fn1 * gk1
    gk2 = dk2 + fn2 * gk2
    gv1 = dv1 + fn1 * gv1
    gv2 = dv2 + fn2 * gv2
    ku1, ku2 = _rope_t(kp1, kp2, cos, sin)
    _store2(DK + optr, (1.0 - f1) * gk1, (1.0 - f2) * gk2, m, HALF)
    _store2(DV + optr, (1.0 - f1) * gv1, (1.0 - f2) * gv2, m, HALF)
    _store2(DF + optr, gk1 * (ku1 - k1) + gv1 * (vp1 - v1), gk2 * (ku2 - k2) + gv2 * (vp2 - v2), m, HALF)
    a1 = a1 * scale + ds_s[:, None] * kr1
    a2 = a2 * scale + ds_s[:, None] * kr2
    a1, a2 = _rope_t(a1, a2, cos, sin)
    _store2(DQ + optr, a1, a2, m, HALF)
    return gk1, gk2, gv1, gv2


@triton.jit
def bwd_scan_x(
    Q, K_, V, F, KTR, VT, DO, LSE, DELTA, COS, SIN, DKE, DVE, DK, DV, DF, DQACC, DQ,
    s_b, s_t, s_h, o_b, o_t, o_h, T, H, C, n_rows, scale, scale2, Tp,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, PF: tl.constexpr, HF: tl.constexpr,
    ACC_FIRST: tl.constexpr = False, CR: tl.constexpr = False,
):
    """bwd_scan_kernel with DQ_OUT and RoPE (rat/gluon's launch); HF: program (bh, chunk group) instead of (chunk
    group, bh); PF: the next row's loads before this row's work; ACC_FIRST (without PF): the dq accumulator's load
    before the row's stores, where bwd_scan_kernel has it after them; CR (without PF): a row's kt_r, vt carried from
    the row after it, which loaded them as its previous states, and all of the row's loads before its stores."""
    bh, b, h, cid, cm, d2, cos, sin = _chunks_hf(COS, SIN, H, C, NC, HALF, HF)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    r_off = bh.to(tl.int64) * T
    gk1 = tl.zeros([NC, HALF], tl.float32)
    gk2 = tl.zeros([NC, HALF], tl.float32)
    gv1 = tl.zeros([NC, HALF], tl.float32)
    gv2 = tl.zeros([NC, HALF], tl.float32)
    fn1 = gk1
    fn2 = gk1
    eptr = bh.to(tl.int64) * C * 2 * HALF + cid.to(tl.int64)[:, None] * 2 * HALF + d2
    dke1, dke2 = _load2(DKE + eptr, cm[:, None], 0.0, HALF)
    dve1, dve2 = _load2(DVE + eptr, cm[:, None], 0.0, HALF)
    if PF:
        rows, rv, m, ptr, optr, qp = _row_at(cid, L - 1, cm, T, in_off, out_off, s_t, o_t, bh, Tp, L, HALF)
        q1, q2, do1, do2, lse, delta, f1, f2, k1, k2, v1, v2, a1, a2 = _row_in(
            Q, K_, V, F, DO, LSE, DELTA, DQACC, qp, ptr, optr, rows, m, rv, r_off, HALF)
        kr1, kr2 = _load2(KTR + optr, m, 0.0, HALF)
        vt1, vt2 = _load2(VT + optr, m, 0.0, HALF)
        for i in range(n_rows):  # n_rows == L
            l = L - 1 - i
            # the row before: its kt_r, vt (this row's previous states) and its other inputs, issued first
            prow = rows - 1
            pv = rv & (l > 0)
            pm = pv[:, None]
            pptr = ptr - s_t
            poptr = optr - o_t
            pqp = qp - 2 * HALF
            kp1, kp2 = _load2(KTR + poptr, pm, 0.0, HALF)
            vp1, vp2 = _load2(VT + poptr, pm, 0.0, HALF)
            nq1, nq2, ndo1, ndo2, nlse, ndelta, nf1, nf2, nk1, nk2, nv1, nv2, na1, na2 = _row_in(
                Q, K_, V, F, DO, LSE, DELTA, DQACC, pqp, pptr, poptr, prow, pm, pv, r_off, HALF)
            # this row: the self term (as _bwd_direct), the recurrence and its outputs (as _bwd_scan_step)
            gk1, gk2, gv1, gv2 = _row_out(DK, DV, DF, DQ, optr, m, l == L - 1, q1, q2, do1, do2, lse, delta, f1, f2,
                                          k1, k2, v1, v2, a1, a2, kr1, kr2, vt1, vt2, kp1, kp2, vp1, vp2, gk1, gk2,
                                          gv1, gv2, fn1, fn2, dke1, dke2, dve1, dve2, cos, sin, scale, scale2, HALF)
            fn1 = f1
            fn2 = f2
            # the row before becomes this row
            rows, rv, m, ptr, optr, qp = prow, pv, pm, pptr, poptr, pqp
            q1, q2, do1, do2, lse, delta, f1, f2 = nq1, nq2, ndo1, ndo2, nlse, ndelta, nf1, nf2
            k1, k2, v1, v2, a1, a2, kr1, kr2, vt1, vt2 = nk1, nk2, nv1, nv2, na1, na2, kp1, kp2, vp1, vp2
    elif CR:
        rows, rv, m, ptr, optr, qp = _row_at(cid, L - 1, cm, T, in_off, out_off, s_t, o_t, bh, Tp, L, HALF)
        kr1, kr2 = _load2(KTR + optr, m, 0.0, HALF)
        vt1, vt2 = _load2(VT + optr, m, 0.0, HALF)
        for i in range(n_rows):  # n_rows == L
            l = L - 1 - i
            rows, rv, m, ptr, optr, qp = _row_at(cid, l, cm, T, in_off, out_off, s_t, o_t, bh, Tp, L, HALF)
            q1, q2, do1, do2, lse, delta, f1, f2, k1, k2, v1, v2, a1, a2 = _row_in(
                Q, K_, V, F, DO, LSE, DELTA, DQACC, qp, ptr, optr, rows, m, rv, r_off, HALF)
            pm = (rv & (l > 0))[:, None]
            kp1, kp2 = _load2(KTR + optr - o_t, pm, 0.0, HALF)
            vp1, vp2 = _load2(VT + optr - o_t, pm, 0.0, HALF)
            gk1, gk2, gv1, gv2 = _row_out(DK, DV, DF, DQ, optr, m, l == L - 1, q1, q2, do1, do2, lse, delta, f1, f2,
                                          k1, k2, v1, v2, a1, a2, kr1, kr2, vt1, vt2, kp1, kp2, vp1, vp2, gk1, gk2,
                                          gv1, gv2, fn1, fn2, dke1, dke2, dve1, dve2, cos, sin, scale, scale2, HALF)
            fn1 = f1
            fn2 = f2
            kr1, kr2, vt1, vt2 = kp1, kp2, vp1, vp2
    else:
        for i in range(n_rows):  # n_rows == L: bwd_scan_kernel's loop with DQ_OUT
            l = L - 1 - i
            rows, rv, m, ptr, optr, qp = _row_at(cid, l, cm, T, in_off, out_off, s_t, o_t, bh, Tp, L, HALF)
            dk1, dk2, dv1, dv2, _kr1, _kr2, _ds = _bwd_direct(Q, KTR, VT, DO, LSE, DELTA, qp, optr, rows, m, rv,
                                                              r_off, cos, sin, scale, scale2, HALF, False)
            if l == L - 1:
                dk1 += dke1
                dk2 += dke2
                dv1 += dve1
                dv2 += dve2
            if ACC_FIRST:
                a1, a2 = _load2(DQACC + qp, m, 0.0, HALF)
            gk1, gk2, gv1, gv2, fn1, fn2 = _bwd_scan_step(K_, V, F, KTR, VT, DK, DV, DF, ptr, optr, o_t, m, l, dk1,
                                                          dk2, dv1, dv2, gk1, gk2, gv1, gv2, fn1, fn2, cos, sin,
                                                          HALF, True)
            if not ACC_FIRST:
                a1, a2 = _load2(DQACC + qp, m, 0.0, HALF)
            a1 = a1 * scale + _ds[:, None] * _kr1
            a2 = a2 * scale + _ds[:, None] * _kr2
            a1, a2 = _rope_t(a1, a2, cos, sin)
            _store2(DQ + optr, a1, a2, m, HALF)


def _inputs(B: int, T: int, D: int, L: int, dev: torch.device, dt: torch.dtype, acc16: bool = False) -> dict:
    g = torch.Generator(device=dev).manual_seed(1)

    def r(*s, t=dt):
        return torch.randn(*s, device=dev, generator=g).to(t)

    C = T // L
    x = {n: r(B, T, H, D) for n in ("k", "v", "ktr", "vt", "do")}
    x["f"] = torch.sigmoid(r(B, T, H, D, t=torch.float32) + 2.0).to(dt)
    x["qr"] = r(B * H, T, D)
    x["lse"] = r(B * H, T, t=torch.float32) + 8.0
    x["delta"] = r(B * H, T, t=torch.float32)
    x["dke"] = r(B * H, C, D, t=torch.float32)
    x["dve"] = r(B * H, C, D, t=torch.float32)
    x["acc"] = r(B * H, T, D, t=dt if acc16 else torch.float32)
    x["cos"], x["sin"] = rope_tables(C, D, dev)
    return x


def _launch(x: dict, T: int, D: int, L: int, nc: int, variant: str):
    """A launch of the variant (or "kernel": bwd_scan_kernel itself) and its outputs dk, dv, df, dq."""
    k = x["k"]
    B = k.shape[0]
    C = T // L
    outs = [torch.empty_like(k) for _ in range(4)]
    st = (k.stride(0), k.stride(1), k.stride(2))
    scale = D ** -0.5
    args = (x["qr"], k, x["v"], x["f"], x["ktr"], x["vt"], x["do"], x["lse"], x["delta"], x["cos"], x["sin"],
            x["dke"], x["dve"], *outs[:3], x["acc"], outs[3], *st, *st, T, H, C, L, scale, scale * K.LOG2E, T)
    if variant == "kernel":
        def launch():
            K.bwd_scan_kernel[(math.ceil(C / nc), B * H)](*args, L=L, NC=nc, HALF=D // 2, ROPE=True, DQ_OUT=True,
                                                          num_warps=4, num_stages=1)
        return launch, outs
    pf, hf, share, acc_first, cr = VARIANTS[variant]
    nc = max(1, int(nc * share))
    grid = (B * H, math.ceil(C / nc)) if hf else (math.ceil(C / nc), B * H)

    def launch():
        bwd_scan_x[grid](*args, L=L, NC=nc, HALF=D // 2, PF=pf, HF=hf, ACC_FIRST=acc_first, CR=cr,
                         num_warps=4, num_stages=1)
    return launch, outs


def _compare(x: dict, T: int, D: int, L: int, nc: int, names: list[str]) -> dict[str, float]:
    """The largest difference of each variant's outputs from bwd_scan_kernel's, relative to the output's largest
    value; and the launches by name."""
    ref_launch, ref = _launch(x, T, D, L, nc, "kernel")
    ref_launch()
    errs = {}
    for n in names:
        launch, got = _launch(x, T, D, L, nc, n)
        launch()
        errs[n] = max(float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30))
                      for a, b in zip(got, ref))
    return errs


def _cpu_check() -> None:
    """The interpreter, float32 (bf16 is wrong there): every variant against bwd_scan_kernel; a partial last chunk
    and NC not dividing C covered."""
    dev = torch.device("cpu")
    for B, T, D, L, nc in ((1, 64, 16, 8, 4), (2, 60, 16, 4, 4), (1, 48, 32, 16, 2)):
        x = _inputs(B, T, D, L, dev, torch.float32)
        x["ktr"][:, T - T % L if T % L else T:] = 0  # rows past T are never read as states
        errs = _compare(x, T, D, L, nc, list(VARIANTS))
        print(f"B {B} T {T} D {D} L {L} NC {nc}:", {n: f"{e:.1e}" for n, e in errs.items()})
        bad = {n: e for n, e in errs.items() if not e < 1e-5}
        if bad:
            raise SystemExit(f"variants differ from bwd_scan_kernel: {bad}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shapes", default="128:16:32768,128:16:4096,64:16:4096,64:16:32768", help="D:L:T")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    ap.add_argument("--cpu", action="store_true", help="check the variants on the interpreter (TRITON_INTERPRET=1)")
    args = ap.parse_args()
    names = args.variants.split(",")
    if unknown := sorted(set(names) - set(VARIANTS)):
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.cpu:
        _cpu_check()
        return
    from experiments._ab import interleaved, median, result_header
    from ratbench.impls.rat.gluon import bscan_nc, dq_acc16_used

    dev = torch.device("cuda")
    res = result_header(script="bscan_mlp.py", tokens=TOKENS, heads=H)
    path = Path(os.environ.get("OUT", ".")) / "bscan_mlp.json"
    for shape in args.shapes.split(","):
        D, L, T = (int(s) for s in shape.split(":"))
        nc = bscan_nc(T, L, D)
        acc16 = dq_acc16_used(T, L, D)
        x = _inputs(TOKENS // T, T, D, L, dev, torch.bfloat16, acc16)
        errs = _compare(x, T, D, L, nc, names)
        fns = {n: _launch(x, T, D, L, nc, n)[0] for n in names}
        ms = interleaved(fns, rounds=args.rounds)
        row = {"D": D, "L": L, "T": T, "NC": nc, "acc16": acc16, "max_rel_err": errs,
               **{n + "_ms": median(v) for n, v in ms.items()}, **{n + "_all": v for n, v in ms.items()}}
        gb = (12 if acc16 else 13) * TOKENS * H * D * 2 / 1e9
        print(f"D {D} L {L} T {T} NC {nc}: " + ", ".join(
            f"{n} {row[n + '_ms']:.4f} ms ({gb / row[n + '_ms']:.0f} GB/s, err {errs[n]:.0e})" for n in names),
            flush=True)
        res["rows"].append(row)
        path.write_text(json.dumps(res, indent=1))
        x.clear()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
