"""Layer- and model-level speed on one GPU, the paper's protocol (docs/rat-spec.md): run on the H200.

    OUT=/tmp/out python scripts/gpu_layers.py [--compile off|on|both] [--skip-model] [--skip-layer] [--budget-s 170]

1. Availability of every implementation it would use, with the reason when one cannot run.
2. Correctness first (a wrong implementation is never timed): each layer with implementation X against
   the same layer (same weights) with the family's reference, bf16 autocast, B=2, T=512: relative error
   of the mixer output; and the layer's prefill(496 tokens) + 16 steps against its own forward.
3. Layer level (Dm 2048, H 16, D 128, 262,144 tokens per batch, bf16 autocast with float32 weights,
   triton.testing.do_bench median), T in {4096, 32768, 131072}:
   train = forward + out.mean().backward() (x requires grad, as for a layer inside a network);
   prefill = forward under no_grad writing the decode cache.
   Attention with full/sdpa-flash (the paper's baseline) and full/sdpa-cudnn; RAT (L = 16) with
   rat/triton and rat/flex (the authors' formulation). --compile on|both times torch.compile'd layers
   (the paper's protocol; the compiler fuses the layer's glue, the implementation stays opaque).
4. Layer-level decode ("gen", one step at position T-1 after a real prefill of T - 1 random tokens;
   bf16 weights, no autocast), eager and as a CUDA graph replay, (T, B) in {(4096, 64), (4096, 512),
   (16384, 512)}. The callables are models.cases.layer_callable, the same the harness can use.
5. Model level: the 1.3B model (bf16, random weights) generating --new tokens after a --prompt token
   prefill at batch --batch (or, with --max-batch LIMIT, at the largest batch that fits, searched by
   models.max_generate_batch for a cache of prompt + --new-for-max-batch tokens; slow), per mixer (attention, RAT, RAT-SWA, attention-SWA), CUDA graphs where a
   decode step recurs (RAT: within a chunk); for graph runs the greedy tokens are checked equal to an
   small-batch eager run (models.throughput). Fewer steps than the paper's 1024: throughput here is not
   Table 1's number; ``run_bench.py --preset paper`` measures Table 1 itself (bench/levels.py).

Prints a short table last and writes everything to $OUT/gpu_layers.json. Expected runtime on an H200:
about 2-3 minutes with eager layers; --compile adds the compile time of every shape (raise --budget-s).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import impls  # noqa: E402
from bench.levels import layer_cost  # noqa: E402
from bench.sweep import Case  # noqa: E402
from models import LMConfig  # noqa: E402
from models.cases import LayerCase, graph_callable, layer_callable  # noqa: E402
from models.checks import check_layer as _check_layer  # noqa: E402
from models.lm import is_oom  # noqa: E402
from models.throughput import measure_generation  # noqa: E402

DM, H, D, L = 2048, 16, 128, 16
TOKENS = 262144
BF16 = torch.bfloat16
DEV = "cuda"

ATTN_IMPLS = ["full/sdpa-flash", "full/sdpa-cudnn"]
RAT_IMPLS = ["rat/triton", "rat/flex"]
SWA_PREFERENCE = ["swa/fa4", "swa/flash-attn", "swa/flex"]
REF = {"attention": "full/reference", "rat": "rat/reference"}
GEN_CASES = [(4096, 64), (4096, 512), (16384, 512)]
CHECK_T = 512
GEN_FILL = "prefill"
MODEL_SIZES: dict = {}

T0_START = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - T0_START


def log(msg: str) -> None:
    print(f"[{elapsed():6.1f}s] {msg}", flush=True)


def free() -> None:
    gc.collect()
    if DEV == "cuda":
        torch.cuda.empty_cache()


def reset_peak() -> None:
    if DEV == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if DEV == "cuda" else None


def impl_reason(name: str, *, decode: bool = False) -> str | None:
    """None if ``name`` is registered, importable and runs on CUDA in bf16 at head dim 128."""
    try:
        impl = impls.get(name)
    except (impls.UnavailableError, ValueError) as exc:
        return str(exc)
    return impl.unsupported_reason(mode="decode" if decode else "train", device=DEV, dtype=BF16, head_dim=D)


def do_bench(fn) -> float:
    if DEV != "cuda":  # --smoke on the CPU: a wall-clock median of 3 (checks the code paths, not speed)
        fn()
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
        return sorted(ts)[1]
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))


# ----- 2. correctness (models.checks.check_layer, the harness's layer check) -----------------------
def check_layer(kind: str, impl: str) -> dict:
    row: dict = {"kind": kind, "impl": impl}
    try:
        c = _check_layer(kind, impl, mode="decode", d_model=DM, heads=H, head_dim=D, chunk_size=L, batch=2,
                         seq_len=CHECK_T, device=DEV, dtype=BF16)
        row.update(rel_err_vs_reference=c.rel_err, rel_err_decode_vs_forward=c.rel_err_decode, ok=c.ok)
    except Exception as exc:  # noqa: BLE001 - report, never time it
        row["ok"] = False
        row["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    free()
    return row


# ----- 3. layer train / prefill -------------------------------------------------------------------
def layer_case(kind: str, impl: str, mode: str, T: int, B: int, **kw) -> LayerCase:
    return LayerCase(kind, impl, mode, B, T, d_model=DM, heads=H, head_dim=D, chunk_size=L, dtype=BF16, device=DEV,
                     **kw)


def layer_flops(kind: str, T: int, B: int, mode: str) -> float:
    """FLOPs of one layer call, the harness's layer cost model: projections (models/costs.py, 3 x in
    train) + the op (bench/costs.py, 3.5 x in train)."""
    case = Case(impl=REF[kind], mode=mode, batch=B, seq_len=T, heads=H, head_dim=D, dtype="bfloat16", device=DEV,
                chunk_size=L if kind == "rat" else None, level="layer", kind=kind)
    return layer_cost(case).flops


def time_layer(kind: str, impl: str, T: int, compiled: bool) -> dict:
    B = TOKENS // T
    row: dict = {"kind": kind, "impl": impl, "T": T, "B": B, "compiled": compiled}
    for mode in ("train", "prefill"):
        if mode == "prefill" and not impls.get(impl).supports_decode:
            row["prefill_ms"] = None
            row["prefill_note"] = "no decode support"
            continue
        lc = None
        try:
            free()
            reset_peak()
            lc = layer_callable(layer_case(kind, impl, mode, T, B, compile=compiled))
            row[f"{mode}_ms"] = do_bench(lc.fn)
            row[f"{mode}_peak_gib"] = peak_gib()
            row[f"{mode}_tflops"] = layer_flops(kind, T, B, mode) / (row[f"{mode}_ms"] * 1e-3) / 1e12
        except Exception as exc:  # noqa: BLE001
            row[f"{mode}_ms"] = None
            row[f"{mode}_note"] = "OOM" if is_oom(exc) else f"{type(exc).__name__}: {str(exc)[:300]}"
            if not is_oom(exc):
                traceback.print_exc()
        finally:
            lc = None  # noqa: F841
            free()
    log(f"layer {kind:9s} {impl:16s} T={T:6d} B={B:3d} compiled={compiled}: "
        f"train {row.get('train_ms')} ms, prefill {row.get('prefill_ms')} ms")
    return row


# ----- 4. layer decode step -----------------------------------------------------------------------
def time_gen(kind: str, impl: str, T: int, B: int) -> dict:
    """One decode step at position T - 1 after a real prefill of T - 1 tokens, eager and replayed as
    a CUDA graph (the same layer and cache)."""
    row: dict = {"kind": kind, "impl": impl, "T": T, "B": B}
    lc = None
    try:
        free()
        t = time.perf_counter()
        lc = layer_callable(layer_case(kind, impl, "decode", T, B, fill=GEN_FILL))
        row["fill_s"] = time.perf_counter() - t
        row["cache_gib"] = lc.cache_bytes / 2**30
        row["eager_ms"] = do_bench(lc.fn)
        try:
            row["graph_ms"] = do_bench(graph_callable(lc.fn))
        except Exception as exc:  # noqa: BLE001
            row["graph_ms"] = None
            row["graph_note"] = f"capture failed: {type(exc).__name__}: {str(exc)[:300]}"
            if DEV == "cuda":
                torch.cuda.synchronize()
    except Exception as exc:  # noqa: BLE001
        row["eager_ms"] = None
        row["note"] = "OOM" if is_oom(exc) else f"{type(exc).__name__}: {str(exc)[:300]}"
        if not is_oom(exc):
            traceback.print_exc()
    lc = None  # noqa: F841
    free()
    log(f"gen   {kind:9s} {impl:16s} T={T:6d} B={B:3d}: eager {row.get('eager_ms')} ms, graph {row.get('graph_ms')} ms")
    return row


# ----- 5. model generation ------------------------------------------------------------------------
def time_model(mixer: str, impl_map: dict, args) -> dict:
    """models.throughput.measure_generation (the harness's model level): warm-up and graph check at a small
    batch, then one generate at --batch (or the largest batch that fits, with --max-batch LIMIT)."""
    row: dict = {"mixer": mixer, "impls": impl_map, "batch": args.batch, "prompt": args.prompt, "new": args.new}
    try:
        free()
        cfg = LMConfig(mixer=mixer, impls=impl_map, window=args.window, **MODEL_SIZES)
        g = measure_generation(cfg, device=DEV, dtype=BF16, prompt_len=args.prompt, n_new=args.new,
                               batch=None if args.max_batch else args.batch, max_batch_limit=args.max_batch or 8192,
                               prefill_batch=args.prefill_batch, graphs="auto")
        row.update({k: v for k, v in g.to_dict().items() if k not in ("mixer", "impls", "n_new", "prompt_len")})
        row["cache_gib"] = g.cache_bytes / 2**30
        row["peak_gib"] = None if g.peak_bytes is None else g.peak_bytes / 2**30
    except Exception as exc:  # noqa: BLE001
        row["note"] = "OOM" if is_oom(exc) else f"{type(exc).__name__}: {str(exc)[:300]}"
        if not is_oom(exc):
            traceback.print_exc()
    free()
    log(f"model {mixer:13s} {impl_map}: {row.get('tokens_per_s')} tok/s ({row.get('decode_mode')}; "
        f"{row.get('graph_note') or row.get('note')})")
    return row


def smoke(args) -> None:
    """Toy sizes on the CPU: every code path of this script, with CPU implementations."""
    global DM, H, D, L, TOKENS, DEV, ATTN_IMPLS, RAT_IMPLS, SWA_PREFERENCE, GEN_CASES, CHECK_T
    DM, H, D, L, TOKENS, DEV, CHECK_T = 64, 4, 16, 4, 128, "cpu", 32
    ATTN_IMPLS, RAT_IMPLS, SWA_PREFERENCE = ["full/sdpa-math", "full/sdpa-cudnn"], ["rat/flex", "rat/reference"], \
        ["swa/fa4", "swa/reference"]
    GEN_CASES = [(32, 2)]
    MODEL_SIZES.update(vocab_size=100, d_model=DM, n_layers=2, heads=H, head_dim=D, chunk_size=L)
    args.T, args.batch, args.prompt, args.new, args.prefill_batch = "32,64", 2, 12, 6, 1


def speedups(rows: list[dict]) -> list[dict]:
    """attention time / RAT time for every (RAT impl, attention impl, T, compiled) measured in both."""
    out = []
    for r in rows:
        if r["kind"] != "rat":
            continue
        for a in rows:
            if a["kind"] == "attention" and a["T"] == r["T"] and a["compiled"] == r["compiled"]:
                ratio = {m: (a[f"{m}_ms"] / r[f"{m}_ms"] if a.get(f"{m}_ms") and r.get(f"{m}_ms") else None)
                         for m in ("train", "prefill")}
                out.append({"rat": r["impl"], "attention": a["impl"], "T": r["T"], "compiled": r["compiled"], **ratio})
    return out


def fmt(v, spec=".1f") -> str:
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compile", choices=("off", "on", "both"), default="off",
                    help="layer level: eager (off), torch.compile'd (on) or both")
    ap.add_argument("--skip-layer", action="store_true")
    ap.add_argument("--skip-gen", action="store_true")
    ap.add_argument("--gen-fill", choices=("prefill", "none"), default="prefill",
                    help="layer decode: fill the cache by real prefills (default) or only set the position")
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--T", default="4096,32768,131072", help="layer-level sequence lengths")
    ap.add_argument("--batch", type=int, default=64, help="model-level batch")
    ap.add_argument("--prompt", type=int, default=3072)
    ap.add_argument("--new", type=int, default=64, help="tokens generated per sequence (paper: 1024)")
    ap.add_argument("--prefill-batch", type=int, default=16, help="sequences per prefill pass")
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--models", default="attention,rat,rat-swa,attention-swa")
    ap.add_argument("--max-batch", type=int, default=0, metavar="LIMIT",
                    help="search each model's max generate batch up to LIMIT (bisection on OOM; slow) and use it")
    ap.add_argument("--new-for-max-batch", type=int, default=1024,
                    help="cache length for the max-batch probe: prompt + this many new tokens (paper: 1024)")
    ap.add_argument("--budget-s", type=float, default=170.0, help="skip remaining cases after this many seconds")
    ap.add_argument("--smoke", action="store_true",
                    help="run every code path on the CPU at toy sizes (checks the script, measures nothing useful)")
    args = ap.parse_args()
    global GEN_FILL
    GEN_FILL = args.gen_fill
    if args.smoke:
        smoke(args)
    elif not torch.cuda.is_available():
        raise SystemExit("gpu_layers.py needs a CUDA GPU (--smoke runs its code paths on the CPU at toy sizes)")
    out_dir = os.environ.get("OUT", ".")
    os.makedirs(out_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = None
    import triton

    res: dict = {"machine": {"gpu": torch.cuda.get_device_name() if DEV == "cuda" else "cpu (--smoke)", "torch": torch.__version__,
                             "triton": triton.__version__, "python": platform.python_version(), "git": rev},
                 "args": vars(args), "availability": {}, "checks": [], "layer": [], "gen": [], "model": [],
                 "skipped": []}

    # 1. availability
    wanted = ATTN_IMPLS + RAT_IMPLS + SWA_PREFERENCE + list(REF.values())
    for name in wanted:
        res["availability"][name] = impl_reason(name)
        log(f"{name:18s} {'available' if res['availability'][name] is None else res['availability'][name]}")

    # 2. correctness before timing
    good: dict[str, list[str]] = {"attention": [], "rat": []}
    for kind, names in (("attention", ATTN_IMPLS), ("rat", RAT_IMPLS)):
        for name in names:
            if res["availability"][name] is not None:
                continue
            row = check_layer(kind, name)
            res["checks"].append(row)
            log(f"check {kind} {name}: {row}")
            if row["ok"]:
                good[kind].append(name)

    # 3-5 as a list of jobs, the primary implementations first (the first good RAT implementation and
    # every attention one), then the other RAT implementations, so the budget cuts the extras
    Ts = [int(t) for t in args.T.split(",")]
    primary = {"attention": good["attention"], "rat": good["rat"][:1]}
    extra = {"attention": [], "rat": good["rat"][1:]}
    swa = next((n for n in SWA_PREFERENCE if res["availability"][n] is None), None)
    if swa is None and not args.skip_model:
        res["skipped"].append("SWA hybrids: no SWA implementation available: "
                              + "; ".join(f"{n}: {res['availability'][n]}" for n in SWA_PREFERENCE))
    rat_best = good["rat"][0] if good["rat"] else None
    att_best = "full/sdpa-cudnn" if "full/sdpa-cudnn" in good["attention"] else (
        good["attention"][0] if good["attention"] else None)
    jobs: list[tuple[str, str, object]] = []  # (section, label, thunk)
    for which in (primary, extra):
        if not args.skip_layer:
            for T in Ts:
                for kind in ("rat", "attention"):
                    for name in which[kind]:
                        for compiled in {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]:
                            jobs.append(("layer", f"layer {kind} {name} T={T} compiled={compiled}",
                                         lambda k=kind, n=name, t=T, c=compiled: time_layer(k, n, t, c)))
        if not args.skip_gen:
            for T, B in GEN_CASES:
                for kind in ("rat", "attention"):
                    for name in which[kind]:
                        jobs.append(("gen", f"gen {kind} {name} T={T} B={B}",
                                     lambda k=kind, n=name, t=T, b=B: time_gen(k, n, t, b)))
        if not args.skip_model:
            plans = []
            for mixer in args.models.split(","):
                if mixer == "attention":
                    plans += [(mixer, {"full": n}) for n in which["attention"]]
                elif mixer == "rat":
                    plans += [(mixer, {"rat": n}) for n in which["rat"]]
                elif mixer == "rat-swa" and rat_best and swa and which is primary:
                    plans.append((mixer, {"rat": rat_best, "swa": swa}))
                elif mixer == "attention-swa" and att_best and swa and which is primary:
                    plans.append((mixer, {"full": att_best, "swa": swa}))
            for mixer, impl_map in plans:
                jobs.append(("model", f"model {mixer} {impl_map}", lambda m=mixer, i=impl_map: time_model(m, i, args)))
    for section, label, thunk in jobs:
        if elapsed() > args.budget_s:
            res["skipped"].append(f"{label} (time budget {args.budget_s:.0f} s)")
            continue
        res[section].append(thunk())

    res["elapsed_s"] = elapsed()
    path = os.path.join(out_dir, "gpu_layers.json")
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1, default=str)

    # the short table, last
    print(f"\n== {res['machine']['gpu']}, torch {torch.__version__}, triton {triton.__version__}; {path}")
    for name, why in res["availability"].items():
        if why is not None:
            print(f"unavailable {name}: {why[:110]}")
    for c in res["checks"]:
        print(f"check {c['impl']:16s} ok={c['ok']} rel_err={fmt(c.get('rel_err_vs_reference'), '.2e')} "
              f"decode={fmt(c.get('rel_err_decode_vs_forward'), '.2e')} {c.get('error', '')[:80]}")
    if res["layer"]:
        print("layer (ms, median; TFLOP/s)        T      B  compiled   train (TF/s)   prefill (TF/s)")
        for r in res["layer"]:
            print(f"  {r['kind']:9s} {r['impl']:16s} {r['T']:6d} {r['B']:3d} {str(r['compiled']):5s} "
                  f"{fmt(r.get('train_ms')):>9s} ({fmt(r.get('train_tflops'), '.0f'):>4s}) "
                  f"{fmt(r.get('prefill_ms')):>8s} ({fmt(r.get('prefill_tflops'), '.0f'):>4s}) "
                  f"{(r.get('train_note') or r.get('prefill_note') or '')[:40]}")
    ratios = speedups(res["layer"])
    res["layer_speedups"] = ratios
    if ratios:
        print("layer speed-up, attention ms / RAT ms (>1: RAT faster)")
        for r in ratios:
            print(f"  {r['rat']:12s} vs {r['attention']:16s} T={r['T']:6d} compiled={str(r['compiled']):5s} "
                  f"train {fmt(r['train'], '.2f') + 'x':>7s}  prefill {fmt(r['prefill'], '.2f') + 'x':>7s}")
    if res["gen"]:
        print("gen, one layer step (ms)  T      B    eager    graph   cache GiB")
        for r in res["gen"]:
            print(f"  {r['kind']:9s} {r['impl']:16s} {r['T']:6d} {r['B']:3d} {fmt(r.get('eager_ms'), '.3f'):>8s} "
                  f"{fmt(r.get('graph_ms'), '.3f'):>8s} {fmt(r.get('cache_gib'), '.2f'):>8s} "
                  f"{(r.get('note') or r.get('graph_note') or '')[:40]}")
    if res["model"]:
        print(f"model 1.3B, prompt {args.prompt}, {args.new} new: batch | tok/s (all) | decode tok/s | mode")
        for r in res["model"]:
            eq = r.get("graph_tokens_equal_eager")
            extra = "" if eq is None else (
                f" (graph == eager tokens at batch {r.get('check_batch')}: {eq}, "
                f"{fmt(r.get('graph_sequences_equal_fraction'), '.2f')} of sequences)")
            print(f"  {r['mixer']:13s} {','.join(r['impls'].values()):28s} {r['batch']:5d} "
                  f"{fmt(r.get('tokens_per_s'), '.0f'):>8s} "
                  f"{fmt(r.get('decode_tokens_per_s'), '.0f'):>8s} {r.get('decode_mode', '-')}{extra} "
                  f"{(r.get('note') or '')[:60]}")
    if res["skipped"]:
        print(f"skipped (budget or unavailable): {len(res['skipped'])}: " + "; ".join(res["skipped"])[:300])
    print(f"elapsed {res['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
