"""dq's accumulator in 16 bits beyond two key blocks, on the CPU (thirty-fourth session): would the FlashAttention
rule still hold if a query tile's dq shares were summed in bf16 at 32k and 128k?

b17 (seventeenth session) keeps rat/gluon's dq accumulator in the inputs' 16-bit dtype only up to 256 chunk ends
(ACC16_MAX_ENDS: a tile gets a stored share and at most one added), "since beyond, a tile's shares would be summed in
16 bits (up to 64 at 128k)". The count of what it would save at 32k, D 128: bwd_ws_kernel writes the float32
accumulator (2 U through L2 reductions) and bwd_scan_kernel reads it (2 U); in 16 bits 1 U each, so 2 U less, 0.26 ms
at the H200's copy rate, more than the 32k train cell's miss (10.22 against 10 ms). Whether the rule allows it is a
question of numbers, answered here without a GPU.

A model of rat/gluon's dq, in float32 from the bf16 tensors the kernels read (what each kernel stores in bf16 is
rounded here too): the scan's RoPE_c(kt) per row and chunk ends, vt, RoPE_c(q) from the forward, its o and lse; the
pre pass's Delta; per key block of 128 chunk ends the share dS_bf16 K (bwd_ws_kernel converts dS to bf16 for the
product); the backward scan's dq = RoPE^T(scale acc + dS_self kr). Accumulators:
- `f32`: the shares summed in float32 (rat/gluon beyond 256 chunk ends today);
- `bf16`: each share rounded to bf16 (the staging buffer in the accumulator's dtype), key block 0's stored, the
  others added by a bf16 reduction (rounded after every add), in ascending key-block order;
- `bf16-rev`: the same, descending (the items' order on the GPU is not fixed).
Each against the float64 reference (impls/rat/reference.py through autograd, as bench/fa_rule.py runs it), with
the rule's bound: 2 x the error of the same reference math run in bf16 (fa_rule.low_precision_forward) + 1e-6.
The model's float64 form (no roundings) is checked against autograd's dq first.

`PYTHONPATH=. python experiments/rat-gluon-next/acc16_precision.py [--seq-lens 32768] [--heads 1] [--seeds 1234]`
(one head: 20 s at 32k, about 5 minutes and 16 GB at 128k on 2 cores); writes $OUT/acc16_precision.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from ratbench.impls.rat.reference import chunk_scan, rat_attention
from ratbench.impls.rope import apply_rope, rope_cos_sin

KEY_BLOCK = 128
ROWS = 4096  # query rows per block of the model's products (memory)


def _bf(x: torch.Tensor) -> torch.Tensor:
    """Rounded to bf16 and back to float32."""
    return x.to(torch.bfloat16).float()


def _inputs(T: int, H: int, D: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """bench.cases.make_inputs' RAT inputs (q, k, v = randn; f = sigmoid(randn)) in bf16, and fa_rule's output
    gradient (randn from seed + 1)."""
    gen = torch.Generator().manual_seed(seed)
    shape = (1, T, H, D)
    x = {n: torch.randn(shape, generator=gen).to(torch.bfloat16) for n in ("q", "k", "v")}
    x["f"] = torch.sigmoid(torch.randn(shape, generator=gen)).to(torch.bfloat16)
    g = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1)).to(torch.bfloat16)
    return x, g


def _autograd_dq(x: dict[str, torch.Tensor], g: torch.Tensor, L: int, dtype: torch.dtype) -> torch.Tensor:
    """dq of the reference math in `dtype` (float64: the reference; bf16: the rule's low-precision one)."""
    q = x["q"].to(dtype).requires_grad_(True)
    y = rat_attention(q, x["k"].to(dtype), x["v"].to(dtype), x["f"].to(dtype), L, True, q.shape[-1] ** -0.5)[0]
    (dq,) = torch.autograd.grad(y, [q], g.to(dtype))
    return dq.detach()


def _low_dq_blocked(x: dict[str, torch.Tensor], g: torch.Tensor, L: int, rows: int = 8192) -> torch.Tensor:
    """dq of rat_attention's math in bf16 (the rule's low-precision reference) by blocks of query rows: a row's output
    depends on q only through that row, so each block's autograd gives its rows' dq with the same operations as the
    whole sequence's, in a fraction of the memory (equal to `_autograd_dq` within bf16 rounding where both ran)."""
    q, k, v, f = x["q"], x["k"], x["v"], x["f"]
    _, T, _, D = q.shape
    scale = D ** -0.5
    kt, vt = chunk_scan(k, f, L), chunk_scan(v, f, L)
    chunk_of = torch.arange(T) // L
    cos, sin = rope_cos_sin(chunk_of, D, dtype=q.dtype)
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    kt = apply_rope(kt, cos, sin)
    K, V = kt[:, L - 1::L], vt[:, L - 1::L]
    out = torch.empty_like(q)
    for r0 in range(0, T, rows):
        R = slice(r0, r0 + rows)
        qb = q[:, R].clone().requires_grad_(True)
        qr = apply_rope(qb, cos[:, R], sin[:, R])
        inter = scale * torch.einsum("bthd,bjhd->bhtj", qr, K)
        earlier = torch.arange(K.shape[1])[None, :] < chunk_of[R, None]
        inter = inter.masked_fill(~earlier, float("-inf"))
        own = scale * (qr * kt[:, R]).sum(-1).permute(0, 2, 1)[..., None]
        p = torch.softmax(torch.cat([inter, own], dim=-1), dim=-1)
        y = torch.einsum("bhtj,bjhd->bthd", p[..., :-1], V) + p[..., -1].permute(0, 2, 1)[..., None] * vt[:, R]
        (out[:, R],) = torch.autograd.grad(y, [qb], g[:, R])
    return out


def _model_dq(x: dict[str, torch.Tensor], g: torch.Tensor, L: int, h: int, exact: bool) -> dict[str, torch.Tensor]:
    """dq of head h by the kernels' data flow: float64 without roundings (exact) or float32 with the kernels'
    bf16 stores and each accumulator of the module docstring."""
    dt = torch.float64 if exact else torch.float32
    rnd = (lambda t: t) if exact else _bf
    q, k, v, f, do = (t[0, :, h].to(dt) for t in (x["q"], x["k"], x["v"], x["f"], g))
    T, D = q.shape
    C = T // L
    scale = D ** -0.5
    kt = chunk_scan(k[None, :, None], f[None, :, None], L)[0, :, 0]
    vt = rnd(chunk_scan(v[None, :, None], f[None, :, None], L)[0, :, 0])
    cos, sin = rope_cos_sin(torch.arange(T) // L, D, dtype=dt)
    kr = rnd(apply_rope(kt, cos, sin))
    qr = rnd(apply_rope(q, cos, sin))
    ke, ve = kr[L - 1::L], vt[L - 1::L]
    chunk = torch.arange(T) // L
    names = ["exact"] if exact else ["f32", "bf16", "bf16-rev"]
    out = {n: torch.empty(T, D, dtype=dt) for n in names}
    for r0 in range(0, T, ROWS):
        rows = slice(r0, r0 + ROWS)
        s = scale * qr[rows] @ ke.T
        s = s.masked_fill(torch.arange(C)[None, :] >= chunk[rows, None], -math.inf)
        s_self = scale * (qr[rows] * kr[rows]).sum(-1)
        lse = torch.logsumexp(torch.cat([s, s_self[:, None]], 1), 1)
        p = torch.exp(s - lse[:, None])
        p_self = torch.exp(s_self - lse)
        o = rnd(p @ ve + p_self[:, None] * vt[rows])
        delta = (o * do[rows]).sum(-1)
        ds = rnd(p * (do[rows] @ ve.T - delta[:, None]))
        ds_self = scale * p_self * ((do[rows] * vt[rows]).sum(-1) - delta)
        shares = [ds[:, j:j + KEY_BLOCK] @ ke[j:j + KEY_BLOCK] for j in range(0, C, KEY_BLOCK)]
        accs = {}
        if exact or "f32" in names:
            accs["exact" if exact else "f32"] = sum(shares[1:], shares[0])
        if not exact:
            for name, order in (("bf16", shares), ("bf16-rev", [shares[0]] + shares[:0:-1])):
                acc = _bf(order[0])
                for sh in order[1:]:
                    acc = _bf(acc + _bf(sh))
                accs[name] = acc
        for name, acc in accs.items():
            dqr = scale * acc + ds_self[:, None] * kr[rows]
            c, s_ = cos[rows], sin[rows]
            h1, h2 = dqr[:, :D // 2], dqr[:, D // 2:]
            # RoPE^T (rotate-half RoPE's inverse: the rotation by -angle)
            out[name][rows] = rnd(torch.cat([h1 * c[:, :D // 2] + h2 * s_[:, :D // 2],
                                             h2 * c[:, D // 2:] - h1 * s_[:, D // 2:]], 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seq-lens", default="32768")
    ap.add_argument("--heads", type=int, default=1)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--seeds", default="1234")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    D, L, H = args.head_dim, args.chunk_size, args.heads
    res = {"script": "acc16_precision.py", "head_dim": D, "chunk_size": L, "heads": H, "rows": []}
    path = Path(os.environ.get("OUT", ".")) / "acc16_precision.json"
    for T in (int(t) for t in args.seq_lens.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.time()
            x, g = _inputs(T, H, D, seed)
            # the float64 reference through autograd holds several (T, T / L) tensors: beyond 32k the model's float64
            # form stands for it (equal to it within 1e-14 wherever both ran)
            ref = (_autograd_dq(x, g, L, torch.float64)[0] if T <= 32768 else
                   torch.stack([_model_dq(x, g, L, h, exact=True)["exact"] for h in range(H)], 1))
            low = (_autograd_dq(x, g, L, torch.bfloat16) if T <= 32768 else _low_dq_blocked(x, g, L))[0].double()
            if T <= 32768:  # the blocked form against the whole sequence's
                row_low_blocked = (_low_dq_blocked(x, g, L)[0].double() - low).abs().max().item()
            low_err = (low - ref).abs().max().item()
            row = {"T": T, "seed": seed, "key_blocks": math.ceil(T // L / KEY_BLOCK), "max_abs_ref": ref.abs().max().item(),
                   "low_err": low_err, "bound": 2 * low_err + 1e-6}
            if T <= 32768:
                row["low_blocked_vs_whole"] = row_low_blocked
            for h in range(H):
                if T <= 32768:  # beyond, the model's float64 form is the reference
                    ex = _model_dq(x, g, L, h, exact=True)["exact"]
                    row[f"model_exact_err_h{h}"] = (ex - ref[:, h]).abs().max().item()
                for name, dq in _model_dq(x, g, L, h, exact=False).items():
                    diff = dq.double() - ref[:, h]
                    row[f"{name}_err"] = max(row.get(f"{name}_err", 0.0), diff.abs().max().item())
                    row[f"{name}_rel_l2_h{h}"] = (diff.norm() / ref[:, h].norm()).item()
            row["low_rel_l2"] = ((low - ref).norm() / ref.norm()).item()
            row["seconds"] = round(time.time() - t0, 1)
            res["rows"].append(row)
            print(json.dumps(row), flush=True)
            path.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
