"""A/B (device): the memory-bound passes run beside the compute-bound Gluon kernels on a second CUDA stream, by batch
groups (impls/rat/gluon/NOTES.md, "Tenth session"). rat/gluon's step is a chain: scan (memory) -> fwd_ws_kernel
(tensor cores) | pre pass (memory) -> bwd_ws_kernel (tensor cores) -> backward scan (memory); at 32k the memory
passes are 3.1 of 10.4 ms and the attention kernels draw 16-31% of HBM. Cut the batch into G groups: group g+1's
scan runs while group g's attention runs, and group g's backward scan while group g+1's backward attention runs.
fwd_ws_kernel is persistent (one CTA per multiprocessor): cap its grid (n_sm - reserve) while scans are pending so
that the scans have multiprocessors; bwd_ws_kernel is one CTA per work item, so the side stream's priority decides
who takes a freed multiprocessor. Variants: prefill (the forward, no lse) and train (forward with lse and RoPE(q),
then the backward; no autograd, the same calls as rat_forward / rat_backward) at bf16, H 16, D 128, L 16, 131,072
tokens, T 4k / 8k / 32k; outputs compared with the one-stream baseline's; interleaved do_bench (median of ROUNDS).
`OUT=/tmp/x PYTHONPATH=. python experiments/rat-gluon-next/ab_overlap.py` (TS=4096,32768 to choose T)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from experiments._ab import compare_time_record, rat_inputs, result_header
from ratbench.impls.attention_core import LOG2E
from ratbench.impls.peer_utils import sm_count
from ratbench.impls.rat import kernels as K
from ratbench.impls.rat import triton as rt
from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG
from ratbench.impls.rat.gluon import forward as gf
from ratbench.impls.rat.gluon.backward import gluon_backward

L, ROPE = 16, True
CFG = GLUON_BWD_CONFIG


def _alloc(q: torch.Tensor, train: bool) -> dict:
    B, T, H, D = q.shape
    C = T // L
    o = torch.empty_like(q)
    a = {"o": o, "vt": torch.empty_like(q), "ke": q.new_empty(B, H, C, D), "ve": q.new_empty(B, H, C, D)}
    a["ktr"] = torch.empty_like(q) if train else o
    a["ss"] = None if train else torch.empty(B * H, T, device=q.device, dtype=torch.float32)
    a["lse"] = torch.empty(B * H, T, device=q.device, dtype=torch.float32) if train else o
    a["qr"] = gf.rope_q_buffer(q) if train else None
    a["cos"], a["sin"] = rt.rope_tables(C, D, q.device)
    return a


def _g(t: torch.Tensor | None, g: int, n: int) -> torch.Tensor | None:
    """Group g of n of a tensor whose first dimension is B or B*H."""
    if t is None:
        return None
    s = t.shape[0] // n
    return t[g * s:(g + 1) * s]


def _scan(x: list[torch.Tensor], a: dict, g: int, n: int, train: bool) -> None:
    q, k, v, f = (_g(t, g, n) for t in x)
    o, ktr, vt, ke, ve = (_g(a[key], g, n) for key in ("o", "ktr", "vt", "ke", "ve"))
    ss = _g(a["ss"], g, n)
    B, T, H, D = q.shape
    C = T // L
    K.scan_kernel[(math.ceil(C / CFG.scan_nc), B * H)](
        k, v, f, a["cos"], a["sin"], ktr, vt, ke, ve, o, o, q, o if ss is None else ss,
        k.stride(0), k.stride(1), k.stride(2), o.stride(0), o.stride(1), o.stride(2),
        ke.stride(0), ke.stride(1), ke.stride(2), q.stride(0), q.stride(1), q.stride(2), T, H, C, L,
        L=L, NC=CFG.scan_nc, HALF=D // 2, ROPE=ROPE, WRITE_LAST=False, SELF_LOGIT=not train, WRITE_KT=train,
        num_warps=CFG.scan_warps, num_stages=1,
    )


def _attn(x: list[torch.Tensor], a: dict, g: int, n: int, train: bool, n_sm: int) -> None:
    q = _g(x[0], g, n)
    T, H, D = q.shape[1:]
    old = gf.sm_count
    gf.sm_count = lambda dev: n_sm
    try:
        gf.launch_forward(q, _g(a["ktr"], g, n), _g(a["vt"], g, n), a["cos"], a["sin"], _g(a["ke"], g, n),
                          _g(a["ve"], g, n), _g(a["o"], g, n), _g(a["lse"], g, n), T, H, L, D ** -0.5 * LOG2E, ROPE,
                          train, bn=CFG.fwd_bn, stages=CFG.fwd_stages, qr=_g(a["qr"], g, n), ss=_g(a["ss"], g, n),
                          exp_poly=CFG.fwd_exp_poly if D == 64 else 0, split=CFG.fwd_split_masked,
                          tree=CFG.fwd_row_tree)
    finally:
        gf.sm_count = old


def forward(x: list[torch.Tensor], train: bool, n: int, reserve: int, side: torch.cuda.Stream | None) -> dict:
    """The forward in n batch groups; side None: one stream (n = 1 is rat_forward's order)."""
    a = _alloc(x[0], train)
    full = sm_count(x[0].device)
    if side is None:
        for g in range(n):
            _scan(x, a, g, n, train)
            _attn(x, a, g, n, train, full)
        return a
    main = torch.cuda.current_stream()
    side.wait_stream(main)
    evs = []
    with torch.cuda.stream(side):
        for g in range(n):
            _scan(x, a, g, n, train)
            evs.append(torch.cuda.Event())
            evs[-1].record(side)
    for g in range(n):
        main.wait_event(evs[g])
        _attn(x, a, g, n, train, full - reserve if g < n - 1 else full)
    main.wait_stream(side)
    return a


def _bscan(x: list[torch.Tensor], do: torch.Tensor, a: dict, outs: list[torch.Tensor], g: int, n: int, delta,
           dke, dve, dqacc, qr) -> None:
    """rat/triton's _bwd_scan (DQ_OUT) into group g's rows of the preallocated dq, dk, dv, df."""
    _, k, v, f = (_g(t, g, n) for t in x)
    o, lse, ktr, vt = (_g(a[key], g, n) for key in ("o", "lse", "ktr", "vt"))
    dq, dk, dv, df = (_g(t, g, n) for t in outs)
    B, T, H, D = o.shape
    C = T // L
    K.bwd_scan_kernel[(math.ceil(C / CFG.bscan_nc), B * H)](
        qr, k, v, f, ktr, vt, _g(do, g, n), lse, delta, a["cos"], a["sin"], dke, dve, dk, dv, df, dqacc, dq,
        k.stride(0), k.stride(1), k.stride(2), o.stride(0), o.stride(1), o.stride(2), T, H, C, L, D ** -0.5,
        D ** -0.5 * LOG2E, dqacc.shape[1],
        L=L, NC=CFG.bscan_nc, HALF=D // 2, ROPE=ROPE, DQ_OUT=True, num_warps=CFG.bscan_warps, num_stages=1,
    )


def backward(x: list[torch.Tensor], do: torch.Tensor, a: dict, n: int, side: torch.cuda.Stream | None) -> list:
    """rat_backward's gluon_ws path in n batch groups: gluon_backward (pre pass + bwd_ws_kernel) on the main
    stream, each group's backward scan (finishing dq) on `side` once its attention is done; dq, dk, dv, df
    allocated whole first (each group writes its rows)."""
    main = torch.cuda.current_stream() if side is not None else None
    outs = [torch.empty_like(do) for _ in range(4)]
    keep = []
    D = do.shape[-1]
    if side is not None:
        side.wait_stream(main)
    for g in range(n):
        o, lse, ktr, vt, qr = (_g(a[key], g, n) for key in ("o", "lse", "ktr", "vt", "qr"))
        dqacc, delta, dke, dve, qr = gluon_backward(_g(do, g, n), None, o, lse, ktr, vt, _g(a["ke"], g, n),
                                                    _g(a["ve"], g, n), a["cos"], a["sin"], L, ROPE, D ** -0.5,
                                                    finish_dq=False, qr=qr)
        if side is None:
            _bscan(x, do, a, outs, g, n, delta, dke, dve, dqacc, qr)
            continue
        ev = torch.cuda.Event()
        ev.record(main)
        side.wait_event(ev)
        with torch.cuda.stream(side):
            _bscan(x, do, a, outs, g, n, delta, dke, dve, dqacc, qr)
        keep.append((dqacc, delta, dke, dve))
    if side is not None:
        main.wait_stream(side)
    del keep
    return outs


def main() -> None:
    out = Path(os.environ.get("OUT", "/tmp"))
    rounds = int(os.environ.get("ROUNDS", "3"))
    res = result_header(study="ab_overlap")
    H, D = 16, 128
    hi = torch.cuda.Stream(priority=-1)
    lo = torch.cuda.Stream(priority=0)
    for T in (int(t) for t in os.environ.get("TS", "4096,8192,32768").split(",")):
        B = 131072 // T
        x, do = rat_inputs(B, T, H, D)
        assert not rt.long_scan_used(CFG, B, H, T, L)
        row: dict = {"T": T, "B": B}
        pre = {"base": (1, 0, None)}
        for n in (2, 4):
            for rs in (0, 16, 32):
                pre[f"g{n}_r{rs}"] = (n, rs, hi)
        trn = {"base": (1, 0, None), "g4_r16_seq": (4, 16, None)}
        for n in (2, 4):
            for rs in (0, 16):
                for pn, st in (("hi", hi), ("lo", lo)):
                    trn[f"g{n}_r{rs}_{pn}"] = (n, rs, st)
        fns, got = {}, {}
        for name, (n, rs, st) in pre.items():
            def pf(n=n, rs=rs, st=st, x=x):
                return forward(x, False, n, rs, st)["o"]
            got["prefill_" + name] = [pf().float()]
            fns["prefill_" + name] = pf
        for name, (n, rs, st) in trn.items():
            def tr(n=n, rs=rs, st=st, x=x, do=do):
                a = forward(x, True, n, rs, st)
                return [a["o"], *backward(x, do, a, n, st)]
            got["train_" + name] = [t.float() for t in tr()]
            fns["train_" + name] = tr
        torch.cuda.synchronize()
        compare_time_record(res, row, got, fns, lambda n: "prefill_base" if n.startswith("prefill") else "train_base",
                            out / "ab_overlap.json", rounds)


if __name__ == "__main__":
    main()
