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


COMPILE = """
import json, sys, torch
from ratbench.bench.static_gate import _compile_launch, _intercept
from ratbench.impls.rat.gluon.forward import launch_forward
D, L, rope, lse, T = json.loads(sys.argv[1])
meta, H = torch.device("meta"), 2
q = torch.empty(1, T, H, D, device=meta, dtype=torch.bfloat16)
ke = torch.empty(1, H, T // L, D, device=meta, dtype=torch.bfloat16)
cos, lse_t = torch.empty(T // L, D // 2, device=meta), torch.empty(H, T, device=meta)
found = []
with _intercept("test", found):
    launch_forward(q, q, q, cos, cos, ke, ke, q, lse_t, T, H, L, 0.1, rope, lse)
assert len(found) == 1, found
print(json.dumps(_compile_launch(found[0])))
"""


@pytest.mark.parametrize("D, L, rope, lse, T", [(64, 64, True, True, 512), (128, 1, True, True, 512),
                                                (128, 16, False, False, 512), (128, 8, True, True, 520)])
def test_forward_kernel_compiles_for_sm90_without_spills(D, L, rope, lse, T):
    """The kernel as the launcher launches it (intercepted on meta tensors), compiled for sm_90 in a process
    without TRITON_INTERPRET (the tests' conftest sets it before kernels are defined); o by TMA where T is a multiple
    of the 128-row tile, by plain stores otherwise (T 520)."""
    import json

    pytest.importorskip("triton.experimental.gluon")
    from ratbench.bench.static_gate import SMEM_LIMIT

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([sys.executable, "-c", COMPILE, json.dumps([D, L, rope, lse, T])], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    rec = json.loads(p.stdout.strip().splitlines()[-1])
    assert "error" not in rec, rec.get("error")
    assert rec["spills"] == 0 and rec["HGMMA"] > 0 and rec["UTMALDG"] > 0 and 0 < rec["shared"] <= SMEM_LIMIT, rec
    assert rec["constexprs"]["O_TMA"] == (T % 128 == 0), rec["constexprs"]


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
D, L, dt = json.loads(sys.argv[1])
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
    launch_backward(qr, do, ke, ke, acc, ld, dke, dke, T, L, 0.1, 0.14)
assert len(found) == 1, found
print(json.dumps(_compile_launch(found[0])))
"""


@pytest.mark.parametrize("D, L, dt, max_spills", [(64, 16, "bfloat16", 0), (64, 4, "float16", 0),
                                                  (128, 64, "bfloat16", 30)])
def test_backward_kernel_compiles_for_sm90(D, L, dt, max_spills):
    """bwd_ws_kernel as launch_backward launches it, compiled for sm_90 at shapes rat/gluon routes to it beside the
    static gate's (D 128, L 16, T 128k): wgmma, TMA loads and the TMA reduction present, shared memory under the
    limit, no spills at head dim 64 and at most the gate baseline's 30 words (17 LDL + 13 STL) at 128."""
    import json

    pytest.importorskip("triton.experimental.gluon")
    from ratbench.bench.static_gate import SMEM_LIMIT

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([sys.executable, "-c", COMPILE_BWD, json.dumps([D, L, dt])], cwd=ROOT, env=env,
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


def _emulated_bwd_ws_kernel(qr, do, ke, ve, dqacc, ld, dke, dve, T, L, scale, scale2, stages=2):
    """bwd_ws_kernel's contract in torch (float32, dense): dK (scaled), dV of the chunk ends and dS K added to dke,
    dve and the dq accumulator, rows past T carried by lse +inf / Delta 0 as the kernel sees them."""
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
    dqacc.add_(ds @ k)


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
                            stages=2, qr=None):
    """fwd_ws_kernel's contract in torch (float32): o, lse (base 2) and, given qr, RoPE_c(q) into its rows < T (rows
    past T: zeros, finite as the kernel's)."""
    B, _, _, D = q.shape
    C = ke.shape[2]
    c = torch.arange(T) // L
    q32 = q.float().permute(0, 2, 1, 3)  # (B, H, T, D)
    if rope:
        cs, sn = cos[c][None, None], sin[c][None, None]
        q1, q2 = q32[..., : D // 2], q32[..., D // 2:]
        q32 = torch.cat([q1 * cs - q2 * sn, q2 * cs + q1 * sn], -1)
    qd = q32.to(q.dtype).float()  # the kernel's products read the 16-bit q_r
    kt, vv = (x.float().permute(0, 2, 1, 3) for x in (ktr, vt))
    s_inter = qd @ ke.float()[:, :, :C].transpose(-1, -2) * scale2
    s_inter = s_inter.masked_fill(torch.arange(C)[None, :] >= c[:, None], -float("inf"))
    s = torch.cat([s_inter, (q32 * kt).sum(-1, keepdim=True) * scale2], -1)
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
                                          (2000, 2000, 1, 4), (300, 75, 4, 64), (64, 4, 16, 64), (40, 5, 8, 1)])
