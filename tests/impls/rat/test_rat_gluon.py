"""rat/gluon on a machine without a Hopper GPU: what can be checked without running its kernel (Gluon has no
interpreter; correctness is checked on the H200, impls/rat/gluon/NOTES.md): the config route, refusals, and the
forward kernel compiled for sm_90 at the shapes the static gate's scenarios do not cover."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ratbench.impls.rat.gluon import GLUON_CONFIG, RATGluon
from ratbench.impls.rat.triton import RATTritonConfig

ROOT = Path(__file__).resolve().parents[3]


def test_config_route_is_checked():
    assert GLUON_CONFIG.forward == "gluon_ws" and GLUON_CONFIG.fwd_bm == 128
    with pytest.raises(ValueError, match="forward must be one of"):
        RATTritonConfig(forward="cuda")
    with pytest.raises(ValueError, match="128-row query tile"):
        dataclasses.replace(GLUON_CONFIG, fwd_bm=64)


def test_unavailable_on_the_cpu_with_a_reason():
    assert RATGluon.unavailable_reason("cpu") == "runs on cuda only, not on cpu"
    reason = RATGluon().unsupported_reason(mode="train", device="cpu", dtype=torch.bfloat16, head_dim=128)
    assert reason == "runs on cuda only, not on cpu"
    assert torch.float32 not in RATGluon.dtypes and 32 not in RATGluon.head_dims


def test_cli_says_why_nothing_ran(tmp_path):
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    p = subprocess.run([sys.executable, "run_bench.py", "--impl", "rat/gluon", "--device", "cpu", "--no-progress",
                        "--out", str(tmp_path / "run")], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                       timeout=300)
    assert p.returncode == 5, p.stderr
    assert "rat/gluon" in p.stderr and "runs on cuda only" in p.stderr


def _meta_inputs(T=256, H=2, D=128, L=16, cache=None):
    meta = torch.device("meta")
    q = torch.empty(1, T, H, D, device=meta, dtype=torch.bfloat16)
    ke = cache if cache is not None else torch.empty(1, H, T // L, D, device=meta, dtype=torch.bfloat16)
    cos = torch.empty(T // L, D // 2, device=meta)
    lse = torch.empty(H, T, device=meta)
    return q, ke, cos, lse


def test_launcher_refuses_what_the_kernel_cannot_do():
    from ratbench.impls.rat.gluon.forward import launch_forward

    q, ke, cos, lse = _meta_inputs()
    with pytest.raises(ValueError, match="positive softmax scale"):
        launch_forward(q, q, q, cos, cos, ke, ke, q, lse, 256, 2, 16, -0.1, True, True)
    strided = torch.empty(1, 16, 2, 128, device="meta", dtype=torch.bfloat16).transpose(1, 2)
    with pytest.raises(ValueError, match="contiguous"):
        launch_forward(q, q, q, cos, cos, strided, strided, q, lse, 256, 2, 16, 0.1, True, True)
    with pytest.raises(ValueError, match="key block must be 128 rows"):
        launch_forward(q, q, q, cos, cos, ke, ke, q, lse, 256, 2, 16, 0.1, True, True, bn=64)
    q_t = torch.empty(1, 2, 256, 128, device="meta", dtype=torch.bfloat16).transpose(1, 2)
    with pytest.raises(ValueError, match="kt and vt must be contiguous"):
        launch_forward(q, q_t, q, cos, cos, ke, ke, q, lse, 256, 2, 16, 0.1, True, True)
    for qr in (torch.empty(2, 200, 128, device="meta", dtype=torch.bfloat16),  # rows not T rounded up to 128
               torch.empty(2, 256, 128, device="meta", dtype=torch.float16)):  # not q's dtype
        with pytest.raises(ValueError, match="RoPE"):
            launch_forward(q, q, q, cos, cos, ke, ke, q, lse, 256, 2, 16, 0.1, True, True, qr=qr)


def test_gluon_backward_refuses_what_it_cannot_do():
    """b5's inputs: q may be left out only where the forward wrote RoPE(q) and the scan finishes dq; the forward's
    RoPE(q) must have whole 64-row tiles and at least T rows."""
    from ratbench.impls.rat.gluon.backward import gluon_backward

    q, ke, cos, lse = _meta_inputs()
    qr = torch.empty(2, 256, 128, device="meta", dtype=torch.bfloat16)
    rest = (q, q, ke, ke, cos, cos, 16, True, 0.1)  # kt, vt, chunk ends, RoPE tables, L, rope, scale
    with pytest.raises(ValueError, match="needs q"):
        gluon_backward(q, None, q, lse, *rest, finish_dq=True, qr=qr)
    with pytest.raises(ValueError, match="needs q"):
        gluon_backward(q, None, q, lse, *rest, finish_dq=False)
    for bad in (torch.empty(2, 200, 128, device="meta", dtype=torch.bfloat16),
                torch.empty(2, 192, 128, device="meta", dtype=torch.bfloat16)):  # not a multiple of 64; fewer than T
        with pytest.raises(ValueError, match="RoPE"):
            gluon_backward(q, None, q, lse, *rest, finish_dq=False, qr=bad)
    from ratbench.impls.rat.gluon.backward import launch_backward

    acc, ld = torch.empty(2, 256, 128, device="meta"), torch.empty(2, 4, 2, 64, device="meta")
    dke = torch.empty(2, 16, 128, device="meta")
    for kw in ({"kv_regs": True}, {"owner": True}):  # b21, b22: 32 more registers would spill at head dim 128
        with pytest.raises(ValueError, match="head dim 64 only"):
            launch_backward(qr, q, ke, ke, acc, ld, dke, dke, 256, 16, 0.1, 0.14, **kw)
    with pytest.raises(ValueError, match="without the dq writer"):  # b22 through the dq writer: slower at every T
        dataclasses.replace(GLUON_CONFIG, bwd_dq_owner=True, bwd_dq_writer=True)
    q64, ke64 = q[..., :64], ke[..., :64]  # ... refused by the launcher too
    flags = torch.empty(2 * 4 * 2, device="meta", dtype=torch.int32)
    with pytest.raises(ValueError, match="with the dq writer"):
        launch_backward(torch.empty(2, 256, 64, device="meta", dtype=torch.bfloat16), q64, ke64, ke64, acc[..., :64],
                        ld, dke[..., :64], dke[..., :64], 256, 16, 0.1, 0.14, flags=flags, owner=True, kv_regs=True)


COMPILE = """
import json, sys, torch
from ratbench.bench.static_gate import _compile_launch, _intercept
from ratbench.impls.rat.gluon.forward import launch_forward
D, L, rope, lse, T, self_logit, kw = json.loads(sys.argv[1])
meta, H = torch.device("meta"), 2
q = torch.empty(1, T, H, D, device=meta, dtype=torch.bfloat16)
ke = torch.empty(1, H, T // L, D, device=meta, dtype=torch.bfloat16)
cos, lse_t = torch.empty(T // L, D // 2, device=meta), torch.empty(H, T, device=meta)
ss = torch.empty(H, T, device=meta) if self_logit else None
found = []
with _intercept("test", found):
    launch_forward(q, q, q, cos, cos, ke, ke, q, lse_t, T, H, L, 0.1, rope, lse, ss=ss, **kw)
assert len(found) == 1, found
print(json.dumps(_compile_launch(found[0])))
"""


def _compile_forward(D, L, rope, lse, T, self_logit, kw=None) -> dict:
    """fwd_ws_kernel as launch_forward launches it (kw: its softmax options), compiled for sm_90 in a process
    without TRITON_INTERPRET (the tests' conftest sets it before kernels are defined): the static gate's record."""
    import json

    pytest.importorskip("triton.experimental.gluon")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([sys.executable, "-c", COMPILE, json.dumps([D, L, rope, lse, T, self_logit, kw or {}])],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    assert "error" not in rec, rec.get("error")
    return rec


@pytest.mark.parametrize("D, L, rope, lse, T, self_logit, kw, max_spills", [
    (64, 64, True, True, 512, False, None, 0), (128, 1, True, True, 512, False, None, 0),
    (128, 16, False, False, 512, False, None, 0), (128, 8, True, True, 520, False, None, 6),
    (128, 8, True, True, 520, False, {"split": False}, 0), (128, 16, True, False, 520, True, None, 0),
    (64, 16, True, True, 512, True, None, 0), (64, 16, True, False, 512, True, {"exp_poly": 8}, 0),
    (64, 16, True, True, 520, False, {"exp_poly": 4, "tree": 2}, 0),
    (64, 16, True, True, 512, False, {"exp_poly": 2}, 0),
    (128, 16, True, True, 512, False, {"split": False, "tree": 0}, 0)])
def test_forward_kernel_compiles_for_sm90_without_spills(D, L, rope, lse, T, self_logit, kw, max_spills):
    """The kernel as the launcher launches it (intercepted on meta tensors) compiles for sm_90 without spills; o by
    TMA where T is a multiple of the 128-row tile, by plain stores otherwise (T 520); the self logits from the scan
    (self_logit) or not; the softmax's options (f6-f8) as given. The one exception: at head dim 128 with lse and the
    plain stores, f7's two key-block loops leave 6 spill words, 2 stores before the tile loop and 2 loads in the
    epilogue (none in a key-block loop; the static gate's shapes store o by TMA)."""
    from ratbench.bench.static_gate import SMEM_LIMIT

    rec = _compile_forward(D, L, rope, lse, T, self_logit, kw)
    assert rec["spills"] <= max_spills and rec["HGMMA"] > 0 and rec["UTMALDG"] > 0, rec
    assert 0 < rec["shared"] <= SMEM_LIMIT, rec
    assert rec["constexprs"]["O_TMA"] == (T % 128 == 0) and rec["constexprs"]["SELF_LOGIT"] == self_logit, rec
    kw = kw or {}
    assert rec["constexprs"]["EXP_POLY"] == kw.get("exp_poly", 0), rec
    assert rec["constexprs"]["SPLIT"] == kw.get("split", True) and rec["constexprs"]["TREE"] == kw.get("tree", 1), rec


def test_launcher_refuses_an_exponential_share_it_has_no_split_for():
    from ratbench.impls.rat.gluon.forward import launch_forward

    q = torch.empty(1, 256, 2, 64, device="meta", dtype=torch.bfloat16)
    ke = torch.empty(1, 2, 16, 64, device="meta", dtype=torch.bfloat16)
    cos, lse = torch.empty(16, 32, device="meta"), torch.empty(2, 256, device="meta")
    for bad in ({"exp_poly": 3}, {"tree": 3}):
        with pytest.raises(ValueError, match="rat/gluon: "):
            launch_forward(q, q, q, cos, cos, ke, ke, q, lse, 256, 2, 16, 0.1, True, True, **bad)


def test_forward_stores_o_by_tma_only_where_a_box_stays_in_its_sequence():
    """fwd_ws_kernel writes o by TMA from shared memory (O_TMA) only where T is a multiple of its 128-row tile and o is
    a dense (B, T, H, D) tensor of q's dtype: a 64-row box past T would write the next sequence's rows."""
    from ratbench.bench.static_gate import _intercept
    from ratbench.impls.rat.gluon.forward import launch_forward

    meta, H, D, L = torch.device("meta"), 2, 128, 16

    def o_tma(T, o=None):
        q = torch.empty(2, T, H, D, device=meta, dtype=torch.bfloat16)
        ke = torch.empty(2, H, -(-T // L), D, device=meta, dtype=torch.bfloat16)
        cos, lse = torch.empty(-(-T // L), D // 2, device=meta), torch.empty(2 * H, T, device=meta)
        found = []
        with _intercept("test", found):
            launch_forward(q, q, q, cos, cos, ke, ke, q if o is None else o, lse, T, H, L, 0.1, True, True)
        return found[0].constexprs["O_TMA"]

    assert o_tma(256) and not o_tma(200)
    assert not o_tma(256, torch.empty(2, 256, H, 2 * D, device=meta, dtype=torch.bfloat16)[..., :D])


COMPILE_BWD = """
import json, sys, torch
from ratbench.bench.static_gate import _compile_launch, _intercept
from ratbench.impls.rat.gluon.backward import launch_backward
D, L, dt, kv_regs = json.loads(sys.argv[1])
meta, T, H = torch.device("meta"), 1000, 2
dtype = getattr(torch, dt)
Tp, C = 1024, -(-T // L)
qr = torch.empty(H, Tp, D, device=meta, dtype=dtype)
do = torch.empty(1, T, H, D, device=meta, dtype=dtype)
ke = torch.empty(1, H, C, D, device=meta, dtype=dtype)
acc, ld = torch.empty(H, Tp, D, device=meta), torch.empty(H, Tp // 64, 2, 64, device=meta)
dke = torch.empty(H, C, D, device=meta)
found = []
with _intercept("test", found):
    launch_backward(qr, do, ke, ke, acc, ld, dke, dke, T, L, 0.1, 0.14, kv_regs=kv_regs)
assert len(found) == 1, found
print(json.dumps(_compile_launch(found[0])))
"""


@pytest.mark.parametrize("D, L, dt, kv_regs, max_spills", [(64, 16, "bfloat16", False, 0), (64, 4, "float16", False, 0),
                                                           (128, 64, "bfloat16", False, 30), (64, 16, "bfloat16", True, 0)])
def test_backward_kernel_compiles_for_sm90(D, L, dt, kv_regs, max_spills):
    """bwd_ws_kernel as launch_backward launches it, compiled for sm_90 at shapes rat/gluon routes to it beside the
    static gate's (D 128, L 16, T 128k): wgmma, TMA loads and the TMA reduction present, shared memory under the
    limit, no spills at head dim 64 and at most the gate baseline's 30 words (17 LDL + 13 STL) at 128."""
    import json

    pytest.importorskip("triton.experimental.gluon")
    from ratbench.bench.static_gate import SMEM_LIMIT

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([sys.executable, "-c", COMPILE_BWD, json.dumps([D, L, dt, kv_regs])], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    assert "error" not in rec, rec.get("error")
    assert rec["HGMMA"] > 0 and rec["UTMALDG"] > 0 and rec.get("UTMAREDG", 0) > 0, rec
    assert rec["spills"] <= max_spills and 0 < rec["shared"] <= SMEM_LIMIT, rec

def test_gluon_forward_at_every_shape(monkeypatch):
    """rat/gluon runs the Gluon forward at every chunk-end count and 16-bit dtype, whatever the head dim (it measured faster than
    rat/triton's kernels everywhere since v4; NOTES.md "Where it is used"); a config given by the caller is used as
    given."""
    from ratbench.impls.rat.triton import DEFAULT_CONFIG

    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    g = RATGluon()
    for n_chunks, dtype in ((8192, torch.bfloat16), (256, torch.bfloat16), (64, torch.float16), (1, torch.bfloat16)):
        assert g._config(n_chunks, dtype) is GLUON_CONFIG
    assert RATGluon(DEFAULT_CONFIG)._config(64, torch.bfloat16) is DEFAULT_CONFIG


def _emulated_bwd_ws_kernel(qr, do, ke, ve, dqacc, ld, dke, dve, T, L, scale, scale2, stages=2, seg=None,
                            flags=None, kv_regs=False, owner=False):
    """bwd_ws_kernel's contract in torch (float32, dense): dK (scaled), dV of the chunk ends and dS K added to dke,
    dve and the dq accumulator (float32 or 16-bit: b17; with flags, b7b / b7c's writer warp: stored into its rows
    below T rounded up to 64, the rest left), rows past T carried by lse +inf / Delta 0 as the kernel sees them. seg
    (query tiles per work item), kv_regs and owner (b21, b22) change how the kernel works, not its result."""
    BH, Tp, D = qr.shape
    C = dke.shape[1]
    q = qr.float()
    lsep, deltap = (ld[:, :, r].reshape(BH, Tp) for r in (0, 1))  # per 64-row tile: lse row, Delta row
    dof = torch.zeros(BH, Tp, D)
    dof[:, :T] = do.float().permute(0, 2, 1, 3).reshape(BH, T, D)
    k = ke.float().reshape(BH, -1, D)[:, :C]
    v = ve.float().reshape(BH, -1, D)[:, :C]
    vis = torch.arange(C)[None, :] < (torch.arange(Tp) // L)[:, None]
    p = torch.exp2(q @ k.transpose(1, 2) * scale2 - lsep[..., None]) * vis
    ds = p * (dof @ v.transpose(1, 2) - deltap[..., None])
    dve.add_(p.transpose(1, 2) @ dof)
    dke.add_(ds.transpose(1, 2) @ q * scale)
    if flags is None:
        dqacc.add_(ds @ k)
    else:
        assert flags.dtype == torch.int32 and flags.numel() == BH * Tp // 64 * 2 and not flags.any()
        rows = -(-T // 64) * 64
        dqacc[:, :rows] = (ds @ k)[:, :rows]
        dqacc[:, rows:] = float("nan")  # never written by the kernel: must not be read


@pytest.mark.parametrize("T,L,rope,long_scan", [(40, 8, True, False), (100, 4, True, False), (64, 16, False, False),
                                                (40, 8, True, True), (64, 16, False, True)])
def test_backward_passes_around_the_gluon_kernel(monkeypatch, T, L, rope, long_scan):
    """rat/gluon's backward (backward="gluon_ws") on the CPU with its Gluon kernel emulated in torch: the Triton
    passes around it, run by the interpreter, give rat/triton's gradients. With the one-level scans:
    bwd_ws_pre_kernel (Delta, padded lse / Delta, RoPE(q), a zero accumulator) and the backward scan finishing dq
    (its self term, RoPE^T); with the two-level scans (long_scan): the pre pass with dq's self term and
    bwd_dq_post_kernel. T not a multiple of 64 pads the tiles."""
    from ratbench.impls.rat.gluon import backward as gb
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    calls = []
    monkeypatch.setattr(gb, "launch_backward", lambda *a, **kw: calls.append(1) or _emulated_bwd_ws_kernel(*a, **kw))
    g = torch.Generator().manual_seed(0)
    B, H, D = 2, 2, 32
    xs = [torch.randn(B, T, H, D, generator=g).half() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, generator=g) + 2).half())
    do = torch.randn(B, T, H, D, generator=g).half()
    out = []
    base = dataclasses.replace(INTERPRET_CONFIG, long_scan=long_scan)
    for cfg in (base, dataclasses.replace(base, backward="gluon_ws")):
        ins = [x.clone().requires_grad_(True) for x in xs]
        RATTriton(cfg).forward(*ins, chunk_size=L, rope=rope).backward(do)
        out.append([x.grad.float() for x in ins])
    assert calls == [1]
    for name, a, b in zip("qkvf", *out):
        assert torch.allclose(a, b, atol=2e-2, rtol=2e-2), (name, (a - b).abs().max().item())


def _emulated_fwd_ws_kernel(q, ktr, vt, cos, sin, ke, ve, o, lse, T, H, L, scale2, rope, store_lse, bn=128,
                            stages=2, qr=None, ss=None, exp_poly=0, split=True, tree=1, cross_tile=False, xt_stages=2,
                            wgs=2):
    """fwd_ws_kernel's contract in torch (float32): o, lse (base 2) and, given qr, RoPE_c(q) into its rows < T (rows
    past T: zeros, finite as the kernel's); given ss (float32 (B*H, T)), the self logits from there (ktr not read).
    The softmax's options (exp_poly, split, tree: f6-f8) change the kernel's rounding only, not its contract, and so
    do f23's consumers (cross_tile, xt_stages) and f25's three consumer warpgroups (wgs)."""
    B, _, _, D = q.shape
    C = ke.shape[2]
    c = torch.arange(T) // L
    q32 = q.float().permute(0, 2, 1, 3)  # (B, H, T, D)
    if rope:
        cs, sn = cos[c][None, None], sin[c][None, None]
        q1, q2 = q32[..., : D // 2], q32[..., D // 2:]
        q32 = torch.cat([q1 * cs - q2 * sn, q2 * cs + q1 * sn], -1)
    qd = q32.to(q.dtype).float()  # the kernel's products read the 16-bit q_r
    vv = vt.float().permute(0, 2, 1, 3)
    if ss is None:
        s_self = (q32 * ktr.float().permute(0, 2, 1, 3)).sum(-1, keepdim=True)
    else:
        assert ss.shape == (B * H, T) and ss.dtype == torch.float32
        s_self = ss.reshape(B, H, T, 1)
    s_inter = qd @ ke.float()[:, :, :C].transpose(-1, -2) * scale2
    s_inter = s_inter.masked_fill(torch.arange(C)[None, :] >= c[:, None], -float("inf"))
    s = torch.cat([s_inter, s_self * scale2], -1)
    m = s.amax(-1, keepdim=True)
    p = torch.exp2(s - m)
    den = p.sum(-1, keepdim=True)
    out = (p[..., :C] @ ve.float()[:, :, :C] + p[..., C:] * vv) / den
    o.copy_(out.permute(0, 2, 1, 3).to(o.dtype))
    if store_lse:
        lse.copy_((m + torch.log2(den)).reshape(B * H, T))
        if qr is not None:
            qr.zero_()
            qr[:, :T] = qd.reshape(B * H, T, D).to(qr.dtype)


@pytest.mark.parametrize("T,T0,L,rope", [(44, 21, 4, True), (40, 16, 8, False), (208, 200, 16, True)])
def test_prefill_takes_the_self_logits_from_the_scan(monkeypatch, T, T0, L, rope):
    """rat/gluon's prefill: scan_kernel (interpreter) writes each row's self logit q . kt (SELF_LOGIT) and no
    RoPE(kt) per row, the forward (emulated in torch) reads them: the output, the cache and the steps after it
    equal rat/triton's, and the forward got the logits (not a training forward: that one reads RoPE(kt))."""
    from ratbench.impls.rat.gluon import forward as gf
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seen = []
    monkeypatch.setattr(gf, "launch_forward", lambda *a, **kw: seen.append(kw.get("ss") is not None) or
                        _emulated_fwd_ws_kernel(*a, **kw))
    g = torch.Generator().manual_seed(T0)
    B, H, D = 2, 2, 32
    q, k, v = (torch.randn(B, T, H, D, generator=g) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, T, H, D, generator=g) + 1)
    gluon = dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", fwd_bm=128)
    outs, states = [], []
    for cfg in (INTERPRET_CONFIG, gluon):
        impl = RATTriton(cfg)
        state = impl.init_state(B, H, D, T, device="cpu", dtype=torch.float32, chunk_size=L, rope=rope)
        ys = [impl.prefill(state, q[:, :T0], k[:, :T0], v[:, :T0], f[:, :T0])]
        ys += [impl.step(state, q[:, t], k[:, t], v[:, t], f[:, t])[:, None] for t in range(T0, T)]
        outs.append(torch.cat(ys, 1))
        states.append(state)
    assert seen == [True]
    assert torch.allclose(outs[0], outs[1], atol=1e-5, rtol=1e-5), (outs[0] - outs[1]).abs().max()
    for name in ("k_cache", "v_cache", "kt", "vt"):
        a, b = getattr(states[0], name), getattr(states[1], name)
        assert torch.allclose(a, b, atol=1e-6), (name, (a - b).abs().max())


@pytest.mark.parametrize("D, fields, want", [
    (64, {}, (8, True, 1)), (32, {}, (0, True, 1)), (128, {"fwd_exp_poly": 4}, (0, True, 1)),
    (64, {"fwd_exp_poly": 4, "fwd_split_masked": False, "fwd_row_tree": 2}, (4, False, 2))])
def test_forward_softmax_options_reach_the_kernel(monkeypatch, D, fields, want):
    """RATTritonConfig's fwd_exp_poly (head dim 64 only), fwd_split_masked and fwd_row_tree as launch_forward gets
    them."""
    from ratbench.impls.rat.gluon import forward as gf
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seen = []
    monkeypatch.setattr(gf, "launch_forward", lambda *a, **kw: seen.append((kw["exp_poly"], kw["split"], kw["tree"]))
                        or _emulated_fwd_ws_kernel(*a, **kw))
    x = [torch.randn(1, 16, 1, D) for _ in range(4)]
    RATTriton(dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", fwd_bm=128, **fields)).forward(
        *x, chunk_size=4)
    assert seen == [want]
    with pytest.raises(ValueError, match="fwd_exp_poly"):
        dataclasses.replace(INTERPRET_CONFIG, fwd_exp_poly=3)


@pytest.mark.parametrize("train, fields, want", [
    (False, {"fwd_exp_poly_train": 0}, 8), (True, {"fwd_exp_poly_train": 0}, 0), (True, {}, 8),
    (True, {"fwd_exp_poly": 4, "fwd_exp_poly_train": 2}, 2), (False, {"fwd_exp_poly": 4, "fwd_exp_poly_train": 2}, 4)])
def test_training_forward_takes_its_own_share_of_polynomial_exponentials(monkeypatch, train, fields, want):
    """fwd_exp_poly_train: the training forward's (the launch that stores lse) share of polynomial exponentials,
    fwd_exp_poly's where None; the prefill keeps fwd_exp_poly."""
    from ratbench.impls.rat.gluon import forward as gf
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seen = []
    monkeypatch.setattr(gf, "launch_forward", lambda *a, **kw: seen.append((kw["exp_poly"], a[14]))
                        or _emulated_fwd_ws_kernel(*a, **kw))
    x = [torch.randn(1, 16, 1, 64, requires_grad=train) for _ in range(4)]
    RATTriton(dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", fwd_bm=128, **fields)).forward(
        *x, chunk_size=4)
    assert seen == [(want, train)]
    with pytest.raises(ValueError, match="fwd_exp_poly_train"):
        dataclasses.replace(INTERPRET_CONFIG, fwd_exp_poly_train=3)


@pytest.mark.parametrize("T,L", [(40, 8), (208, 16)])
def test_backward_with_rope_q_from_the_forward(monkeypatch, T, L):
    """The training forward writes RoPE_c(q) (fwd_qr; Tq = T rounded up to 128 rows) and the backward's pre pass
    skips q: with both Gluon kernels emulated in torch, the passes and the scan (interpreter) give rat/triton's
    gradients, and the pre pass got the forward's tensor."""
    from ratbench.impls.rat.gluon import backward as gb
    from ratbench.impls.rat.gluon import forward as gf
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seen = []
    monkeypatch.setattr(gf, "launch_forward", lambda *a, **kw: seen.append(kw["qr"].shape) or
                        _emulated_fwd_ws_kernel(*a, **kw))
    monkeypatch.setattr(gb, "launch_backward", lambda *a, **kw: seen.append(a[0].shape) or
                        _emulated_bwd_ws_kernel(*a, **kw))
    g = torch.Generator().manual_seed(1)
    B, H, D = 1, 2, 32
    xs = [torch.randn(B, T, H, D, generator=g).half() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, generator=g) + 2).half())
    do = torch.randn(B, T, H, D, generator=g).half()
    gluon = dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", backward="gluon_ws", fwd_bm=128)
    out = []
    for cfg in (INTERPRET_CONFIG, gluon):
        ins = [x.clone().requires_grad_(True) for x in xs]
        y = RATTriton(cfg).forward(*ins, chunk_size=L)
        y.backward(do)
        out.append([y.float()] + [x.grad.float() for x in ins])
    tq = -(-T // 128) * 128
    assert seen == [(B * H, tq, D)] * 2
    for name, a, b in zip(["o", *"qkvf"], *out):
        assert torch.allclose(a, b, atol=2e-2, rtol=2e-2), (name, (a - b).abs().max().item())


@pytest.mark.parametrize("T, C, L, seg", [(131072, 8192, 16, 128), (4096, 256, 16, 64), (1000, 125, 8, 64),
                                          (2000, 2000, 1, 4), (300, 75, 4, 64), (64, 4, 16, 64), (40, 5, 8, 1),
                                          (4096, 64, 64, 64)])
def test_backward_work_items_cover_each_key_block_query_tile_pair_once(T, C, L, seg):
    """bwd_ws_kernel's work items: every (key block, 64-row query tile) pair in which a row sees a key of the block
    (c(t) > 128 kb for some row t of the tile) exactly once, no item across a multiple of seg tiles, segments from
    the last, key blocks in order within one."""
    from ratbench.impls.rat.gluon.items import work_items

    items = work_items(T, C, L, seg, torch.device("cpu")).tolist()
    got = [(kb, t) for kb, lo, n in items for t in range(lo // 64, lo // 64 + n)]
    want = [(kb, t) for kb in range(-(-C // 128)) for t in range(-(-T // 64))
            if min(T - 1, 64 * t + 63) // L > 128 * kb]
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    assert all(lo % 64 == 0 and n > 0 and lo // (64 * seg) == (lo + 64 * n - 1) // (64 * seg) for _, lo, n in items)
    order = [(-(lo // (64 * seg)), kb) for kb, lo, _ in items]
    assert order == sorted(order)


@pytest.mark.parametrize("T, C, L, seg", [(4096, 256, 16, 8), (4096, 64, 64, 16), (1000, 125, 8, 4), (200, 50, 4, 64)])
def test_backward_work_items_with_key_block_0_ahead(T, C, L, seg):
    """b7b's items (first_ahead, the store-first accumulator): key block 0 visits every 64-row tile below T, even
    those none of whose rows sees its keys (it stores each tile's first dq share); its item of each segment comes
    before the previous segment's other items; the other pairs as without first_ahead, once each."""
    from ratbench.impls.rat.gluon.items import work_items

    items = work_items(T, C, L, seg, torch.device("cpu"), first_ahead=True).tolist()
    got = [(kb, t) for kb, lo, n in items for t in range(lo // 64, lo // 64 + n)]
    want = [(0, t) for t in range(-(-T // 64))] + [
        (kb, t) for kb in range(1, -(-C // 128)) for t in range(-(-T // 64)) if min(T - 1, 64 * t + 63) // L > 128 * kb]
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    segs = [lo // (64 * seg) for kb, lo, _ in items]
    first = {segs[i]: i for i, (kb, _, _) in enumerate(items) if kb == 0}  # block 0's item per segment
    assert list(first) == sorted(set(segs), reverse=True)  # segments from the last, block 0 in each
    for i, (kb, _, _) in enumerate(items):
        if kb != 0:  # after block 0's item of its own segment and of the segment processed next
            assert first[segs[i]] < i and (segs[i] == 0 or first[segs[i] - 1] < i), (i, items)


def _poly_on(cfg):
    """cfg with the D 64 prefill's share of polynomial exponentials and the forward's two consumer warpgroups put
    back (test_exp_poly_route and test_wgs_route have the rules')."""
    if cfg.fwd_exp_poly_train is not None:
        cfg = dataclasses.replace(cfg, fwd_exp_poly=cfg.fwd_exp_poly_train, fwd_exp_poly_train=None)
    if (cfg.fwd_wgs, cfg.fwd_wgs_train) != (2, None):
        cfg = dataclasses.replace(cfg, fwd_wgs=2, fwd_wgs_train=None)
    return cfg


def _plain(cfg):
    """cfg without f23's and f26's fields (test_cross_tile_route, test_train_cross_tile_route have those) and b21 /
    b22's (test_kv_owner_route), with the backward scan's launch of GLUON_BWD_CONFIG (test_bscan_route has the rule's)
    and one in 8 of the D 64 forward's exponentials by polynomial (test_exp_poly_route has the prefill's rule)."""
    out = dataclasses.replace(_poly_on(cfg), fwd_cross_tile=False, fwd_cross_tile_train=False, fwd_xt_stages=2,
                              bwd_kv_regs=False, bwd_dq_owner=False)
    if out.backward == "gluon_ws" and out.bscan_nc != 8:
        out = dataclasses.replace(out, bscan_nc=8)
    return cfg if out == cfg else out  # the same object where nothing changed (a module's config constants)


class _NoCrossTile(RATGluon):
    """rat/gluon's configs as `_plain` makes them: the backward's route apart."""

    def _config(self, *a, **kw):
        return _plain(super()._config(*a, **kw))


def test_bscan_route():
    """The backward scan's chunks side by side where they measured faster (NOTES.md "Twenty-ninth session"): 16 at head
    dim 64 with the float32 dq accumulator (more than 256 chunk ends), 4 at head dim 128 with the 16-bit one (at most
    256), 8 elsewhere where the Gluon backward runs; the forward scan's launch and the rest of the config unchanged."""
    from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_CONFIG, bscan_nc

    assert GLUON_BWD_CONFIG.bscan_nc == 8 and GLUON_CONFIG.scan_nc == 16
    assert bscan_nc(32768, 16, 64) == 16 and bscan_nc(131072, 16, 64) == 16 and bscan_nc(4096, 16, 64) == 8
    assert bscan_nc(4096, 16, 128) == 4 and bscan_nc(16384, 64, 128) == 4 and bscan_nc(4096, 64, 128) == 4
    assert bscan_nc(8192, 16, 128) == 8 and bscan_nc(131072, 64, 128) == 8
    g, plain = RATGluon(), _NoCrossTile()
    for T, L, D, want in ((4096, 16, 128, 4), (32768, 16, 128, 8), (4096, 16, 64, 8), (32768, 16, 64, 16),
                          (4096, 64, 128, 4), (131072, 64, 128, 8)):
        kw = {"seq_len": T, "chunk_size": L, "head_dim": D}
        cfg = g._config(T // L, torch.bfloat16, **kw)
        assert (cfg.bscan_nc, cfg.scan_nc) == (want, 16), (T, L, D)
        assert _plain(cfg) == plain._config(T // L, torch.bfloat16, **kw)
    # rat/triton's backward (chunks of 1024 rows at head dim 128 below 16k): its own launch
    assert g._config(4, torch.bfloat16, seq_len=4096, chunk_size=1024, head_dim=128).bscan_nc == 4


def test_cross_tile_route():
    """f23's prefill consumers where they measured faster (NOTES.md "Twenty-seventh session"): up to 512 chunk ends
    per sequence at head dim 128, 2048 at 64 (with three ring entries), never at other head dims; the rest of the
    config as without them; the launcher takes them only where they apply (o
    by TMA, every tile with a key block, the last key block a tile's only masked one)."""
    from ratbench.impls.rat.gluon import cross_tile_used
    from ratbench.impls.rat.gluon.forward import cross_tile_applies, launch_forward

    assert cross_tile_used(8192, 16, 128) and not cross_tile_used(16384, 16, 128)
    assert cross_tile_used(32768, 64, 128) and not cross_tile_used(131072, 64, 128)
    assert cross_tile_used(32768, 16, 64) and not cross_tile_used(65536, 16, 64)
    assert not cross_tile_used(4096, 16, 32)
    g = RATGluon()
    for T, L, D, want, stages in ((4096, 16, 128, True, 2), (32768, 16, 128, False, 2), (4096, 16, 64, True, 3),
                                  (131072, 16, 64, False, 2), (16384, 64, 128, True, 2)):
        cfg = g._config(T // L, torch.bfloat16, seq_len=T, chunk_size=L, head_dim=D)
        assert (cfg.fwd_cross_tile, cfg.fwd_xt_stages) == (want, stages), (T, L, D)
        assert _plain(cfg) == _NoCrossTile()._config(T // L, torch.bfloat16, seq_len=T, chunk_size=L, head_dim=D)
    assert cross_tile_applies(4096, 16, True) and cross_tile_applies(4096, 64, True)
    assert cross_tile_applies(40, 8, True) and not cross_tile_applies(40, 64, True)
    assert not cross_tile_applies(4000, 16, False)  # o by plain stores
    assert not cross_tile_applies(4096, 128, True)  # the first tile has no key block
    assert not cross_tile_applies(4096, 12, True)  # a tile can have two masked key blocks
    meta = torch.device("meta")
    q = torch.empty(1, 4096, 2, 128, device=meta, dtype=torch.bfloat16)
    ke, ss = torch.empty(1, 2, 256, 128, device=meta, dtype=torch.bfloat16), torch.empty(2, 4096, device=meta)
    with pytest.raises(ValueError, match="do not fit in shared memory"):
        launch_forward(q, q, q, ss, ss, ke, ke, q, ss, 4096, 2, 16, 0.1, True, False, ss=ss, cross_tile=True,
                       xt_stages=3)


def test_exp_poly_route():
    """The D 64 prefill's exponentials all on the MUFU where that measured faster (NOTES.md "Thirtieth session"):
    beside f23's consumers up to 512 chunk ends per sequence, and everywhere beyond f23's 2048; the training forward
    keeps one in 8 by polynomial; head dim 128 untouched; the rest of the config as without it."""
    from ratbench.impls.rat.gluon import prefill_exp_poly_off

    assert prefill_exp_poly_off(4096, 16, 64) and prefill_exp_poly_off(8192, 16, 64)
    assert not prefill_exp_poly_off(16384, 16, 64) and not prefill_exp_poly_off(32768, 16, 64)
    assert prefill_exp_poly_off(65536, 16, 64) and prefill_exp_poly_off(131072, 16, 64)
    assert prefill_exp_poly_off(32768, 64, 64) and not prefill_exp_poly_off(65536, 64, 64)
    assert not prefill_exp_poly_off(4096, 16, 128) and not prefill_exp_poly_off(131072, 16, 128)
    g = RATGluon()
    for T, L, D, want in ((4096, 16, 64, (0, 8)), (8192, 16, 64, (0, 8)), (16384, 16, 64, (8, None)),
                          (32768, 16, 64, (8, None)), (65536, 16, 64, (0, 8)), (131072, 16, 64, (0, 8)),
                          (4096, 16, 128, (8, None))):
        cfg = g._config(T // L, torch.bfloat16, seq_len=T, chunk_size=L, head_dim=D)
        assert (cfg.fwd_exp_poly, cfg.fwd_exp_poly_train) == want, (T, L, D)
        assert _poly_on(cfg).fwd_exp_poly == 8 and _poly_on(cfg).fwd_exp_poly_train is None
    assert GLUON_CONFIG.fwd_exp_poly == 8 and GLUON_CONFIG.fwd_exp_poly_train is None
    given = dataclasses.replace(GLUON_CONFIG, fwd_exp_poly=4)  # a config given by the caller: used as given
    assert RATGluon(given)._config(4096, torch.bfloat16, seq_len=4096, chunk_size=16, head_dim=64) is given


def test_wgs_route():
    """The D 64 forward's three consumer warpgroups (f25, f25b) where they measured faster (NOTES.md "Thirtieth
    session"): the prefill where f23's consumers do not run (beyond 2048 chunk ends per sequence), the training
    forward from 8192; head dim 128 untouched."""
    from ratbench.impls.rat.gluon import prefill_wgs3_used, train_wgs3_used

    assert prefill_wgs3_used(65536, 16, 64) and prefill_wgs3_used(131072, 16, 64)
    assert not prefill_wgs3_used(32768, 16, 64) and not prefill_wgs3_used(4096, 16, 64)
    assert not prefill_wgs3_used(131072, 64, 64) and prefill_wgs3_used(262144, 64, 64)
    assert not prefill_wgs3_used(131072, 16, 128)
    assert train_wgs3_used(131072, 16, 64) and not train_wgs3_used(65536, 16, 64)
    assert not train_wgs3_used(131072, 64, 64) and not train_wgs3_used(131072, 16, 128)
    g = RATGluon()
    for T, L, D, want in ((65536, 16, 64, (3, 2)), (131072, 16, 64, (3, 3)), (32768, 16, 64, (2, None)),
                          (4096, 16, 64, (2, None)), (131072, 16, 128, (2, None))):
        cfg = g._config(T // L, torch.bfloat16, seq_len=T, chunk_size=L, head_dim=D)
        assert (cfg.fwd_wgs, cfg.fwd_wgs_train) == want, (T, L, D)
    assert GLUON_CONFIG.fwd_wgs == 2 and GLUON_CONFIG.fwd_wgs_train is None
    with pytest.raises(ValueError, match="fwd_wgs"):
        dataclasses.replace(GLUON_CONFIG, fwd_wgs=4)
    with pytest.raises(ValueError, match="fwd_wgs"):
        dataclasses.replace(GLUON_CONFIG, fwd_wgs_train=1)


def test_kv_owner_route():
    """The D 64 backward's b21 + b22 where they measured faster in every gate round (NOTES.md "Thirty-first session",
    "Thirty-second session"): between KV_OWNER_ENDS chunk ends per sequence (16k to 128k at L 16); not at 4k (the
    writer's route), not at head dim 128."""
    from ratbench.impls.rat.gluon import KV_OWNER_ENDS, bwd_kv_owner_used

    lo, hi = KV_OWNER_ENDS
    assert bwd_kv_owner_used(16 * lo, 16, 64) and bwd_kv_owner_used(16 * hi, 16, 64)
    assert not bwd_kv_owner_used(16 * lo - 16, 16, 64) and not bwd_kv_owner_used(16 * hi + 16, 16, 64)
    assert not bwd_kv_owner_used(4096, 16, 64) and not bwd_kv_owner_used(32768, 16, 128)
    g = RATGluon()
    for T, D, want in ((32768, 64, True), (16384, 64, True), (131072, 64, True), (4096, 64, False),
                       (32768, 128, False)):
        cfg = g._config(T // 16, torch.bfloat16, seq_len=T, chunk_size=16, head_dim=D)
        assert (cfg.bwd_kv_regs, cfg.bwd_dq_owner) == (want, want), (T, D)
    assert not GLUON_CONFIG.bwd_kv_regs and not GLUON_CONFIG.bwd_dq_owner


def test_train_cross_tile_route():
    """f26, f23's consumers in the training forward, where they measured faster in every gate round (NOTES.md
    "Thirty-second session"): D 64 L 16 from 4k to 32k, D 128 L 64 at 32k; nowhere else (D 128 L 16, D 64 at 64k and
    beyond, chunk sizes not measured); the prefill's route and the ring depth as without it."""
    from ratbench.impls.rat.gluon import TRAIN_XT_ENDS, train_cross_tile_used

    assert TRAIN_XT_ENDS[(64, 16)] == (256, 2048)
    assert train_cross_tile_used(4096, 16, 64) and train_cross_tile_used(32768, 16, 64)
    assert not train_cross_tile_used(2048, 16, 64) and not train_cross_tile_used(65536, 16, 64)
    assert train_cross_tile_used(32768, 64, 128) and not train_cross_tile_used(4096, 64, 128)
    assert not train_cross_tile_used(4096, 16, 128) and not train_cross_tile_used(4096, 4, 64)
    g = RATGluon()
    for T, L, D, want, stages in ((4096, 16, 64, True, 3), (32768, 16, 64, True, 3), (131072, 16, 64, False, 2),
                                  (32768, 64, 128, True, 2), (16384, 16, 128, False, 2)):
        cfg = g._config(T // L, torch.bfloat16, seq_len=T, chunk_size=L, head_dim=D)
        assert (cfg.fwd_cross_tile_train, cfg.fwd_xt_stages) == (want, stages), (T, L, D)
    assert not GLUON_CONFIG.fwd_cross_tile_train


@pytest.mark.parametrize("train, D, fields, want", [
    (False, 64, {"fwd_wgs": 3, "fwd_wgs_train": 2}, 3), (True, 64, {"fwd_wgs": 3, "fwd_wgs_train": 2}, 2),
    (True, 64, {"fwd_wgs": 3}, 3), (False, 128, {"fwd_wgs": 3}, 2), (False, 64, {}, 2)])
def test_consumer_warpgroups_reach_the_launcher(monkeypatch, train, D, fields, want):
    """fwd_wgs (the prefill's; the training forward's fwd_wgs_train where set) reaches launch_forward at head dim 64;
    other head dims get two."""
    from ratbench.impls.rat.gluon import forward as gf
    from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    seen = []
    monkeypatch.setattr(gf, "launch_forward",
                        lambda *a, **kw: seen.append(kw["wgs"]) or _emulated_fwd_ws_kernel(*a, **kw))
    x = [torch.randn(1, 16, 1, D, requires_grad=train) for _ in range(4)]
    RATTriton(dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", fwd_bm=128, **fields)).forward(
        *x, chunk_size=4)
    assert seen == [want]


def test_gluon_backward_route():
    """rat/gluon's own backward where it measured faster (NOTES.md b4): head dim 64 and L < 64 everywhere, L >= 64
    from T 16k and, with b7c's dq writer, below it (NOTES.md "Eleventh session") but for chunks of 1024 rows and
    more (the two-level scans), which keep rat/triton's backward at D 128; b7c's dq writer and b7b's store-first
    accumulator at head dim 128 at every T, at 64 up to 256 chunk ends per sequence (NOTES.md "Tenth" and "Twelfth
    session"); a config given by the caller is used as given."""
    from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, GLUON_WRITER_CONFIG, dq_writer_used, gluon_backward_used
    from ratbench.impls.rat.triton import DEFAULT_CONFIG

    assert GLUON_BWD_CONFIG.backward == "gluon_ws" and GLUON_BWD_CONFIG.forward == "gluon_ws"
    assert gluon_backward_used(4096, 16, 64) and gluon_backward_used(131072, 16, 128)
    assert gluon_backward_used(4096, 16, 128) and gluon_backward_used(32768, 16, 128)
    assert gluon_backward_used(32768, 64, 128) and gluon_backward_used(4096, 64, 64)
    assert gluon_backward_used(4096, 64, 128) and gluon_backward_used(8192, 128, 128)
    assert not gluon_backward_used(4096, 1024, 128) and not gluon_backward_used(8192, 2048, 128)
    assert gluon_backward_used(4096, 1024, 64) and gluon_backward_used(16384, 2048, 128)
    g = _NoCrossTile()
    assert g._config(8192, torch.bfloat16, seq_len=131072, chunk_size=16, head_dim=128) == GLUON_WRITER_CONFIG
    assert g._config(8192, torch.bfloat16, seq_len=131072, chunk_size=16, head_dim=64) == GLUON_BWD_CONFIG
    assert g._config(64, torch.bfloat16, seq_len=4096, chunk_size=64, head_dim=128) == GLUON_WRITER_CONFIG
    assert g._config(4, torch.bfloat16, seq_len=4096, chunk_size=1024, head_dim=128) == GLUON_CONFIG
    assert g._config(256, torch.bfloat16, seq_len=4096, chunk_size=16, head_dim=128) == GLUON_WRITER_CONFIG
    assert g._config(256, torch.bfloat16, seq_len=4096, chunk_size=16, head_dim=64) == GLUON_WRITER_CONFIG
    assert g._config(512, torch.bfloat16, seq_len=8192, chunk_size=16, head_dim=128) == GLUON_WRITER_CONFIG
    assert g._config(512, torch.bfloat16, seq_len=8192, chunk_size=16, head_dim=64) == GLUON_BWD_CONFIG
    assert g._config(512, torch.bfloat16, seq_len=32768, chunk_size=64, head_dim=128) == GLUON_WRITER_CONFIG
    assert g._config(256, torch.bfloat16, seq_len=16384, chunk_size=64, head_dim=128) == GLUON_WRITER_CONFIG
    assert dq_writer_used(4000, 16, 64) and not dq_writer_used(4112, 16, 64) and not dq_writer_used(131072, 16, 64)
    assert dq_writer_used(4112, 16, 128) and dq_writer_used(131072, 16, 128)
    assert GLUON_WRITER_CONFIG.bwd_dq_writer and not GLUON_BWD_CONFIG.bwd_dq_writer
    assert g._config(256, torch.bfloat16) is GLUON_CONFIG  # shape unknown (decode): the forward's config
    assert RATGluon(DEFAULT_CONFIG)._config(8192, torch.bfloat16, seq_len=131072, chunk_size=16,
                                                head_dim=128) is DEFAULT_CONFIG


def test_polynomial_exponential_recipe_and_coefficients(monkeypatch):
    """f6's exp2_poly recipe (impls/rat/gluon/softmax.py) with its coefficients, run as a Triton kernel in the
    interpreter (Gluon has none): x clamped at -125, j = round(x) by the 1.5 * 2**23 shift, 2**(x - j) by the
    polynomial, j added to the exponent bits. Within 1e-4 relative of 2**x over the softmax's range, about 2**-125
    (not 0, never NaN) for -inf; a wrong coefficient or shift fails."""
    import triton
    import triton.language as tl

    from ratbench.impls.rat.gluon import softmax

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    c = [float(getattr(softmax, f"P{i}").value) for i in range(4)]

    @triton.jit
    def poly_kernel(X, Y, P0, P1, P2, P3, N: tl.constexpr):
        offs = tl.arange(0, N)
        x = tl.maximum(tl.load(X + offs), -125.0)
        r = x + 12582912.0
        j = r - 12582912.0
        f = x - j
        p = ((f * P3 + P2) * f + P1) * f + P0
        bits = p.to(tl.int32, bitcast=True) + (r.to(tl.int32, bitcast=True) << 23)
        tl.store(Y + offs, bits.to(tl.float32, bitcast=True))

    x = torch.cat([torch.linspace(-60.0, 0.0, 4093), torch.tensor([-0.5, -124.9, float("-inf")])])
    y = torch.empty_like(x)
    poly_kernel[(1,)](x, y, *c, N=x.numel())
    want = torch.exp2(x[:-1].double())
    assert ((y[:-1].double() - want).abs() / want).max() < 1e-4
    assert y[-1].item() == pytest.approx(2.0 ** -125, rel=1e-4) and not torch.isnan(y).any()
