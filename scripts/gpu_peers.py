"""Every peer (impls/<family>/<peer>.py) on one GPU: correctness against the family reference, then
brief timings. Run by the lead on the H200:

    OUT=/some/dir python scripts/gpu_peers.py [--budget 180] [--ts 4096,16384] [--only 'rat/*,full/*']
    OUT=/some/dir python scripts/gpu_peers.py --ts 131072 --only 'rat/flex,swa/flex,linear/fla'   # 128K

Correctness (bf16, H = 16, D = 128, T = 4096, batch element 0 of the timing batch, so the check runs
the very kernels that are timed): err(x) = ||x - ref64|| / ||ref64||, ref64 = the float64 reference
on the same (bf16-rounded) inputs; pass if err(peer) <= 2 * err(low-precision reference) + 1e-5
(the FlashAttention rule), for the output and, where the peer has a GPU backward, every gradient.
The low-precision reference is the reference's own math run in bf16 arithmetic. Decode: prefill of a
prompt ending mid-chunk, then steps, against ref64 of the whole sequence, same rule. A peer that fails
is not timed.

Timing (triton.testing.do_bench medians, bf16, 131072 tokens per batch, B = 131072 / T): fwd (no
grad), train (forward + backward), and one decode step at position T - 1 with B = 64. Configs:
swa window 1024, rat chunk 16 with RoPE, linear without and with decay. Compilation happens in the
first timed call; a wall-clock budget (--budget seconds, default 180) skips the rest once spent,
and says so. Writes $OUT/gpu_peers.json (device, versions, every row); prints a short table last.
"""
from __future__ import annotations

import argparse
import fnmatch
import glob
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common  # scripts/_gpu_common.py (the script's folder is on sys.path)
import torch

DEV = "cuda"
TOKENS, H, D = 131072, 16, 128
WINDOW, CHUNK = 1024, 16
T_CHECK, DECODE_CHECK = 4096, (2, 1024, 9)  # forward check length; decode check (B, T, steps)
SMOKE = False  # --cpu-smoke: tiny shapes on the CPU, one call per timing (checks this script only)
DT = torch.bfloat16
SLOW = ("full/sdpa-math",)  # unfused T x T scores: checked (at B = 2), not timed
# in order of importance: the time budget cuts from the end
PEERS = ["rat/flex", "full/sdpa-flash", "full/sdpa-cudnn", "full/fa4", "swa/flex", "swa/fa4", "linear/fla",
         "full/flex", "full/flash-attn", "swa/flash-attn", "full/sdpa-efficient", "full/sdpa-math"]


# ----- optional packages carried as wheels ---------------------------------------------------------
def ensure_wheels() -> str:
    """pip-install wheels carried in .whl/ (fla-core) if fla does not import; returns a note."""
    if importlib.util.find_spec("fla") is not None:
        return "fla importable"
    wheels = sorted(glob.glob(os.path.join(ROOT, ".whl", "*.whl")))
    if not wheels:
        return "fla not importable, no wheels under .whl/"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", *wheels]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return f"installed {len(wheels)} wheel(s) from .whl/ (rc {r.returncode}) {r.stderr[-200:]}"


# ----- errors ---------------------------------------------------------------------------------------
rel = _common.rel


def reset_peak() -> None:
    if not SMOKE:
        torch.cuda.reset_peak_memory_stats()


def peak_gb() -> float | None:
    return None if SMOKE else torch.cuda.max_memory_allocated() / 1e9


def rule(err: float, err_lowp: float) -> bool:
    return not math.isnan(err) and err <= 2 * err_lowp + 1e-5


# ----- per family: inputs, call, the low-precision reference ---------------------------------------
def make_inputs(family: str, B: int, T: int, seed: int) -> dict:
    g = torch.Generator(device=DEV).manual_seed(seed)
    x = {n: torch.randn(B, T, H, D, device=DEV, generator=g).to(DT) for n in ("q", "k", "v")}
    if family == "rat":
        x["f"] = torch.sigmoid(torch.randn(B, T, H, D, device=DEV, generator=g) + 2.0).to(DT)
    if family == "linear":
        x["decay"] = -0.2 * torch.rand(B, T, H, device=DEV, generator=g)
    return x


def params(family: str) -> dict:
    return {"full": {}, "swa": {"window": WINDOW}, "rat": {"chunk_size": CHUNK, "rope": True},
            "linear": {}}[family]