def test_backward_work_items_cover_each_key_block_query_tile_pair_once(T, C, L, seg):
    """bwd_ws_kernel's work items: every (key block, 64-row query tile) pair in which a row sees a key of the block
    (c(t) > 128 kb for some row t of the tile) exactly once, no item across a multiple of seg tiles, segments from
    the last, key blocks in order within one."""
    from ratbench.impls.rat.gluon.backward import work_items

    items = work_items(T, C, L, seg, torch.device("cpu")).tolist()
    got = [(kb, t) for kb, lo, n in items for t in range(lo // 64, lo // 64 + n)]
    want = [(kb, t) for kb in range(-(-C // 128)) for t in range(-(-T // 64))
            if min(T - 1, 64 * t + 63) // L > 128 * kb]
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    assert all(lo % 64 == 0 and n > 0 and lo // (64 * seg) == (lo + 64 * n - 1) // (64 * seg) for _, lo, n in items)
    order = [(-(lo // (64 * seg)), kb) for kb, lo, _ in items]
    assert order == sorted(order)


def test_gluon_backward_route():
    """rat/gluon's own backward where it measured faster (NOTES.md b4): head dim 64 and L < 64 everywhere, L >= 64
    from T 16k; rat/triton's backward with L >= 64 below 16k at D 128; a config given by the caller is used as
    given."""
    from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, gluon_backward_used
    from ratbench.impls.rat.triton import DEFAULT_CONFIG

    assert GLUON_BWD_CONFIG.backward == "gluon_ws" and GLUON_BWD_CONFIG.forward == "gluon_ws"
    assert gluon_backward_used(4096, 16, 64) and gluon_backward_used(131072, 16, 128)
    assert gluon_backward_used(4096, 16, 128) and gluon_backward_used(32768, 16, 128)
    assert gluon_backward_used(32768, 64, 128) and gluon_backward_used(4096, 64, 64)
    assert not gluon_backward_used(4096, 64, 128) and not gluon_backward_used(8192, 128, 128)
    g = RATGluon()
    assert g._config(8192, torch.bfloat16, seq_len=131072, chunk_size=16, head_dim=128) is GLUON_BWD_CONFIG
    assert g._config(64, torch.bfloat16, seq_len=4096, chunk_size=64, head_dim=128) is GLUON_CONFIG
    assert g._config(256, torch.bfloat16, seq_len=4096, chunk_size=16, head_dim=128) is GLUON_BWD_CONFIG
    assert g._config(256, torch.bfloat16, seq_len=4096, chunk_size=16, head_dim=64) is GLUON_BWD_CONFIG
    assert g._config(256, torch.bfloat16) is GLUON_CONFIG  # shape unknown (decode): the forward's config
    assert RATGluon(DEFAULT_CONFIG)._config(8192, torch.bfloat16, seq_len=131072, chunk_size=16,
                                                head_dim=128) is DEFAULT_CONFIG
