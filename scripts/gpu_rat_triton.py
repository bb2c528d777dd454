"""rat/triton on one GPU: correctness (FlashAttention rule), then train / prefill / decode timings beside
rat/flex (the authors' formulation) and SDPA over the same chunk cache.

    OUT=/some/dir python scripts/gpu_rat_triton.py [--checks T:D:L[:dtype],...] [--ts 4096,...,131072]
        [--flex-ts 4096,131072] [--budget 420] [--dry-run]

Correctness (bf16, H = 4, D = 128, L = 16, B = 1, fresh random inputs, outputs over NaN-poisoned memory):
err(x) = max|x - ref64| (FlashAttention's rule) and ||x - ref64|| / ||ref64||, with ref64 the float64
reference (impls/rat/reference.py on the upcast inputs). Pass if err(rat/triton) <= 2 * err(bf16 ref) +
1e-6 for o and every gradient, where "bf16 ref" is the same reference math run in bf16 (rat_attention on
bf16 tensors; fp16 checks likewise in fp16). fp32 checks (tf32x3 products) pass at a relative L2 error
<= 1e-4. The reference run through its own float32 upcast is reported too. ``--ts 1048576`` trains
one 1M-token sequence (B = 1) and reports its peak memory.

Timing: triton.testing.do_bench medians, bf16, H = 16, D = 128, L = 16, 131072 tokens per batch.
train = forward + autograd.grad(q, k, v, f); prefill = forward under no_grad. Decode: one step at
position T (a new chunk: c + 1 = T/16 + 1 slots), plain call and CUDA-graph replay, against SDPA alone
over the same slots; output checked against a float32 softmax over the cache. Writes
$OUT/rat_triton.json; prints a short table last. --dry-run runs the whole script on the CPU
interpreter with tiny shapes (to check it costs no GPU time).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common  # scripts/_gpu_common.py (on sys.path); first: --dry-run picks the interpreter
import torch
import torch.nn.functional as F

import impls
from impls.rat.reference import rat_attention
from impls.rat.triton import DEFAULT_CONFIG, RATTriton, rope_tables
from impls.rope import apply_rope

DRY = _common.DRY_RUN
DEV = "cpu" if DRY else "cuda"
elapsed = _common.elapsed
grads_of = _common.grads_of


def env_info() -> dict:
    return _common.env_info(ROOT, DRY, sm_count=True)


def rand_inputs(B, T, H, D, dtype, seed):
    return _common.rat_inputs(B, T, H, D, dtype, seed, DEV)


def check(T: int, H: int, D: int, L: int, dtype=torch.bfloat16, impl: RATTriton | None = None) -> dict:
    """FlashAttention-rule check of ``impl`` (default: rat/triton with its own configs) against the float64
    reference: o and every gradient, B = 1."""
    q, k, v, f = rand_inputs(1, T, H, D, dtype, seed=T)
    do = torch.randn(1, T, H, D, device=DEV, generator=torch.Generator(device=DEV).manual_seed(T + 1)).to(dtype)
    impl = impl or RATTriton()
    ref = impls.get("rat/reference")
    if not DRY:
        _common.poison_free_memory(T * H * D * 16)
    ours = grads_of(lambda *a: impl.forward(*a, chunk_size=L), (q, k, v, f), do)
    r64 = grads_of(lambda *a: ref.forward(*a, chunk_size=L), [x.double() for x in (q, k, v, f)], do.double())
    low = grads_of(lambda *a: rat_attention(*a, L, True, D ** -0.5)[0], (q, k, v, f), do)
    r32 = grads_of(lambda *a: ref.forward(*a, chunk_size=L), (q, k, v, f), do)
    rows = {}
    ok_all = True
    for name, a, b, c, d in zip(["o", "dq", "dk", "dv", "df"], ours, low, r32, r64):
        e_ours, e_low, e_r32 = _common.errors(a, d), _common.errors(b, d), _common.errors(c, d)
        finite = bool(torch.isfinite(a).all())
        ok = _common.fa_rule_ok(a, e_ours, e_low, dtype == torch.float32)
        ok_all &= ok
        rows[name] = {"ours_maxabs": e_ours[0], "ours_rel": e_ours[1], "bf16ref_maxabs": e_low[0],
                      "bf16ref_rel": e_low[1], "ref_fp32_maxabs": e_r32[0], "ref_fp32_rel": e_r32[1],
                      "finite": finite, "pass": ok}
    del ours, r64, low, r32
    return {"T": T, "H": H, "D": D, "L": L, "dtype": str(dtype), "pass": ok_all, "tensors": rows}


def bench(fn, ms_hint: float = 10.0) -> float:
    return _common.bench(fn, ms_hint, dry=DRY)


def time_op(name: str, T: int, H: int, D: int, L: int, tokens: int) -> dict:
    B = max(1, tokens // T)
    impl = impls.get(name)
    q, k, v, f = rand_inputs(B, T, H, D, torch.bfloat16, seed=1)
    prefill, train = _common.train_prefill_fns(lambda *a: impl.forward(*a, chunk_size=L), (q, k, v, f))
    row = {"impl": name, "T": T, "B": B, "H": H, "D": D, "L": L}
    try:
        row["prefill_ms"] = bench(prefill)
        if not DRY:
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        row["train_ms"] = bench(train, row["prefill_ms"] * 4 if row["prefill_ms"] == row["prefill_ms"] else 10)
        if not DRY:
            row["train_peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        traceback.print_exc()
    return row


def decode_case(B: int, T: int, H: int, D: int, L: int, splits: int | None) -> dict:
    cfg = dataclasses.replace(DEFAULT_CONFIG, step_splits=splits) if not DRY else None
    impl = RATTriton(cfg)
    dt = torch.bfloat16 if not DRY else torch.float32
    st = impl.init_state(B, H, D, T + L, device=DEV, dtype=dt, chunk_size=L)
    g = torch.Generator(device=DEV).manual_seed(5)
    st.k_cache.copy_(torch.randn(st.k_cache.shape, device=DEV, generator=g))
    st.v_cache.copy_(torch.randn(st.v_cache.shape, device=DEV, generator=g))
    st.kt.normal_()
    st.vt.normal_()
    q, k, v = (torch.randn(B, H, D, device=DEV, generator=g).to(dt) for _ in range(3))
    f = torch.sigmoid(torch.randn(B, H, D, device=DEV, generator=g)).to(dt)
    c = T // L
    row = {"B": B, "T": T, "slots": c + 1, "splits": splits}

    def step():
        st.pos = T  # l == 0: the step resets the running state, so repeating it is idempotent
        return impl.step(st, q, k, v, f)

    o = step()
    # check: float32 softmax over slots 0..c of the cache the step just wrote
    cos, sin = rope_tables(c + 1, D, q.device)
    cs, sn = torch.cat([cos[c], cos[c]]), torch.cat([sin[c], sin[c]])
    qr = apply_rope(q.float(), cs, sn)
    kr = apply_rope(((1 - f.float()) * k.float()), cs, sn)
    logits = torch.einsum("bhd,bhjd->bhj", qr, st.k_cache[:, :, : c + 1].float()) * D ** -0.5
    ref = torch.einsum("bhj,bhjd->bhd", logits.softmax(-1), st.v_cache[:, :, : c + 1].float())
    row["err_rel"] = ((o.float() - ref).norm() / ref.norm()).item()
    row["slot_err"] = ((st.k_cache[:, :, c].float() - kr).abs().max()).item()
    row["step_ms"] = bench(step, 0.1)
    if not DRY:
        graph = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            step()
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(graph):
            st.pos = T
            impl.step(st, q, k, v, f)
        row["step_graph_ms"] = bench(graph.replay, 0.1)
        qs = q[:, :, None]
        kc, vc = st.k_cache[:, :, : c + 1], st.v_cache[:, :, : c + 1]
        row["sdpa_ms"] = bench(lambda: F.scaled_dot_product_attention(qs, kc, vc), 0.1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", default="4096:128:16,32768:128:16,4096:64:64,2048:128:1",
                    help="T:D:L[:dtype] correctness cases (B = 1, H = 4; dtype bf16 (default), fp16 or fp32)")
    ap.add_argument("--ts", default="4096,8192,16384,32768,65536,131072")
    ap.add_argument("--flex-ts", default="4096,8192,16384,32768,65536,131072")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds; later stages are skipped past it")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--override", default="", help="k=v,... applied to the auto-chosen tile configs")
    ap.add_argument("--decode", default="64:16384:0,64:16384:4,1:131072:0,1:131072:1",
                    help="B:T:splits decode cases (splits 0 = automatic)")
    args = ap.parse_args()
    H, D, L, TOKENS = 16, 128, 16, 131072
    ints = lambda s: [int(x) for x in s.split(",") if x]
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    checks = []
    for item in (x for x in args.checks.split(",") if x):
        parts = item.split(":")
        checks.append((int(parts[0]), int(parts[1]), int(parts[2]), dtypes[parts[3] if len(parts) > 3 else "bf16"]))
    ts, flex_ts = ints(args.ts), ints(args.flex_ts)
    if DRY:
        H, D, TOKENS = 2, 32, 128
        checks, ts, flex_ts = [(64, 32, 16, torch.float32), (32, 32, 1, torch.float32)], [32, 64], []
    if args.override:
        import impls.rat.triton as RT
        kv = {}
        for item in args.override.split(","):
            key, val = item.split("=")
            kv[key] = {"True": True, "False": False}[val] if val in ("True", "False") else (
                int(val) if val.lstrip("-").isdigit() else val)  # e.g. backward=plain
        RT.DEFAULT_CONFIG = dataclasses.replace(RT.DEFAULT_CONFIG, **kv)
        short = {k: v for k, v in kv.items() if not k.startswith("fwd_")}
        RT.SHORT_CONFIG = dataclasses.replace(RT.SHORT_CONFIG, **short)
    import impls.rat.triton as RT
    out = _common.Results("rat_triton.json", {
        "env": env_info(), "config": dataclasses.asdict(RT.DEFAULT_CONFIG),
        "short_config": dataclasses.asdict(RT.SHORT_CONFIG), "override": args.override,
        "checks": [], "timing": [], "decode": []})
    res = out.res
    print(json.dumps(res["env"]), flush=True)
    for T, Dc, Lc, dt in checks:
        if not _common.over_budget(args.budget, 0.4, f"check T={T}"):
            out.add("checks", _common.run_row(check, T, 4 if not DRY else 1, Dc, Lc, dt, T=T))
    for T in ts:
        if not _common.over_budget(args.budget, 0.75, f"timing T={T}"):
            out.add("timing", time_op("rat/triton", T, H, D, L, TOKENS))
    for case in (x for x in args.decode.split(",") if x):
        B, T, splits = (int(x) for x in case.split(":"))
        splits = splits or None
        if DRY:
            B, T = 2, 64
        if elapsed() > args.budget * 0.85:
            break
        out.add("decode", _common.run_row(decode_case, B, T, H, D, L, splits, B=B, T=T, splits=splits))
    for T in flex_ts:
        if not _common.over_budget(args.budget, 0.8, f"flex T={T}"):
            out.add("timing", time_op("rat/flex", T, H, D, L, TOKENS))
    out.save()
    # short table
    print("\n== correctness (max|err| vs float64; pass = ours <= 2x bf16 reference) ==")
    for c in res["checks"]:
        if "tensors" not in c:
            print(c)
            continue
        print(f"T={c['T']} D={c['D']} L={c['L']} pass={c['pass']}: " + "  ".join(
            f"{n} {r['ours_maxabs']:.2e}/{r['bf16ref_maxabs']:.2e} (rel {r['ours_rel']:.1e})" for n, r in c["tensors"].items()))
    print("\n== op timing, bf16, H=16 D=128 L=16, 131072 tokens (median ms) ==")
    print(f"{'impl':12s} {'T':>7s} {'B':>3s} {'train':>9s} {'prefill':>9s} {'peak GiB':>9s}")
    for r in res["timing"]:
        print(f"{r['impl']:12s} {r['T']:7d} {r['B']:3d} {r.get('train_ms', float('nan')):9.2f} "
              f"{r.get('prefill_ms', float('nan')):9.2f} {r.get('train_peak_gib', float('nan')):9.2f} {r.get('error', '')[:60]}")
    print("\n== decode step (ms) ==")
    for r in res["decode"]:
        print({k: (float(f'{v:.3g}') if isinstance(v, float) else v) for k, v in r.items()})
    print(f"total {elapsed():.0f} s")


if __name__ == "__main__":
    main()