def call(impl, family: str, x: dict, use_decay: bool = True):
    p = params(family)
    if family == "rat":
        return impl.forward(x["q"], x["k"], x["v"], x["f"], **p)
    if family == "linear":
        return impl.forward(x["q"], x["k"], x["v"], decay=x["decay"] if use_decay else None)
    return impl.forward(x["q"], x["k"], x["v"], **p)


def lowp_reference(family: str, x: dict, use_decay: bool):
    """The reference's math in the input dtype (bf16 arithmetic), differentiable."""
    scale = D ** -0.5
    q, k, v = x["q"], x["k"], x["v"]
    T = q.shape[1]
    if family in ("full", "swa"):
        from impls.full.reference import attention, causal_mask
        from impls.swa.reference import window_mask

        mask = causal_mask(T, q.device) if family == "full" else window_mask(T, WINDOW, q.device)
        return attention(q, k, v, mask, scale)
    if family == "rat":
        from impls.rat.reference import rat_attention

        return rat_attention(q, k, v, x["f"], CHUNK, True, scale)[0]
    from impls.linear.reference import decay_matrix

    dec = x["decay"] if use_decay else None
    B, T, Hh, _ = q.shape
    M = decay_matrix(dec.float() if dec is not None else None, B, T, Hh, q.device, torch.float32).to(q.dtype)
    return scale * torch.einsum("bhts,bshd->bthd", torch.einsum("bthd,bshd->bhts", q, k) * M, v)


def grad_names(family: str, use_decay: bool) -> list[str]:
    extra = {"rat": ["f"], "linear": ["decay"] if use_decay else []}.get(family, [])
    return ["q", "k", "v"] + extra


def out_and_grads(fn, x: dict, names: list[str], do: torch.Tensor | None):
    leaves = {n: t.detach().clone().requires_grad_(do is not None and n in names) for n, t in x.items()}
    if do is None:
        with torch.no_grad():
            return [fn(leaves).detach()]
    o = fn(leaves)
    gs = torch.autograd.grad(o, [leaves[n] for n in names], do)
    return [o.detach(), *gs]


# ----- correctness ----------------------------------------------------------------------------------
def check_forward(name: str, family: str, impl, use_decay: bool, train: bool) -> dict:
    """Batch element 0 of the T = 4096 timing batch (same kernels, same compiled graphs): the output
    (no grad) and, if train, the output and every gradient (a separate row entry 'train_ok')."""
    import impls

    T = T_CHECK
    B = 2 if name in SLOW else TOKENS // T  # the math backend's T x T scores at B = 32 would fill the GPU
    x = make_inputs(family, B, T, seed=1)
    names = grad_names(family, use_decay)
    x0 = {n: t[:1] for n, t in x.items()}
    x64 = {n: t.double() for n, t in x0.items()}
    ref = impls.get(f"{family}/reference")
    row: dict = {}
    got = out_and_grads(lambda xs: call(impl, family, xs, use_decay), x, names, None)
    r64 = out_and_grads(lambda xs: call(ref, family, xs, use_decay), x64, names, None)
    lp = out_and_grads(lambda xs: lowp_reference(family, xs, use_decay), x0, names, None)
    e, el = rel(got[0][:1], r64[0]), rel(lp[0], r64[0])
    row["o"] = {"err": e, "err_lowp_ref": el, "ok": rule(e, el)}
    row["ok"] = row["o"]["ok"]
    if train:
        do = torch.randn(B, T, H, D, device=DEV, generator=torch.Generator(device=DEV).manual_seed(T + 1)).to(DT)
        do[1:] = 0  # only batch 0 is compared: its gradients depend on batch 0 alone
        try:
            got = out_and_grads(lambda xs: call(impl, family, xs, use_decay), x, names, do)
            r64 = out_and_grads(lambda xs: call(ref, family, xs, use_decay), x64, names, do[:1].double())
            lp = out_and_grads(lambda xs: lowp_reference(family, xs, use_decay), x0, names, do[:1])
            row["train_ok"] = True
            for n, a, l, r in zip(["o_train"] + ["d" + n for n in names], got, lp, r64):
                e, el = rel(a[:1], r), rel(l, r)
                row[n] = {"err": e, "err_lowp_ref": el, "ok": rule(e, el)}
                row["train_ok"] &= row[n]["ok"]
        except Exception as exc:  # noqa: BLE001
            row["train_ok"] = False
            row["train_error"] = err_text(exc)
            row["train_trace"] = traceback.format_exc()[-1500:]
    del x, got, r64, lp
    if not SMOKE:
        torch.cuda.empty_cache()
    return row


