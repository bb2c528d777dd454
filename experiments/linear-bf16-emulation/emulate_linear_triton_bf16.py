"""CPU emulation of linear/triton's bf16 rounding points (fused form, chunk 64), to predict the
FlashAttention-rule check before GPU time: err vs float64 of our scheme and of a bf16 reference.

The Triton interpreter cannot run bf16, so this replays the kernels' arithmetic in float32 PyTorch
and rounds to bf16 exactly where the kernels do (chunk states h and dh stored in bf16, intra-chunk
score matrices and decay-scaled operands cast to bf16 before a tensor-core product, outputs cast at
the end). It compares two ways of taking the decay gradient:
  telescoping: d decay_t = reverse cumsum over the sequence of q_u.dq_u - k_u.dk_u
  chunkwise:   the form in chunk_bwd_dqk_kernel (what linear/triton does)

    python experiments/linear-bf16-emulation/emulate_linear_triton_bf16.py      (~30 s)
"""
from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the repo root

import torch

from ratbench import impls
from ratbench.impls.linear.reference import decay_matrix

BF = torch.bfloat16


def r(x: torch.Tensor) -> torch.Tensor:
    return x.to(BF).float()


def emulate(q, k, v, dec, do, scale, dg_form: str, C: int = 64):
    """o, dq, dk, dv, d decay as linear/triton's fused form computes them (bf16 rounding points)."""
    B, T, H, D = q.shape
    NT = -(-T // C)
    TP = NT * C
    pad = lambda x: torch.nn.functional.pad(x, (0, 0, 0, 0, 0, TP - T))
    qf, kf, vf, dof = (pad(x).float().permute(0, 2, 1, 3) for x in (q, k, v, do))  # (B, H, TP, D)
    g = torch.nn.functional.pad(dec.float().clamp_min(-100), (0, 0, 0, TP - T)).permute(0, 2, 1).reshape(B, H, NT, C).cumsum(-1)
    causal = torch.ones(C, C, dtype=torch.bool).tril()
    neg_inf = torch.tensor(-math.inf)
    chunk = lambda x, c: x[:, :, c * C:(c + 1) * C]
    dmask = lambda gc: torch.where(causal, gc[..., :, None] - gc[..., None, :], neg_inf).exp()  # [t, s]
    # forward walker
    S = torch.zeros(B, H, D, D)
    hs, o = [], torch.zeros(B, H, TP, D)
    for c in range(NT):
        qc, kc, vc, gc = chunk(qf, c), chunk(kf, c), chunk(vf, c), g[:, :, c]
        G = gc[..., -1:]
        Sc = r(S)
        hs.append(Sc)
        oc = (qc @ Sc) * gc.exp()[..., None] + r((qc @ kc.transpose(-1, -2)) * dmask(gc)) @ vc
        o[:, :, c * C:(c + 1) * C] = r(oc * scale)
        S = S * G.exp()[..., None] + kc.transpose(-1, -2) @ r(vc * (G - gc).exp()[..., None])
    # reverse walker: dh, dv
    dh, dhs, dv = torch.zeros(B, H, D, D), [None] * NT, torch.zeros(B, H, TP, D)
    for c in reversed(range(NT)):
        qc, kc, doc, gc = chunk(qf, c), chunk(kf, c), chunk(dof, c), g[:, :, c]
        G = gc[..., -1:]
        dhc = r(dh)
        dhs[c] = dhc
        pt = (kc @ qc.transpose(-1, -2)) * dmask(gc).transpose(-1, -2)
        dv[:, :, c * C:(c + 1) * C] = r((kc @ dhc) * (G - gc).exp()[..., None] + r(pt * scale) @ doc)
        dh = dh * G.exp()[..., None] + scale * qc.transpose(-1, -2) @ r(doc * gc.exp()[..., None])
    # dq, dk, decay gradient
    dq, dk, dg = torch.zeros(B, H, TP, D), torch.zeros(B, H, TP, D), torch.zeros(B, H, TP)
    for c in range(NT):
        qc, kc, vc, doc, gc = chunk(qf, c), chunk(kf, c), chunk(vf, c), chunk(dof, c), g[:, :, c]
        G = gc[..., -1:]
        ds = (doc @ vc.transpose(-1, -2)) * dmask(gc) * scale
        dqi = (doc @ hs[c].transpose(-1, -2)) * (scale * gc.exp())[..., None]
        dki = (vc @ dhs[c].transpose(-1, -2)) * (G - gc).exp()[..., None]
        dqc, dkc = dqi + r(ds) @ kc, dki + r(ds).transpose(-1, -2) @ qc
        if dg_form == "telescoping":
            dg[:, :, c * C:(c + 1) * C] = (qc * dqc - kc * dkc).sum(-1)
        else:
            E = ds * (qc @ kc.transpose(-1, -2))
            a, b = (qc * dqi).sum(-1), (kc * dki).sum(-1)
            x = a - b + E.sum(-1) - E.sum(-2)
            const = G.exp() * (dhs[c] * hs[c]).sum((-1, -2))[..., None] + b.sum(-1, keepdim=True)
            dg[:, :, c * C:(c + 1) * C] = x.flip(-1).cumsum(-1).flip(-1) + const
        dq[:, :, c * C:(c + 1) * C], dk[:, :, c * C:(c + 1) * C] = r(dqc), r(dkc)
    if dg_form == "telescoping":
        dg = dg.double().flip(-1).cumsum(-1).flip(-1)
    un = lambda x: x.permute(0, 2, 1, 3)[:, :T]
    return [un(o), un(dq), un(dk), un(dv), dg[:, :, :T].permute(0, 2, 1)]


def lowp_forward(q, k, v, dec, scale):
    B, T, H, _ = q.shape
    M = decay_matrix(dec.float(), B, T, H, q.device, torch.float32).to(q.dtype)
    return scale * torch.einsum("bhts,bshd->bthd", torch.einsum("bthd,bshd->bhts", q, k) * M, v)


def grads_of(fn, q, k, v, d, do):
    leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v, d)]
    o = fn(*leaves)
    return [o.detach(), *torch.autograd.grad(o, leaves, do)]


def rel(a, b) -> float:
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def main() -> None:
    torch.manual_seed(0)
    ref = impls.get("linear/reference")
    for B, T, H, D in ((2, 1000, 4, 128), (1, 2048, 2, 64)):
        q, k, v, do = (torch.randn(B, T, H, D).to(BF) for _ in range(4))
        dec = -torch.rand(B, T, H) * 0.2
        scale = D ** -0.5
        r64 = grads_of(lambda a, b, c, d: ref.forward(a, b, c, decay=d), q.double(), k.double(), v.double(), dec.double(), do.double())
        rlp = grads_of(lambda a, b, c, d, s=scale: lowp_forward(a, b, c, d, s), q, k, v, dec, do)
        for form in ("telescoping", "chunkwise"):
            ours = emulate(q, k, v, dec, do, scale, form)
            cells = [f"{n} {rel(a, x):.2e} ({rel(a, x) / rel(lp, x):.2f}x)"
                     for n, a, lp, x in zip(("o", "dq", "dk", "dv", "ddecay"), ours, rlp, r64)]
            print(f"B={B} T={T} H={H} D={D} decay-grad {form:11s}: " + "  ".join(cells), flush=True)
    print("(x = error / error of the bf16 parallel-form reference; the GPU check requires <= 2)")


if __name__ == "__main__":
    main()
