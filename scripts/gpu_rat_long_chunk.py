"""rat/triton with very long chunks (the "RNN" of the RAT paper: chunk_size = T) on one GPU: the plain
scans (one program walks a whole chunk: C * B * H sequential lanes) against the two-level scans of v7
(sub-blocks of S rows in parallel, a carry scan across them, each sub-block re-run from its carry;
impls/rat/kernels/long_scan.py). RATTritonConfig.long_scan forces either path.

    OUT=/some/dir python scripts/gpu_rat_long_chunk.py [--checks 4096,32768] [--tokens 131072,262144]
        [--ts 4096,8192,16384,32768,65536,131072] [--sweep 'lscan_s=64;lscan_s=256;...'] [--budget 480]
        [--dry-run]

1. Correctness, chunk_size = T, B = 1, H = 4, D = 128, bf16, both paths against the float64 reference
   (impls/rat/reference.py), the FlashAttention rule of scripts/gpu_rat_triton.py `check`:
   max|x - ref64| <= 2 * max|bf16 ref - ref64| + 1e-6 for o and every gradient. With one chunk
   y = vt, so dq and dk are exactly 0 in the reference (a softmax over one logit); ours carry the
   rounding of dS_self = p (dO.vt - Delta) (two sums of the same products in different orders): for
   those the bar is max|x| <= 1e-4 (bf16 rounds unit values to 4e-3). Also max|two-level - plain|.
2. Timing (triton do_bench medians), the RNN op: bf16, H = 16, D = 128, --tokens per batch,
   B = tokens / T, chunk_size = T; train = forward + autograd.grad(q, k, v, f), prefill = forward under
   no_grad; plain path, two-level path, and which one the automatic rule picks. Per-stage CUDA events
   (impls.rat.triton.STAGE_EVENTS) of one two-level train call give the scan stages' GB/s.
3. Two-level path at the largest T and token count with config overrides (--sweep: ';'-separated sets
   of k=v): sub-block length S, sub-blocks per program, warps, carry-scan block.
Bytes model (U = tokens * H * D * 2 bytes, one bf16 token tensor): prefill = scan + attention (q,
RoPE'd kt, vt in, o out: 4 U); scan = 5 U plain (k, v, f in; kt, vt out), 8 U two-level (k, v, f read
twice); train adds Delta/RoPE(q) (4 U), dq (5 U; the dK/dV kernel has no work with one chunk) and the
backward scan (10 U plain; 15 U two-level: q, f, kt, vt, dO read for the summaries, then q, k, v, f,
kt, vt, dO in and dk, dv, df out). Floor = bytes / 4.2 TB/s. Writes $OUT/rat_long_chunk.json; prints a
short table last. --dry-run runs everything on the CPU interpreter with tiny shapes (fp32).
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
import impls.rat.triton as RT
from impls.rat.reference import rat_attention
from impls.rat.triton import RATTriton, long_scan_used

DRY = _common.DRY_RUN
DEV = "cpu" if DRY else "cuda"
BW = 4.2e12  # bytes/s, H200 HBM3e (about 4.8 TB/s peak; ~4.2 TB/s reached by copies)
PATHS = {"plain": False, "two-level": True}
elapsed = _common.elapsed


def rand_inputs(B, T, H, D, dtype, seed):
    return _common.rat_inputs(B, T, H, D, dtype, seed, DEV)


def make_impl(long: bool, T: int, L: int, dtype: torch.dtype, **over) -> RATTriton:
    base = RT._cfg(None, -(-T // L), dtype)  # what rat/triton picks by itself (INTERPRET_CONFIG when dry)
    return RATTriton(dataclasses.replace(base, long_scan=long, **over))


def check(T: int, H: int, D: int, dtype: torch.dtype) -> dict:
    L = T
    q, k, v, f = rand_inputs(1, T, H, D, dtype, seed=T)
    do = torch.randn(1, T, H, D, device=DEV, generator=torch.Generator(device=DEV).manual_seed(T + 1)).to(dtype)
    ref = impls.get("rat/reference")
    if not DRY:
        _common.poison_free_memory(T * H * D * 16)
    r64 = _common.grads_of(lambda *a: ref.forward(*a, chunk_size=L), [x.double() for x in (q, k, v, f)], do.double())
    low = _common.grads_of(lambda *a: rat_attention(*a, L, True, D ** -0.5)[0], (q, k, v, f), do)
    out = {"T": T, "H": H, "D": D, "L": L, "dtype": str(dtype), "paths": {}}
    got = {}
    for path, long in PATHS.items():
        impl = make_impl(long, T, L, dtype)
        ours = _common.grads_of(lambda *a, impl=impl: impl.forward(*a, chunk_size=L), (q, k, v, f), do)
        got[path] = ours
        rows, ok_all = {}, True
        for name, a, b, d in zip(["o", "dq", "dk", "dv", "df"], ours, low, r64):
            e_ours, e_low = _common.errors(a, d), _common.errors(b, d)
            finite = bool(torch.isfinite(a).all())
            zero_ref = d.abs().max().item() == 0.0
            if zero_ref:  # dq, dk with one chunk: exactly 0 in the reference
                ok = finite and e_ours[0] <= 1e-4
            else:
                ok = _common.fa_rule_ok(a, e_ours, e_low, dtype == torch.float32)
            ok_all &= ok
            rows[name] = {"ours_maxabs": e_ours[0], "ours_rel": None if zero_ref else e_ours[1],
                          "bf16ref_maxabs": e_low[0], "zero_ref": zero_ref, "finite": finite, "pass": ok}
        out["paths"][path] = {"pass": ok_all, "tensors": rows}
    out["two_level_vs_plain_maxabs"] = {n: (a.double() - b.double()).abs().max().item()
                                        for n, a, b in zip(["o", "dq", "dk", "dv", "df"], got["two-level"], got["plain"])}
    out["pass"] = all(p["pass"] for p in out["paths"].values())
    return out


def bytes_model(tokens: int, H: int, D: int, two_level: bool, elem: int = 2) -> dict:
    U = tokens * H * D * elem
    scan, bscan = (8, 15) if two_level else (5, 10)
    prefill = (scan + 4) * U
    return {"U": U, "prefill": prefill, "train": prefill + (4 + 5 + bscan) * U, "scan": scan * U,
            "bwd_scan": bscan * U}


def time_rnn(T: int, tokens: int, H: int, D: int, long: bool, dtype: torch.dtype, **over) -> dict:
    B = max(1, tokens // T)
    L = T
    impl = make_impl(long, T, L, dtype, **over)
    q, k, v, f = rand_inputs(B, T, H, D, dtype, seed=1)
    prefill, train = _common.train_prefill_fns(lambda *a: impl.forward(*a, chunk_size=L), (q, k, v, f))
    row = {"T": T, "B": B, "tokens": B * T, "path": "two-level" if long else "plain"}
    try:
        row["prefill_ms"] = _common.bench(prefill, dry=DRY)
        hint = row["prefill_ms"] * 4 if row["prefill_ms"] == row["prefill_ms"] else 10.0
        row["train_ms"] = _common.bench(train, hint, dry=DRY)
        bm = bytes_model(B * T, H, D, long, q.element_size())
        for mode in ("prefill", "train"):
            row[f"{mode}_floor_ms"] = bm[mode] / BW * 1e3
            row[f"{mode}_gbps"] = bm[mode] / (row[f"{mode}_ms"] * 1e-3) / 1e9
        if long and not DRY:  # per-stage times of the train call (median of 5 after the bench's warm-up)
            row["stages_ms"] = _common.stage_medians(train, 5)
            st = row["stages_ms"]
            fwd_scan = sum(st.get(n, 0.0) for n in ("scan_sum", "scan_carry", "scan"))
            bwd_scan = sum(st.get(n, 0.0) for n in ("bwd_scan_sum", "bwd_scan_carry", "bwd_scan"))
            row["scan_gbps"] = bm["scan"] / (fwd_scan * 1e-3) / 1e9 if fwd_scan else None
            row["bwd_scan_gbps"] = bm["bwd_scan"] / (bwd_scan * 1e-3) / 1e9 if bwd_scan else None
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        traceback.print_exc()
    finally:
        RT.STAGE_EVENTS = None
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checks", default="4096,32768", help="T of the chunk_size = T correctness cases")
    ap.add_argument("--tokens", default="131072,262144", help="tokens per batch of the timings")
    ap.add_argument("--ts", default="4096,8192,16384,32768,65536,131072")
    ap.add_argument("--sweep", default="lscan_s=64;lscan_s=256;lscan_nb=8;lscan_bnb=4;lscan_bnb=16,bscan_warps=8;"
                    "lscan_cb=32", help="override sets for the two-level path at the largest T")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds; later stages are skipped past it")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    ints = lambda s: [int(x) for x in s.split(",") if x]
    H, D, dtype = 16, 128, torch.bfloat16
    checks, tokens_list, ts = ints(args.checks), ints(args.tokens), ints(args.ts)
    sweep = [{k: int(v) for k, v in (kv.split("=") for kv in item.split(","))} for item in args.sweep.split(";") if item]
    check_h = 4
    if DRY:  # interpreter: fp32 (bf16 is garbage there), tiny shapes, 16-row sub-blocks
        H, D, dtype, check_h = 2, 32, torch.float32, 1
        checks, tokens_list, ts, sweep = [48], [64], [32, 64], [{"lscan_s": 32}, {"lscan_bnb": 4, "bscan_warps": 8}]
    out = _common.Results("rat_long_chunk.json", {
        "env": _common.env_info(ROOT, DRY, sm_count=True), "H": H, "D": D, "dtype": str(dtype),
        "config": dataclasses.asdict(RT.DEFAULT_CONFIG), "bandwidth_assumed": BW, "checks": [], "timing": [],
        "sweep": []})
    res = out.res
    print(json.dumps(res["env"]), flush=True)
    for T in checks:
        if not _common.over_budget(args.budget, 0.3, f"check T={T}"):
            out.add("checks", _common.run_row(check, T, check_h, D, dtype, T=T))
    auto = dataclasses.replace(RT._cfg(None, 1, dtype), long_scan=None)
    for tokens in tokens_list:
        for T in ts:
            if T > tokens:
                continue
            for path, long in PATHS.items():
                if _common.over_budget(args.budget, 0.8, f"timing tokens={tokens} T={T} {path}"):
                    continue
                r = time_rnn(T, tokens, H, D, long, dtype)
                if not DRY:
                    torch.cuda.empty_cache()
                r["auto_path"] = "two-level" if long_scan_used(auto, r["B"], H, T, T) else "plain"
                out.add("timing", r)
    T, tokens = max(ts), max(tokens_list)
    for over in sweep:
        if not _common.over_budget(args.budget, 0.9, str(over)):
            out.add("sweep", {**time_rnn(T, tokens, H, D, True, dtype, **over), "overrides": over})
    out.save()
    # short table
    print("\n== correctness, chunk_size = T (max|err| vs float64 / bf16 reference's; dq, dk: max|x|) ==")
    for c in res["checks"]:
        if "paths" not in c:
            print(c)
            continue
        for path, p in c["paths"].items():
            print(f"T={c['T']} {path:9s} pass={p['pass']}: " + "  ".join(
                f"{n} {r['ours_maxabs']:.2e}/{r['bf16ref_maxabs']:.2e}" for n, r in p["tensors"].items()))
        print(f"T={c['T']} max|two-level - plain|: " + "  ".join(
            f"{n} {x:.1e}" for n, x in c["two_level_vs_plain_maxabs"].items()))
    print(f"\n== RNN op (chunk_size = T), {dtype}, H={H} D={D}: median ms (floor = bytes model / 4.2 TB/s) ==")
    print(f"{'tokens':>7s} {'T':>7s} {'B':>3s} {'auto':>9s} | {'plain train':>11s} {'prefill':>8s} | "
          f"{'2-lvl train':>11s} {'prefill':>8s} {'floor':>6s} {'%floor':>6s} | {'speed-up':>8s}")
    rows = {(r["tokens"], r["T"], r["path"]): r for r in res["timing"]}
    nan = float("nan")
    for (tok, T, path), r in sorted(rows.items()):
        if path != "two-level":
            continue
        p = rows.get((tok, T, "plain"), {})
        tr, pr = r.get("train_ms", nan), r.get("prefill_ms", nan)
        print(f"{tok:7d} {T:7d} {r['B']:3d} {r['auto_path']:>9s} | {p.get('train_ms', nan):11.2f} "
              f"{p.get('prefill_ms', nan):8.2f} | {tr:11.2f} {pr:8.2f} {r['train_floor_ms']:6.2f} "
              f"{100 * r['train_floor_ms'] / tr:6.0f} | {p.get('train_ms', nan) / tr:7.1f}x "
              f"{r.get('error', p.get('error', ''))[:40]}")
    print(f"\n== two-level at T={T}, {tokens} tokens: defaults (above) against overrides ==")
    for r in res["sweep"]:
        print(f"{r['overrides']}: train {r.get('train_ms', nan):.2f} prefill {r.get('prefill_ms', nan):.2f} "
              f"stages {r.get('stages_ms')} {r.get('error', '')[:60]}")
    print(f"total {elapsed():.0f} s")


if __name__ == "__main__":
    main()
