"""linear/triton on one GPU: correctness (FlashAttention rule), then train / prefill / decode timings
beside fla's chunk_linear_attn (and chunk_simple_gla for the decayed case) when fla is importable.

    OUT=/some/dir python scripts/gpu_linear_triton.py [--quick]

Correctness, bf16 (and fp16, fp32), fresh random inputs: err(x) = ||x - ref64|| / ||ref64|| with
ref64 the float64 reference; pass if err(linear/triton) <= 2 * err(low-precision reference) + 1e-5,
for o and every gradient. The low-precision reference is the parallel masked form computed in the
input dtype (einsum in bf16 with float32 accumulation, as FlashAttention's tests do). Outputs are
checked to be finite, and outputs are allocated over NaN-poisoned memory so that an unwritten
element shows up.

Timing: triton.testing.do_bench medians, H = 16, D = 128, bf16, 131072 tokens per batch
(T = 4096, 16384, 131072). train = forward + backward (autograd.grad of q, k, v[, decay]);
prefill = forward with the final state written; decode = one step at B = 64 (plain launch and
CUDA-graph replay). Writes $OUT/linear_triton.json; prints a short table last. About 2 minutes.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
if "--dry-run" in sys.argv:  # the interpreter must be chosen before triton is imported
    os.environ["TRITON_INTERPRET"] = "1"

import _gpu_common as _common  # noqa: E402  (scripts/_gpu_common.py)
import torch  # noqa: E402
import triton  # noqa: E402
from triton.testing import do_bench  # noqa: E402

import impls  # noqa: E402
from impls.linear.reference import decay_matrix  # noqa: E402
from impls.linear.triton import LinearTriton, LinearTritonConfig  # noqa: E402

DEV = "cuda"
DRY = False  # --dry-run: CPU interpreter, tiny shapes, each timed function called once (checks the script)
BW = 4.24e12  # measured device-to-device copy on our H200 (bytes read + written per second)
TOKENS, H, D = 131072, 16, 128


def ensure_fla() -> str | None:
    """Import fla, installing a carried wheel (repo .whl/ folder) if needed; None or the reason."""
    try:
        import fla.ops.linear_attn  # noqa: F401
        return None
    except Exception as exc:  # noqa: BLE001
        first = f"{type(exc).__name__}: {exc}"
    wheels = sorted(glob.glob(os.path.join(ROOT, ".whl", "*.whl")))
    if not wheels:
        return f"fla not importable ({first}) and no wheel under .whl/"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", *wheels],
                       capture_output=True, text=True)
    try:
        import fla.ops.linear_attn  # noqa: F401
        return None
    except Exception as exc:  # noqa: BLE001
        return f"fla not importable after installing wheels ({type(exc).__name__}: {exc}; pip: {r.stderr[-300:]})"


rel = _common.rel


def poison() -> None:
    """Fill free cached memory with NaN so that torch.empty hands out NaN-filled buffers."""
    if DRY:
        return
    free = torch.cuda.mem_get_info()[0]
    n = min(int(free * 0.5), 8 << 30) // 4
    x = torch.full((n,), float("nan"), device=DEV)
    del x


def lowp_forward(q, k, v, decay, scale):
    """Parallel masked form in the input dtype (the low-precision reference of the rule)."""
    B, T, Hh, _ = q.shape
    M = decay_matrix(decay.float() if decay is not None else None, B, T, Hh, q.device, torch.float32).to(q.dtype)
    s = torch.einsum("bthd,bshd->bhts", q, k) * M
    return scale * torch.einsum("bhts,bshd->bthd", s, v)


def grads_of(fn, q, k, v, decay, do):
    leaves = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
    dl = decay.detach().clone().requires_grad_(True) if decay is not None else None
    o = fn(*leaves, dl)
    gs = torch.autograd.grad(o, leaves + ([dl] if dl is not None else []), do)
    return [o.detach(), *gs]


def fa_rule(row: dict, names, got, lowp, ref64) -> dict:
    """Into ``row``: for each name, err = ||x - ref64|| / ||ref64|| of ours and of the low-precision
    reference, and the FlashAttention rule (finite and err <= 2 * err(low-precision) + 1e-5); row["ok"]
    is true when every entry passes."""
    row.setdefault("ok", True)
    for n, a, lp, r in zip(names, got, lowp, ref64):
        e, elp = rel(a, r), rel(lp, r)
        row[n] = {"err": e, "err_lowp_ref": elp, "ok": e == e and e <= 2 * elp + 1e-5}
        row["ok"] &= row[n]["ok"]
    return row


def worst_ratio(c: dict) -> tuple[float, str]:
    """The largest err / err(low-precision reference) of a checked row, and its name."""
    return max((c[n]["err"] / max(c[n]["err_lowp_ref"], 1e-12), n)
               for n in ("o", "state", "dq", "dk", "dv", "ddecay") if n in c)


def form_of(cfg: LinearTritonConfig, BH: int, Dd: int, T: int, n_sm: int, train: bool = False) -> str:
    """Which form a forward takes for BH sequences of T tokens, in words: the (segmented) walker with
    its segments, or the two-pass form with its state blocks. ``train``: the forward that keeps the
    chunk states (seg_train), else the forward without gradients / prefill (seg)."""
    p = cfg.plan(BH, Dd, n_sm)
    if p.fused or (cfg.seg_train if train else cfg.seg):
        NS, L = cfg.segments(BH, Dd, triton.cdiv(T, cfg.chunk), n_sm, p.fused)
        return f"walker NS={NS} L={L}"
    return f"twopass {p.state_bk}x{p.state_bv}"


def print_timing(title: str, rows: list[dict], line) -> None:
    """The timing table: ``line(row)`` for each timed row, the tail of the error for a failed one."""
    print(title)
    for r in rows:
        if "error" in r:
            print(f"  ERROR {r.get('mode', '')} T={r.get('T', '-')}: {r['error'][-400:]}")
        else:
            print("  " + line(r))


def ms_cell(r: dict) -> str:
    return "n/a" if r["ms"] is None else f"{r['ms']:.3f}"


_REFS: dict = {}


def check_case(B, T, Hh, Dd, dtype, use_decay, seed, impl=None) -> dict:
    """Output and gradients of ``impl`` (default: the registered linear/triton) vs float64, FA rule.
    References are cached per input set, so checking several launch variants costs one reference."""
    key = (B, T, Hh, Dd, dtype, use_decay, seed)
    if key not in _REFS:
        torch.manual_seed(seed)
        q, k, v = (torch.randn(B, T, Hh, Dd, device=DEV).to(dtype) for _ in range(3))
        decay = (-torch.rand(B, T, Hh, device=DEV) * 0.2) if use_decay else None
        do = torch.randn(B, T, Hh, Dd, device=DEV).to(dtype)
        scale = Dd ** -0.5
        ref = impls.get("linear/reference")
        r64 = grads_of(lambda a, b, c, d: ref.forward(a, b, c, decay=d), q.double(), k.double(), v.double(),
                       decay.double() if decay is not None else None, do.double())
        rlp = grads_of(lambda a, b, c, d: lowp_forward(a, b, c, d, scale), q, k, v, decay, do)
        _REFS[key] = (q, k, v, decay, do, r64, rlp)
    q, k, v, decay, do, r64, rlp = _REFS[key]
    ours = impl or impls.get("linear/triton")
    poison()
    got = grads_of(lambda a, b, c, d: ours.forward(a, b, c, decay=d), q, k, v, decay, do)
    torch.cuda.synchronize()
    names = ["o", "dq", "dk", "dv", "ddecay"]
    row = {"B": B, "T": T, "H": Hh, "D": Dd, "dtype": str(dtype).split(".")[-1], "decay": use_decay}
    return fa_rule(row, names, got, rlp, r64)


def check_decode(dtype, use_decay, seed) -> dict:
    torch.manual_seed(seed)
    B, T0, n, Hh, Dd = (1, 70, 3, 2, 128) if DRY else (4, 1000, 8, 4, 128)
    q, k, v = (torch.randn(B, T0 + n, Hh, Dd, device=DEV).to(dtype) for _ in range(3))
    decay = (-torch.rand(B, T0 + n, Hh, device=DEV) * 0.2) if use_decay else None
    ours, ref = impls.get("linear/triton"), impls.get("linear/reference")
    full64 = ref.forward(q.double(), k.double(), v.double(), decay=decay.double() if use_decay else None)
    lp = lowp_forward(q, k, v, decay, Dd ** -0.5)
    st = ours.init_state(B, Hh, Dd, T0 + n, device=DEV, dtype=dtype)
    o0 = ours.prefill(st, q[:, :T0], k[:, :T0], v[:, :T0], decay[:, :T0] if use_decay else None)
    steps = [ours.step(st, q[:, t], k[:, t], v[:, t], decay[:, t] if use_decay else None) for t in range(T0, T0 + n)]
    got = torch.cat([o0, torch.stack(steps, 1)], 1)
    rs = ref.init_state(B, Hh, Dd, T0 + n, device=DEV, dtype=torch.float64)
    ref.prefill(rs, q.double(), k.double(), v.double(), decay.double() if use_decay else None)
    e, elp, es = rel(got, full64), rel(lp, full64), rel(st.S, rs.S)
    return {"what": "prefill+steps", "dtype": str(dtype).split(".")[-1], "decay": use_decay, "err": e,
            "err_lowp_ref": elp, "err_state": es, "ok": e == e and e <= 2 * elp + 1e-5 and es < 1e-2}


def check_fla(use_decay: bool) -> dict:
    """fla must compute our definition: chunk_linear_attn(normalize=False) / chunk_simple_gla, output
    and gradients vs float64, with the same rule as ours."""
    torch.manual_seed(7)
    B, T, Hh, Dd = 2, 1000, 4, 128
    q, k, v, do = (torch.randn(B, T, Hh, Dd, device=DEV, dtype=torch.bfloat16) for _ in range(4))
    decay = -torch.rand(B, T, Hh, device=DEV) * 0.2 if use_decay else None
    scale = Dd ** -0.5
    r64 = grads_of(lambda a, b, c, d: impls.get("linear/reference").forward(a, b, c, decay=d), q.double(), k.double(),
                   v.double(), decay.double() if use_decay else None, do.double())
    rlp = grads_of(lambda a, b, c, d: lowp_forward(a, b, c, d, scale), q, k, v, decay, do)
    name = "fla chunk_simple_gla" if use_decay else "fla chunk_linear_attn"
    try:
        if use_decay:
            from fla.ops.simple_gla import chunk_simple_gla
            got = grads_of(lambda a, b, c, d: chunk_simple_gla(a, b, c, g=d, scale=scale)[0], q, k, v, decay, do)
        else:
            from fla.ops.linear_attn import chunk_linear_attn
            got = grads_of(lambda a, b, c, d: chunk_linear_attn(a, b, c, scale=scale, normalize=False)[0], q, k, v, None, do)
    except Exception as exc:  # noqa: BLE001
        return {"what": name, "ok": None, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return fa_rule({"what": name}, ["o", "dq", "dk", "dv", "ddecay"], got, rlp, r64)


def bench(fn, rep=120) -> float:
    if DRY:
        fn()
        return 0.0
    return do_bench(fn, warmup=30, rep=rep, return_mode="median")


def time_train_prefill(T: int, cfgs: dict[str, LinearTritonConfig], fla_reason: str | None, quick: bool) -> list[dict]:
    B = TOKENS // T
    torch.manual_seed(T)
    q, k, v, do = (torch.randn(B, T, H, D, device=DEV, dtype=torch.bfloat16) for _ in range(4))
    decay = -torch.rand(B, T, H, device=DEV) * 0.2
    rows = []

    def add(impl, mode, dec, ms, **extra):
        rows.append({"impl": impl, "mode": mode, "decay": dec, "T": T, "B": B, "ms": ms, **extra})

    n_sm = 1 if DRY else torch.cuda.get_device_properties(0).multi_processor_count
    for name, cfg in cfgs.items():
        impl = LinearTriton(cfg)
        # a variant is timed only if it passes the same check (bf16, decay, all gradients) first
        vshape = (1, 128, 2, D) if DRY else (2, 1024, 4, D)
        chks = [check_case(*vshape, torch.bfloat16, dd, seed=999, impl=impl) for dd in (False, True)]
        chk = chks[0] if not chks[0]["ok"] else chks[1]
        if not chk["ok"] and not DRY:
            add(f"linear/triton[{name}]", "train", False, None, reason="failed the correctness check", check=chk)
            continue
        if name == "default":
            name = "default=" + ("fused" if cfg.plan(B * H, D, n_sm).fused else "twopass") \
                + f",prefill {form_of(cfg, B * H, D, T, n_sm)}"
        for dec in ((None, True) if name.startswith("default") else (None,)):
            leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
            dl = dec if dec is None else decay.clone().requires_grad_(True)
            ins = leaves + ([dl] if dl is not None else [])
            fn = lambda: torch.autograd.grad(impl.forward(*leaves, decay=dl), ins, do)  # noqa: E731
            add(f"linear/triton[{name}]", "train", dec is not None, bench(fn))
            st = impl.init_state(B, H, D, T, device=DEV, dtype=torch.bfloat16)

            def pf():
                st.pos = 0
                impl.prefill(st, q, k, v, decay if dec is not None else None)
            add(f"linear/triton[{name}]", "prefill", dec is not None, bench(pf))
            del leaves, ins
    if fla_reason is None:
        from fla.ops.linear_attn import chunk_linear_attn

        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        fn = lambda: torch.autograd.grad(chunk_linear_attn(*leaves, scale=D ** -0.5, normalize=False)[0], leaves, do)  # noqa: E731
        add("fla chunk_linear_attn", "train", False, bench(fn))
        with torch.no_grad():
            add("fla chunk_linear_attn", "prefill", False,
                bench(lambda: chunk_linear_attn(q, k, v, scale=D ** -0.5, normalize=False, output_final_state=True)))
        try:
            from fla.ops.simple_gla import chunk_simple_gla

            dl = decay.clone().requires_grad_(True)
            fn = lambda: torch.autograd.grad(chunk_simple_gla(*leaves, g=dl, scale=D ** -0.5)[0], leaves + [dl], do)  # noqa: E731
            add("fla chunk_simple_gla", "train", True, bench(fn))
        except Exception as exc:  # noqa: BLE001
            add("fla chunk_simple_gla", "train", True, None, reason=f"{type(exc).__name__}: {str(exc)[:300]}")
    return rows


def time_decode(fla_reason: str | None) -> list[dict]:
    B, rows = (2 if DRY else 64), []
    impl = impls.get("linear/triton")
    for use_decay in (False, True):
        q, k, v = (torch.randn(B, H, D, device=DEV, dtype=torch.bfloat16) for _ in range(3))
        d = -torch.rand(B, H, device=DEV) * 0.2 if use_decay else None
        st = impl.init_state(B, H, D, 1 << 20, device=DEV, dtype=torch.bfloat16)
        st.S.normal_()
        ms = bench(lambda: impl.step(st, q, k, v, d), rep=100)
        if DRY:
            rows.append({"impl": "linear/triton", "mode": "decode", "decay": use_decay, "B": B, "ms": ms})
            continue
        g = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            impl.step(st, q, k, v, d)
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(g):
            impl.step(st, q, k, v, d)
        ms_graph = bench(g.replay, rep=100)
        floor_ms = 2 * st.S.numel() * 4 / BW * 1e3
        rows.append({"impl": "linear/triton", "mode": "decode", "decay": use_decay, "B": B, "ms": ms,
                     "ms_graph": ms_graph, "floor_ms": floor_ms})
        ref = impls.get("linear/reference")
        rst = ref.init_state(B, H, D, 1 << 20, device=DEV, dtype=torch.bfloat16)
        rows.append({"impl": "linear/reference", "mode": "decode", "decay": use_decay, "B": B,
                     "ms": bench(lambda: ref.step(rst, q, k, v, d), rep=100)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="T = 4096 only")
    ap.add_argument("--full", action="store_true", help="more launch variants (slower)")
    ap.add_argument("--dry-run", action="store_true", help="run the script logic on the CPU interpreter, tiny shapes")
    args = ap.parse_args()
    global DEV, DRY, TOKENS, H
    if args.dry_run:
        DEV, DRY, TOKENS, H = "cpu", True, 256, 2
        torch.cuda.get_device_name = lambda *a: "cpu (dry run)"  # type: ignore[assignment]
        torch.cuda.synchronize = lambda *a: None  # type: ignore[assignment]
    out_dir = os.environ.get("OUT", ".")
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
                 "git": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()}
    fla_reason = "dry run" if DRY else ensure_fla()
    res["fla"] = fla_reason or "ok"

    def dump():
        with open(os.path.join(out_dir, "linear_triton.json"), "w") as f:
            json.dump(res, f, indent=1, default=str)

    checks = []
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        for use_decay in (False, True):
            for shape in ((1, 100, 2, 128), (1, 70, 1, 64)) if DRY else ((2, 1000, 4, 128), (1, 2048, 2, 64)):
                if dtype != torch.bfloat16 and shape[-1] == 64:
                    continue
                try:
                    checks.append(check_case(*shape, dtype, use_decay, seed=len(checks)))
                except Exception:  # noqa: BLE001
                    checks.append({"shape": shape, "dtype": str(dtype), "decay": use_decay, "ok": False, "error": traceback.format_exc()[-800:]})
        for use_decay in (False, True):
            if dtype == torch.bfloat16:
                checks.append(check_decode(dtype, use_decay, seed=100 + use_decay))
    if fla_reason is None:
        checks += [check_fla(False), check_fla(True)]
    res["checks"] = checks
    dump()
    print(f"checks done in {time.time() - t0:.0f}s", flush=True)
    for c in checks:
        if c["ok"] is False and not str(c.get("what", "")).startswith("fla"):
            print("CHECK FAILED:", json.dumps(c, default=str)[:1500])

    # seg=False: the named form also for prefill (the segmented walker, seg=True, is compared with
    # the default form in scripts/gpu_linear_prefill.py)
    cfgs = {
        "default": LinearTritonConfig(),
        "fused": LinearTritonConfig(seg=False, fused=True),
        "twopass": LinearTritonConfig(seg=False, fused=False),
        "twopass-c128": LinearTritonConfig(seg=False, fused=False, chunk=128, o_bv=128, o_warps=8, dqk_warps=8),
        "fused-c128": LinearTritonConfig(seg=False, fused=True, chunk=128, dqk_warps=8),
        "fused-bv32": LinearTritonConfig(seg=False, fused=True, fused_bv=32, fused_warps=4),
        "fused-dqk128": LinearTritonConfig(seg=False, fused=True, dqk_bk=128, dqk_bv=32, dqk_warps=8),
    }
    if args.full:
        cfgs |= {
            "fused-w4": LinearTritonConfig(seg=False, fused=True, fused_warps=4),
            "twopass-dqk8w": LinearTritonConfig(seg=False, fused=False, dqk_warps=8),
            "twopass-o128": LinearTritonConfig(seg=False, fused=False, o_bv=128, o_warps=8),
            "twopass-stages3": LinearTritonConfig(seg=False, fused=False, stages=3, state_stages=3),
        }
    timing = []
    Ts = (64, 128) if DRY else (4096,) if args.quick else (4096, 16384, 131072)
    for T in Ts:
        # every variant at the first T; the two forms (and state blocks at the longest T) after that
        c = dict(cfgs) if T == Ts[0] else {n: cfgs[n] for n in ("default", "fused", "twopass", "twopass-c128")}
        if T == Ts[-1] and not args.quick:
            c["twopass-state64x64"] = LinearTritonConfig(seg=False, fused=False, state_bk=64, state_bv=64)
            c["twopass-state64x32"] = LinearTritonConfig(seg=False, fused=False, state_bk=64, state_bv=32)
        try:
            timing += time_train_prefill(T, c, fla_reason, args.quick)
        except Exception:  # noqa: BLE001
            timing.append({"T": T, "error": traceback.format_exc()[-1500:]})
        res["timing"] = timing
        dump()
        print(f"T={T} timed at {time.time() - t0:.0f}s", flush=True)
    try:
        timing += time_decode(fla_reason)
    except Exception:  # noqa: BLE001
        timing.append({"mode": "decode", "error": traceback.format_exc()[-1500:]})
    res["timing"] = timing
    res["wall_s"] = time.time() - t0
    dump()

    # ---- short table last
    print(f"\nfla: {res['fla']}")
    print("correctness (rel err vs float64; FA rule <= 2x low-precision reference):")
    for c in checks:
        if str(c.get("what", "")).startswith("fla"):
            if "o" in c:
                cells = " ".join(f"{n} {c[n]['err']:.1e} ({c[n]['err'] / max(c[n]['err_lowp_ref'], 1e-12):.2f}x)"
                                 for n in ("o", "dq", "dk", "dv", "ddecay") if n in c)
                print(f"  peer {'ok ' if c['ok'] else 'BAD'} {c['what']}: {cells}")
            else:
                print(f"  peer {c['what']}: not run: {c['reason'][:100]}")
        elif "o" in c:
            worst = worst_ratio(c)
            print(f"  {'ok ' if c['ok'] else 'BAD'} {c['dtype']:8s} D={c['D']:3d} T={c['T']:5d} decay={c['decay']!s:5s} "
                  f"o {c['o']['err']:.2e} (ref {c['o']['err_lowp_ref']:.2e})  worst ratio {worst[0]:.2f} ({worst[1]})")
        elif "err" in c:
            print(f"  {'ok ' if c['ok'] else 'BAD'} decode {c['dtype']} decay={c['decay']} err {c['err']:.2e} (ref {c['err_lowp_ref']:.2e}) state {c['err_state']:.2e}")
        else:
            print(f"  BAD {c}")

    def line(r: dict) -> str:
        extra = f" graph {r['ms_graph']:.4f} floor {r['floor_ms']:.4f}" if "ms_graph" in r else ""
        extra += f" ({r['reason'][:90]})" if r.get("reason") else ""
        return f"{r['mode']:7s} T={r.get('T', '-')!s:6s} B={r['B']:<3d} decay={r['decay']!s:5s} {r['impl']:32s} {ms_cell(r)}{extra}"
    print_timing("timing, ms (median):", timing, line)
    print(f"wall {res['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
