"""The forward scan with heads fastest in its grid (thirty-fourth session): scan_kernel as rat/gluon launches it (the
prefill's with self logits, the training's with RoPE_c(kt)) against a copy whose programs run (bh, chunk group)
instead of (chunk group, bh), each timed alone.

The count: the scan moves 5 U (k, v, f in and RoPE_c(kt), vt out in training; q, k, v, f in and vt out in the
prefill; U = one bf16 token tensor, 0.54 GB at 131,072 tokens, H 16, D 128). On the H200 it took 0.678 / 0.693 /
0.707 ms at 4k / 32k / 128k (second session's launch study) and 0.687 in the 32k training profile (s22): 93% of the
4.2 TB/s copy rate at 32k and 128k against 96-100% at 4k. The inputs are (B, T, H, D): a token row is 16 heads' 256 B
at D 128. The grid's first axis is the chunk group, so the programs resident together (sm_90, triton 3.7.1: 95
registers in training at D 128, five programs of 4 warps per multiprocessor, about 660; 128 registers and four in the
prefill) cover all heads of a token row at 4k (B 32: about 41 (b, h) pairs), 5 of 16 at 32k (128 chunk groups a
head) and 1-2 at 128k (512); heads fastest makes every wave read whole token rows at every T. The copy compiles to
scan_kernel's SASS (registers, no spills, instruction count) for both launches at D 128 and 64.
Prediction (written before any run): hf within +-1% at 4k, 0-3% faster at 32k, 1-5% faster at 128k, on both cards.
Rule: faster in every round at 32k and 128k in both launches on the H200 -> the grid swap goes into scan.py (then
the harness's gate rounds decide).

Outputs are compared with scan_kernel's (the same arithmetic: equal to the bit). Times: medians of interleaved rounds
(experiments/_ab.py). Run from the repository root: `PYTHONPATH=. python experiments/rat-gluon-next/fscan_hf.py
[--shapes 128:16:4096,128:16:32768] [--rounds 5]`; `TRITON_INTERPRET=1 PYTHONPATH=. python
experiments/rat-gluon-next/fscan_hf.py --cpu` checks the copy against scan_kernel in float32 on the interpreter.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import torch
import triton
import triton.language as tl

from ratbench.impls.rat import kernels as K
from ratbench.impls.rat.kernels.common import _cos_sin, _load2, _maybe_rope, _store2
from ratbench.impls.rat.kernels.scan import _scan_step
from ratbench.impls.rat.triton import rope_tables

TOKENS = 131072
H = 16
NC = 16  # rat/gluon's scan_nc (RATTritonConfig's default; SCAN_NC was rejected in the twenty-ninth session)


@triton.jit
def scan_hf(
    K_, V, F, COS, SIN, KTR, VT, KE, VE, Q, SS,
    s_b, s_t, s_h, o_b, o_t, o_h, e_b, e_h, e_c, q_b, q_t, q_h, T, H, C, n_rows,
    L: tl.constexpr, NC: tl.constexpr, HALF: tl.constexpr, SELF_LOGIT: tl.constexpr, HF: tl.constexpr,
):
    """scan_kernel with RoPE, without WRITE_LAST, WRITE_KT = not SELF_LOGIT (rat/gluon's launches); HF: program (bh,
    chunk group) instead of (chunk group, bh)."""
    if HF:
        bh = tl.program_id(0)
        pid = tl.program_id(1)
    else:
        pid = tl.program_id(0)
        bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    cid = pid * NC + tl.arange(0, NC)
    cm = cid < C
    d2 = tl.arange(0, HALF)[None, :]
    cos, sin = _cos_sin(COS, SIN, cid, cm, d2, HALF)
    in_off = b.to(tl.int64) * s_b + h.to(tl.int64) * s_h
    out_off = b.to(tl.int64) * o_b + h.to(tl.int64) * o_h
    kt1 = tl.zeros([NC, HALF], tl.float32)
    kt2 = tl.zeros([NC, HALF], tl.float32)
    vt1 = tl.zeros([NC, HALF], tl.float32)
    vt2 = tl.zeros([NC, HALF], tl.float32)
    kr1 = kt1
    kr2 = kt2
    for l in range(n_rows):  # n_rows == L
        rows = cid.to(tl.int64) * L + l
        m = (cm & (rows < T))[:, None]
        ptr = in_off + rows[:, None] * s_t + d2
        kt1, kt2, vt1, vt2, _f1, _f2 = _scan_step(K_, V, F, ptr, m, kt1, kt2, vt1, vt2, HALF)
        optr = out_off + rows[:, None] * o_t + d2
        if SELF_LOGIT:
            q1, q2 = _load2(Q + b.to(tl.int64) * q_b + h.to(tl.int64) * q_h + rows[:, None] * q_t + d2, m, 0.0, HALF)
            tl.store(SS + bh.to(tl.int64) * T + rows, tl.sum(q1 * kt1 + q2 * kt2, 1), mask=cm & (rows < T))
        else:
            kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, True)
            _store2(KTR + optr, kr1, kr2, m, HALF)
        _store2(VT + optr, vt1, vt2, m, HALF)
    if SELF_LOGIT:
        kr1, kr2 = _maybe_rope(kt1, kt2, cos, sin, True)
    eptr = b.to(tl.int64) * e_b + h.to(tl.int64) * e_h + cid.to(tl.int64)[:, None] * e_c + d2
    em = cm[:, None]
    _store2(KE + eptr, kr1, kr2, em, HALF)
    _store2(VE + eptr, vt1, vt2, em, HALF)


def _inputs(B: int, T: int, D: int, L: int, dev: torch.device, dt: torch.dtype) -> dict:
    g = torch.Generator(device=dev).manual_seed(1)
    x = {n: torch.randn(B, T, H, D, device=dev, generator=g).to(dt) for n in ("q", "k", "v")}
    x["f"] = torch.sigmoid(torch.randn(B, T, H, D, device=dev, generator=g) + 2.0).to(dt)
    x["cos"], x["sin"] = rope_tables(T // L, D, dev)
    return x


def _launch(x: dict, T: int, D: int, L: int, prefill: bool, variant: str):
    """A launch of scan_kernel ("kernel"), the copy ("main") or the copy with heads fastest ("hf"), and its outputs
    (vt, the chunk ends, and the self logits or RoPE_c(kt))."""
    q, k, v, f = x["q"], x["k"], x["v"], x["f"]
    B = q.shape[0]
    C = T // L
    ktr, vt = torch.empty_like(q), torch.empty_like(q)
    ke = torch.empty(B, H, C, D, device=q.device, dtype=q.dtype)
    ve = torch.empty_like(ke)
    ss = torch.empty(B * H, T, device=q.device, dtype=torch.float32)
    strides = (k.stride(0), k.stride(1), k.stride(2), q.stride(0), q.stride(1), q.stride(2),
               ke.stride(0), ke.stride(1), ke.stride(2), q.stride(0), q.stride(1), q.stride(2), T, H, C, L)
    outs = [vt, ke, ve, ss if prefill else ktr]
    if variant == "kernel":
        def launch():
            K.scan_kernel[(math.ceil(C / NC), B * H)](
                k, v, f, x["cos"], x["sin"], ktr, vt, ke, ve, q, q, q, ss if prefill else q, *strides,
                L=L, NC=NC, HALF=D // 2, ROPE=True, WRITE_LAST=False, SELF_LOGIT=prefill, WRITE_KT=not prefill,
                num_warps=4, num_stages=1)
        return launch, outs
    hf = variant == "hf"
    grid = (B * H, math.ceil(C / NC)) if hf else (math.ceil(C / NC), B * H)

    def launch():
        scan_hf[grid](k, v, f, x["cos"], x["sin"], ktr, vt, ke, ve, q, ss, *strides, L=L, NC=NC, HALF=D // 2,
                      SELF_LOGIT=prefill, HF=hf, num_warps=4, num_stages=1)
    return launch, outs


def _diffs(x: dict, T: int, D: int, L: int, prefill: bool, names: list[str]) -> dict[str, float]:
    """Each variant's largest absolute difference from scan_kernel's outputs; and the launches made once."""
    ref_launch, ref = _launch(x, T, D, L, prefill, "kernel")
    ref_launch()
    out = {}
    for n in names:
        launch, got = _launch(x, T, D, L, prefill, n)
        launch()
        out[n] = max(float((a.float() - b.float()).abs().max()) for a, b in zip(got, ref))
    return out


def _cpu_check() -> None:
    """The interpreter, float32: main and hf against scan_kernel, both launches, NC not dividing C (B 2, H 16)."""
    global NC
    NC = 4
    dev = torch.device("cpu")
    for T, D, L in ((96, 16, 4), (64, 32, 16)):
        x = _inputs(2, T, D, L, dev, torch.float32)
        for prefill in (True, False):
            d = _diffs(x, T, D, L, prefill, ["main", "hf"])
            print(f"T {T} D {D} L {L} {'prefill' if prefill else 'train'}:", d)
            if any(v != 0.0 for v in d.values()):
                raise SystemExit(f"the copy differs from scan_kernel: {d}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", default="128:16:4096,128:16:32768,128:16:131072,64:16:32768", help="D:L:T")
    ap.add_argument("--cpu", action="store_true", help="check the copy on the interpreter (TRITON_INTERPRET=1)")
    args = ap.parse_args()
    if args.cpu:
        _cpu_check()
        return
    from experiments._ab import interleaved, median, record, result_header

    dev = torch.device("cuda")
    res = result_header(script="fscan_hf.py", tokens=TOKENS, heads=H, nc=NC)
    path = Path(os.environ.get("OUT", ".")) / "fscan_hf.json"
    for shape in args.shapes.split(","):
        D, L, T = (int(s) for s in shape.split(":"))
        x = _inputs(TOKENS // T, T, D, L, dev, torch.bfloat16)
        for prefill in (False, True):
            names = ["main", "hf"]
            diffs = _diffs(x, T, D, L, prefill, names)
            fns = {n: _launch(x, T, D, L, prefill, n)[0] for n in ["kernel", *names]}
            ms = interleaved(fns, rounds=args.rounds)
            row = {"D": D, "L": L, "T": T, "mode": "prefill" if prefill else "train", "max_abs_diff": diffs,
                   **{n + "_ms": median(v) for n, v in ms.items()}, **{n + "_all": v for n, v in ms.items()}}
            gb = 5 * TOKENS * H * D * 2 / 1e9
            print(f"D {D} L {L} T {T} {row['mode']}: " + ", ".join(
                f"{n} {row[n + '_ms']:.4f} ms ({gb / row[n + '_ms']:.0f} GB/s)" for n in fns)
                + f"; hf per round {[round(a / b, 4) for a, b in zip(ms['kernel'], ms['hf'])]}", flush=True)
            record(res, row, path, hide=("_all",))
        x.clear()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
