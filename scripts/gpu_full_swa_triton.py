"""full/triton and swa/triton on one GPU: correctness (FlashAttention rule), then train / prefill /
decode timings beside SDPA (FlashAttention-2 and cuDNN backends) and compiled Flex SWA.

    OUT=/some/dir python scripts/gpu_full_swa_triton.py [--ts 4096,...,131072] [--window 1024]
        [--budget 480] [--override fwd_bn=64,...] [--variants "name:k=v,...;..."] [--dry-run]

Correctness (B = 1, H = 4, fresh random inputs, outputs over NaN-poisoned memory): err(x) = max|x -
ref64| (FlashAttention's rule) and ||x - ref64|| / ||ref64||, ref64 = the float64 reference
(impls/{full,swa}/reference.py on the upcast inputs). bf16/fp16: pass if err(ours) <= 2 * err(the
same reference math run in the low dtype) + 1e-6, for o, dq, dk, dv. fp32 (tf32x3 products): relative
error <= 1e-4. SDPA FA2's errors are recorded beside ours for full attention.

Timing: triton.testing.do_bench medians, bf16, H = 16, D = 128, 131072 tokens per batch (B = 131072 / T);
train = forward + autograd.grad(q, k, v); prefill = forward under no_grad. full: full/triton, full/sdpa-flash,
full/sdpa-cudnn; swa (window 1024): swa/triton, swa/flex. TF/s for full uses the causal convention of
docs/h200-anchors.md (fwd 2 B H T^2 D, train 3.5x fwd). Decode (bf16, H = 16, D = 128): one
step at position T, plain call and CUDA-graph replay, against the SDPA-backed peers' step; output checked
against a float32 softmax over the cache. Writes $OUT/full_swa_triton.json; prints a short table last.
--dry-run runs the whole script on the CPU interpreter with tiny shapes.
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

import impls
import impls.full.triton as FT
from impls.full.reference import attention, causal_mask
from impls.swa.reference import window_mask

DRY = _common.DRY_RUN
DEV = "cpu" if DRY else "cuda"
elapsed = _common.elapsed
grads_of = _common.grads_of


def env_info() -> dict:
    return _common.env_info(ROOT, DRY)


def check(family: str, T: int, D: int, dtype: torch.dtype, window: int | None, causal: bool = True) -> dict:
    H = 4 if not DRY else 1
    g = torch.Generator(device=DEV).manual_seed(T + D)
    q, k, v = (torch.randn(1, T, H, D, device=DEV, generator=g).to(dtype) for _ in range(3))
    do = torch.randn(1, T, H, D, device=DEV, generator=g).to(dtype)
    kw = {"window": window} if family == "swa" else {"causal": causal}
    if not DRY:
        _common.poison_free_memory(T * H * D * 16)
    ours = grads_of(lambda *a: impls.get(f"{family}/triton").forward(*a, **kw), (q, k, v), do)
    r64 = grads_of(lambda *a: impls.get(f"{family}/reference").forward(*a, **kw), [x.double() for x in (q, k, v)],
                   do.double())
    mask = window_mask(T, window, q.device) if family == "swa" else (causal_mask(T, q.device) if causal else None)
    low = grads_of(lambda *a: attention(*a, mask, D ** -0.5), (q, k, v), do)
    peer = None
    if family == "full" and dtype != torch.float32 and not DRY:
        try:
            peer = grads_of(lambda *a: impls.get("full/sdpa-flash").forward(*a, **kw), (q, k, v), do)
        except Exception as exc:  # noqa: BLE001
            peer = repr(exc)[:200]
    rows, ok_all = {}, True
    for i, name in enumerate(["o", "dq", "dk", "dv"]):
        d = r64[i]

        e_ours, e_low = _common.errors(ours[i], d), _common.errors(low[i], d)
        finite = bool(torch.isfinite(ours[i]).all())
        ok = _common.fa_rule_ok(ours[i], e_ours, e_low, dtype == torch.float32)
        ok_all &= ok
        rows[name] = {"ours_maxabs": e_ours[0], "ours_rel": e_ours[1], "lowref_maxabs": e_low[0],
                      "lowref_rel": e_low[1], "finite": finite, "pass": ok}
        if isinstance(peer, list):
            rows[name]["sdpa_flash_maxabs"], rows[name]["sdpa_flash_rel"] = _common.errors(peer[i], d)
    return {"family": family, "T": T, "H": H, "D": D, "dtype": str(dtype), "window": window, "causal": causal,
            "pass": ok_all, "tensors": rows, "peer_error": peer if isinstance(peer, str) else None}


def bench(fn, ms_hint: float = 10.0) -> float:
    return _common.bench(fn, ms_hint, dry=DRY)


def time_op(name: str, T: int, H: int, D: int, tokens: int, window: int | None) -> dict:
    B = max(1, tokens // T)
    impl = impls.get(name)
    dt = torch.float32 if DRY else torch.bfloat16
    g = torch.Generator(device=DEV).manual_seed(1)
    q, k, v = (torch.randn(B, T, H, D, device=DEV, generator=g).to(dt) for _ in range(3))
    kw = {"window": window} if name.startswith("swa/") else {"causal": True}
    prefill, train = _common.train_prefill_fns(lambda *a: impl.forward(*a, **kw), (q, k, v))
    row = {"impl": name, "T": T, "B": B, "H": H, "D": D, "window": window}
    try:
        row["prefill_ms"] = bench(prefill)
        if not DRY:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        hint = row["prefill_ms"] * 3.5 if row["prefill_ms"] == row["prefill_ms"] else 10
        row["train_ms"] = bench(train, hint)
        if not DRY:
            row["train_peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        if name.startswith("full/"):
            fwd_flop = 2 * B * H * T * T * D  # causal convention of the anchors
            row["prefill_tflops"] = fwd_flop / row["prefill_ms"] / 1e9
            row["train_tflops"] = 3.5 * fwd_flop / row["train_ms"] / 1e9
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        traceback.print_exc()
    return row


def decode_case(name: str, B: int, T: int, H: int, D: int, window: int | None, splits: int | None) -> dict:
    impl = impls.get(name)
    if name.endswith("/triton") and splits is not None:
        base = FT.INTERPRET_CONFIG if DRY else FT.DEFAULT_CONFIG
        impl = type(impl)(dataclasses.replace(base, step_splits=splits))
    dt = torch.float32 if DRY else torch.bfloat16
    kw = {"window": window} if name.startswith("swa/") else {}
    st = impl.init_state(B, H, D, T + 1, device=DEV, dtype=dt, **kw)
    g = torch.Generator(device=DEV).manual_seed(5)
    st.k.copy_(torch.randn(st.k.shape, device=DEV, generator=g))
    st.v.copy_(torch.randn(st.v.shape, device=DEV, generator=g))
    q, k, v = (torch.randn(B, H, D, device=DEV, generator=g).to(dt) for _ in range(3))
    row = {"impl": name, "B": B, "T": T, "window": window, "splits": splits}

    def step():
        st.pos = T  # writes slot T (full) / T % window (swa) with the same k, v: repeatable
        return impl.step(st, q, k, v)

    o = step()
    n = T + 1 if window is None else window  # every slot is in the window after the step (T >= window)
    logits = torch.einsum("bhd,bhjd->bhj", q.float(), st.k[:, :, :n].float()) * D ** -0.5
    ref = torch.einsum("bhj,bhjd->bhd", logits.softmax(-1), st.v[:, :, :n].float())
    row["err_rel"] = ((o.float() - ref).norm() / ref.norm()).item()
    row["step_ms"] = bench(step, 0.1)
    if not DRY:
        graph = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            step()
        torch.cuda.current_stream().wait_stream(s)
        try:
            with torch.cuda.graph(graph):
                st.pos = T
                impl.step(st, q, k, v)
            row["step_graph_ms"] = bench(graph.replay, 0.1)
        except Exception as exc:  # noqa: BLE001
            row["graph_error"] = repr(exc)[:200]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ts", default="4096,8192,16384,32768,65536,131072")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--budget", type=float, default=480.0, help="seconds; later stages are skipped past it")
    ap.add_argument("--skip-peers", action="store_true", help="time only our kernels")
    ap.add_argument("--override", default="", help="k=v,... applied to the bf16 tile config")
    ap.add_argument("--variants", default="fused:fused_dq=True,dkv_bn=64,dkv_bm=64,dkv_stages=3",
                    help="name:k=v,...;... extra bf16 configs of our kernels: checked once, then timed (train)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    H, D, TOKENS, W = 16, 128, 131072, args.window
    ts = [int(x) for x in args.ts.split(",") if x]
    checks = [("full", 4096, 128, torch.bfloat16, None, True), ("swa", 4096, 128, torch.bfloat16, W, True),
              ("full", 1000, 64, torch.bfloat16, None, True), ("swa", 3000, 64, torch.bfloat16, 100, True),
              ("full", 2048, 128, torch.float16, None, True), ("swa", 2048, 128, torch.float16, W, True),
              ("full", 1536, 128, torch.bfloat16, None, False), ("swa", 1000, 128, torch.bfloat16, 1, True),
              ("full", 1024, 128, torch.float32, None, True), ("swa", 1024, 128, torch.float32, 200, True)]
    decode = [("full", 64, 4096, None, None), ("full", 64, 16384, None, None), ("full", 64, 16384, None, 4),
              ("full", 1, 131072, None, None), ("swa", 64, 16384, W, None), ("swa", 1, 131072, W, None)]
    if DRY:
        H, D, TOKENS, W = 2, 32, 128, 16
        ts = [32, 64]
        checks = [("full", 40, 32, torch.float32, None, True), ("swa", 40, 32, torch.float32, 7, True)]
        decode = [("full", 2, 40, None, None), ("full", 2, 40, None, 2), ("swa", 2, 40, 16, None)]
    def parse_kv(text: str) -> dict:
        return {k: (v == "True" if v in ("True", "False") else int(v))
                for k, v in (item.split("=") for item in text.split(",") if item)}

    if args.override:
        FT.DEFAULT_CONFIG = dataclasses.replace(FT.DEFAULT_CONFIG, **parse_kv(args.override))
    variants = {}
    for item in args.variants.split(";"):
        if item:
            vname, kv = item.split(":", 1)
            variants[vname] = dataclasses.replace(FT.DEFAULT_CONFIG if not DRY else FT.INTERPRET_CONFIG,
                                                  **parse_kv(kv))
    out = _common.Results("full_swa_triton.json", {
        "env": env_info(), "config": dataclasses.asdict(FT.DEFAULT_CONFIG), "override": args.override,
        "checks": [], "timing": [], "decode": []})
    res = out.res
    print(json.dumps(res["env"]), flush=True)
    for fam, T, Dc, dt, win, causal in checks:
        if not _common.over_budget(args.budget, 0.3, f"check {fam} T={T}"):
            out.add("checks", _common.run_row(check, fam, T, Dc, dt, win, causal, family=fam, T=T))
    names = [("full/triton", None), ("swa/triton", W)]
    if not args.skip_peers and not DRY:
        names += [("full/sdpa-flash", None), ("full/sdpa-cudnn", None), ("swa/flex", W)]
    for name, win in names:
        for T in ts:
            if _common.over_budget(args.budget, 0.8, f"timing {name} T={T}"):
                continue
            r = time_op(name, T, H, D, TOKENS, win)
            if not DRY:
                torch.cuda.empty_cache()  # the inputs of the last case are freed by now
            out.add("timing", r)
    # variants of our kernels: one bf16 check per family (the FlashAttention rule), then train timing
    default_cfg = FT.DEFAULT_CONFIG
    for vname, vcfg in variants.items():
        FT.DEFAULT_CONFIG = vcfg  # impls.get(...) objects carry config None: _cfg picks DEFAULT_CONFIG
        if DRY:
            FT.INTERPRET_CONFIG, saved = vcfg, FT.INTERPRET_CONFIG
        try:
            for fam, T, Dc, dt, win, causal in checks[:1] + [c for c in checks if c[0] == "swa"][:1]:
                if elapsed() > args.budget * 0.85:
                    break
                r = _common.run_row(check, fam, T, Dc, dt, win, causal, family=fam, T=T)
                out.add("checks", {**r, "variant": vname}, save=False)
            for name, win in names[:2]:
                for T in ts:
                    if not _common.over_budget(args.budget, 0.85, f"variant {vname} {name} T={T}"):
                        out.add("timing", {**time_op(name, T, H, D, TOKENS, win), "impl": f"{name}[{vname}]"})
        finally:
            FT.DEFAULT_CONFIG = default_cfg
            if DRY:
                FT.INTERPRET_CONFIG = saved
    for fam, B, T, win, splits in decode:
        peers = [] if DRY or splits is not None else [f"{fam}/sdpa-flash" if fam == "full" else "swa/flex"]
        for name in [f"{fam}/triton"] + peers:
            if elapsed() > args.budget * 0.95:
                break
            out.add("decode", _common.run_row(decode_case, name, B, T, H, D, win, splits, impl=name, B=B, T=T))
    out.save()
    print("\n== correctness (max|err| vs float64; bf16/fp16 pass = ours <= 2x low-precision reference) ==")
    for c in res["checks"]:
        if "tensors" not in c:
            print(c)
            continue
        print(f"{c.get('variant', 'default')}: {c['family']} T={c['T']} D={c['D']} {c['dtype']} W={c['window']} causal={c['causal']} pass={c['pass']}: "
              + "  ".join(f"{n} {r['ours_maxabs']:.1e}/{r['lowref_maxabs']:.1e}" for n, r in c["tensors"].items()))
    print(f"\n== op timing, bf16, H={H} D={D}, {TOKENS} tokens, window {W} (median ms; TF/s causal convention) ==")
    print(f"{'impl':22s} {'T':>7s} {'B':>3s} {'train':>9s} {'prefill':>9s} {'train TF/s':>10s} {'peak GiB':>9s}")
    for r in res["timing"]:
        print(f"{r['impl']:22s} {r['T']:7d} {r['B']:3d} {r.get('train_ms', float('nan')):9.2f} "
              f"{r.get('prefill_ms', float('nan')):9.2f} {r.get('train_tflops', float('nan')):10.0f} "
              f"{r.get('train_peak_gib', float('nan')):9.2f} {r.get('error', '')[:50]}")
    by = {(r["impl"], r["T"]): r for r in res["timing"]}
    print("\n== ratios (peer ms / ours ms; >= 0.8 vs sdpa-flash and >= 1 vs swa/flex are the targets) ==")
    for T in ts:
        line = f"T={T:6d}"
        for ours, peer in (("full/triton", "full/sdpa-flash"), ("full/triton", "full/sdpa-cudnn"),
                           ("swa/triton", "swa/flex"),
                           *((f"full/triton[{v}]", "full/sdpa-flash") for v in variants),
                           *((f"swa/triton[{v}]", "swa/flex") for v in variants)):
            a, b = by.get((ours, T), {}), by.get((peer, T), {})
            for mode in ("train_ms", "prefill_ms"):
                if mode in a and mode in b:
                    tag = ours.split("[")[1][:-1] + ":" if "[" in ours else ""
                    line += f"  {tag}{peer.split('/')[1]} {mode[:-3]} {b[mode] / a[mode]:.2f}x"
        print(line)
    print("\n== decode step (ms) ==")
    for r in res["decode"]:
        print({k: (float(f"{v:.3g}") if isinstance(v, float) else v) for k, v in r.items()})
    print(f"total {elapsed():.0f} s")


if __name__ == "__main__":
    main()