def check_decode(name: str, family: str, impl, use_decay: bool) -> dict:
    B, T, n = DECODE_CHECK  # prompt of 1015 tokens: mid-chunk for chunk 16, then 9 steps
    T0 = T - n
    x = make_inputs(family, B, T, seed=2)
    if family == "linear" and not use_decay:
        x.pop("decay")
    extra = [x[e] for e in ("f", "decay") if e in x]
    st = impl.init_state(B, H, D, T, device=DEV, dtype=DT, **({"window": WINDOW} if family == "swa" else {}),
                         **({"chunk_size": CHUNK, "rope": True} if family == "rat" else {}))
    seq = [x["q"], x["k"], x["v"], *extra]
    with torch.no_grad():
        outs = [impl.prefill(st, *(s[:, :T0] for s in seq))]
        for t in range(T0, T):
            outs.append(impl.step(st, *(s[:, t] for s in seq))[:, None])
        got = torch.cat(outs, 1)
        x64 = {k_: t.double() for k_, t in x.items()}
        ref = __import__("impls").get(f"{family}/reference")
        r64 = call(ref, family, x64, use_decay and family == "linear")
        lp = lowp_reference(family, x, use_decay and family == "linear")
    e, el = rel(got, r64), rel(lp, r64)
    es, els = rel(got[:, T0:], r64[:, T0:]), rel(lp[:, T0:], r64[:, T0:])
    return {"err": e, "err_lowp_ref": el, "err_steps": es, "err_steps_lowp_ref": els,
            "ok": rule(e, el) and rule(es, els)}


# ----- timing ---------------------------------------------------------------------------------------
def bench(fn, rep: int) -> float:
    if SMOKE:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    from triton.testing import do_bench

    return do_bench(fn, warmup=max(5, rep // 4), rep=rep, return_mode="median")


def time_fwd_train(impl, family: str, T: int, use_decay: bool, train: bool, rep: int) -> dict:
    B = TOKENS // T
    x = make_inputs(family, B, T, seed=T)
    out = {"B": B}
    reset_peak()
    with torch.no_grad():
        out["fwd_ms"] = bench(lambda: call(impl, family, x, use_decay), rep)
    out["fwd_peak_gb"] = peak_gb()
    if train:
        names = grad_names(family, use_decay)
        leaves = {n: t.detach().clone().requires_grad_(n in names) for n, t in x.items()}
        do = torch.randn(B, T, H, D, device=DEV).to(DT)
        ins = [leaves[n] for n in names]
        reset_peak()
        out["train_ms"] = bench(lambda: torch.autograd.grad(call(impl, family, leaves, use_decay), ins, do), rep)
        out["train_peak_gb"] = peak_gb()
        del leaves, do, ins
    if family == "full":
        f = 2 * B * H * T * T * D  # causal convention of docs/h200-anchors.md: fwd 2BHT^2D, fwd+bwd 3.5x
        out["fwd_tflops"] = f / out["fwd_ms"] / 1e9
        if "train_ms" in out:
            out["train_tflops"] = 3.5 * f / out["train_ms"] / 1e9
    if not SMOKE:
        torch.cuda.empty_cache()
    return out


def time_decode(impl, family: str, T: int, use_decay: bool, rep: int) -> dict:
    """One step at position T - 1, B = 64, over a state filled with random contents."""
    B = 64
    kw = {"window": WINDOW} if family == "swa" else {"chunk_size": CHUNK, "rope": True} if family == "rat" else {}
    st = impl.init_state(B, H, D, T, device=DEV, dtype=DT, **kw)
    for name in ("k", "v", "k_cache", "v_cache", "S", "kt", "vt"):
        t = getattr(st, name, None)
        if isinstance(t, torch.Tensor):
            t.normal_()
    g = torch.Generator(device=DEV).manual_seed(0)
    q, k, v = (torch.randn(B, H, D, device=DEV, generator=g).to(DT) for _ in range(3))
    extra = []
    if family == "rat":
        extra = [torch.sigmoid(torch.randn(B, H, D, device=DEV, generator=g)).to(DT)]
    if family == "linear" and use_decay:
        extra = [-0.2 * torch.rand(B, H, device=DEV, generator=g)]

    def step():
        st.pos = T - 1
        return impl.step(st, q, k, v, *extra)

    with torch.no_grad():
        ms = bench(step, rep)
    kv_bytes = st.nbytes_per_sequence(T) * B if hasattr(st, "nbytes_per_sequence") else None
    if not SMOKE:
        torch.cuda.empty_cache()
    return {"B": B, "decode_ms": ms, "state_gb": kv_bytes / 1e9 if kv_bytes else None,
            "state_tbps": kv_bytes / ms / 1e9 if kv_bytes else None}


# ----- driver ---------------------------------------------------------------------------------------
def err_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip()[:400]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=180.0, help="wall-clock seconds before timings are skipped")
    ap.add_argument("--ts", default="4096,16384")
    ap.add_argument("--only", default="", help="comma-separated globs of peers (default: all peers)")
    ap.add_argument("--rep", type=int, default=60, help="do_bench rep in ms")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny CPU run of this script's logic (no GPU)")
    args = ap.parse_args()
    if args.cpu_smoke:
        global DEV, TOKENS, H, D, WINDOW, CHUNK, T_CHECK, DECODE_CHECK, SMOKE
        DEV, TOKENS, H, D, WINDOW, CHUNK, T_CHECK, DECODE_CHECK, SMOKE = "cpu", 256, 2, 32, 16, 4, 128, (1, 64, 5), True
        args.ts = "128,256"
    t_start = time.time()
    out_dir = os.environ.get("OUT", ".")
    os.makedirs(out_dir, exist_ok=True)
    wheel_note = ensure_wheels()

    import triton

    import impls

    env = {"torch": torch.__version__, "triton": triton.__version__, "wheels": wheel_note, "smoke": SMOKE}
    if not SMOKE:
        env.update({"gpu": torch.cuda.get_device_name(0), "capability": list(torch.cuda.get_device_capability()),
                    "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()})
    for mod in ("fla", "flash_attn"):
        try:
            m = __import__(mod)
            env[mod] = getattr(m, "__version__", "installed")
        except Exception as exc:  # noqa: BLE001
            env[mod] = f"not importable ({type(exc).__name__})"
    cmd = ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]
    env["git"] = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip() or "unknown"
    avail = {r.name: r for r in impls.available(DEV)}
    peers = [n for n in PEERS if n in avail]
    if args.only:
        pats = [p.strip() for p in args.only.split(",") if p.strip()]
        peers = [n for n in peers if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    # variants: linear without and with decay; rat/flex with torch's own scan backward (last: least important)
    cases = []
    for n in peers:
        fam = n.split("/")[0]
        for dec in (False, True) if fam == "linear" else (False,):
            cases.append({"label": n + ("[decay]" if dec else ""), "name": n, "fam": fam, "dec": dec,
                          "make": lambda n=n: impls.get(n), "variant": False})
    if "rat/flex" in peers:
        cases.append({"label": "rat/flex[torch-scan-bwd]", "name": "rat/flex", "fam": "rat", "dec": False,
                      "make": lambda: impls.load_class("rat/flex")(scan_backward="torch"), "variant": True})
    ts = [int(t) for t in args.ts.split(",")]
    results = {"env": env, "availability": {n: r.reason for n, r in avail.items()}, "correctness": [],
               "timing": [], "skipped": []}
    print(json.dumps(env), flush=True)

    ok: dict[tuple, bool] = {}
    for case in cases:
        label, name, fam, dec = case["label"], case["name"], case["fam"], case["dec"]
        if not avail[name].available:
            results["correctness"].append({"impl": label, "ok": None, "reason": avail[name].reason})
            continue
        if time.time() - t_start > args.budget:
            results["skipped"].append(f"{label}: not checked, time budget ({args.budget:.0f} s) spent")
            continue
        impl = case["make"]()
        train = impl.unsupported_reason(mode="train", device=DEV, dtype=DT, head_dim=D,
                                        **({"decay": dec} if fam == "linear" else {}))
        row = {"impl": label, "train_unsupported": train}
        t0 = time.time()
        try:
            row["forward"] = check_forward(name, fam, impl, dec, train is None)
        except Exception as exc:  # noqa: BLE001
            row["forward"] = {"ok": False, "error": err_text(exc), "trace": traceback.format_exc()[-1500:]}
        if case["variant"]:  # same decode path as its base peer
            row["decode"] = {"ok": None, "note": "same decode as " + name}
        else:
            try:
                row["decode"] = check_decode(name, fam, impl, dec)
            except Exception as exc:  # noqa: BLE001
                row["decode"] = {"ok": False, "error": err_text(exc)}
        row["seconds"] = round(time.time() - t0, 1)
        ok[label] = bool(row["forward"].get("ok"))
        ok[(label, "train")] = bool(row["forward"].get("train_ok"))
        ok[(label, "decode")] = bool(row["decode"].get("ok"))
        results["correctness"].append(row)
        print(f"check {label}: forward ok={row['forward'].get('ok')} decode ok={row['decode'].get('ok')} "
              f"({row['seconds']} s) {row['forward'].get('error', '')} {row['decode'].get('error', '')}", flush=True)

    for T in ts:
        for case in cases:
            label, name, fam, dec = case["label"], case["name"], case["fam"], case["dec"]
            if not ok.get(label) or name in SLOW:
                continue
            if time.time() - t_start > args.budget:
                results["skipped"].append(f"{label} T={T}: time budget ({args.budget:.0f} s) spent")
                continue
            impl = case["make"]()
            train = ok.get((label, "train"), False)
            row = {"impl": label, "T": T}
            t0 = time.time()
            try:
                row.update(time_fwd_train(impl, fam, T, dec, train, args.rep))
            except Exception as exc:  # noqa: BLE001
                row["error"] = err_text(exc)
            if ok.get((label, "decode")):
                try:
                    row.update(time_decode(impl, fam, T, dec, args.rep))
                except Exception as exc:  # noqa: BLE001
                    row["decode_error"] = err_text(exc)
            row["seconds"] = round(time.time() - t0, 1)
            results["timing"].append(row)
            print(f"time {label} T={T}: {row}", flush=True)
            if not SMOKE:
                torch.cuda.empty_cache()

    results["wall_s"] = round(time.time() - t_start, 1)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gpu_peers.json"), "w") as fh:
        json.dump(results, fh, indent=1, default=str)

    # ----- short table, last ------------------------------------------------------------------------
    def fmt(v, p=2):
        return "-" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else str(v))

    print("\ncorrectness (bf16, rel L2 err vs float64 ref; rule: <= 2x bf16-ref err + 1e-5)")
    print(f"{'impl':26} {'fwd':5} {'o err':>9} {'2x ref':>9} {'grads':6} {'decode':6}  note")
    for r in results["correctness"]:
        if r.get("ok") is None and "forward" not in r:
            print(f"{r['impl']:26} {'n/a':5} {'':>9} {'':>9} {'':6} {'':6}  {r['reason'][:70]}")
            continue
        fw, dc = r["forward"], r["decode"]
        o = fw.get("o", {})
        grads = [v["ok"] for k_, v in fw.items() if k_.startswith("d") and isinstance(v, dict)]
        g = "-" if not grads else ("ok" if all(grads) else "FAIL")
        g = "ERR" if fw.get("train_error") else g
        note = (fw.get("error", "") or fw.get("train_error", "") or dc.get("error", "")
                or (f"train: {r['train_unsupported']}" if r["train_unsupported"] else ""))
        dec_s = {True: "ok", False: "FAIL", None: "-"}[dc.get("ok")]
        print(f"{r['impl']:26} {('ok' if fw.get('ok') else 'FAIL'):5} {fmt(o.get('err'), 5):>9} "
              f"{fmt(2 * o['err_lowp_ref'] if 'err_lowp_ref' in o else None, 5):>9} {g:6} "
              f"{dec_s:6}  {note[:70]}")
    print(f"\ntiming (ms, do_bench median; {TOKENS} tokens/batch, H={H}, D={D}, bf16; decode: B=64, one step at T-1)")
    print(f"{'impl':26} {'T':>6} {'B':>3} {'fwd':>8} {'train':>8} {'train TF/s':>10} {'decode':>8} {'peak GB':>8}")
    for r in results["timing"]:
        print(f"{r['impl']:26} {r['T']:>6} {TOKENS // r['T']:>3} {fmt(r.get('fwd_ms')):>8} {fmt(r.get('train_ms')):>8} "
              f"{fmt(r.get('train_tflops'), 0):>10} {fmt(r.get('decode_ms'), 3):>8} "
              f"{fmt(r.get('train_peak_gb', r.get('fwd_peak_gb')), 1):>8} {r.get('error', '')[:60]}")
    for s in results["skipped"]:
        print("skipped:", s)
    print(f"wall {results['wall_s']} s; JSON: {os.path.join(out_dir, 'gpu_peers.json')}")


if __name__ == "__main__":
    main()
