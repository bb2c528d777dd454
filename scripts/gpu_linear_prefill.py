"""linear/triton prefill at small batch: the segmented walker of the forward without gradients and
of prefill (``seg=True``, off by default until this script has timed it) against the default form
(``seg=False``: two-pass below ~264 sequences, the one-segment walker above) and fla, on one GPU.

    OUT=/some/dir python scripts/gpu_linear_prefill.py [--quick] [--no-profile]
    python scripts/gpu_linear_prefill.py --dry-run      # CPU interpreter, tiny shapes (checks the script)

1. Correctness, FlashAttention rule: err(x) = ||x - ref64|| / ||ref64|| against the float64 reference;
   pass if err(ours) <= 2 * err(low-precision reference) + 1e-5. Prefill checks o and the final state
   (low-precision references: the parallel masked form, and the state as one einsum, in the input
   dtype); shapes where the shape rule itself picks several segments (B=1, H=2, T=8192: 8 segments)
   and forced short segments with a partial last chunk. The seg_train variant is checked on o and
   every gradient (scripts/gpu_linear_triton.check_case). A variant is timed only if it passed.
2. Timing (do_bench medians, bf16, H=16, D=128, 131072 tokens per batch, T = 4096, 32768, 131072):
   prefill (final state written) for old / new / launch variants, with and without decay; train
   (forward + backward) for the default, old and seg_train; fla chunk_linear_attn (and
   chunk_simple_gla with decay) beside. 3. A per-kernel profile of one prefill at B=1 (old, new).
Writes $OUT/linear_prefill.json ($OUT defaults to the temp dir); prints a short table last with the
byte and FLOP floors of each form (bytes at 4.2 TB/s, FLOPs at 600 TFLOP/s; see impls/linear/NOTES.md,
"Prefill at small B*H" for the expected numbers). About 2-3 minutes; the dry run about 15 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

if "--dry-run" in sys.argv:  # the interpreter must be chosen before triton is imported
    os.environ["TRITON_INTERPRET"] = "1"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _gpu_common as _common  # noqa: E402  (scripts/_gpu_common.py)
import gpu_linear_triton as G  # noqa: E402  (lowp_forward, check_case, fa_rule, form_of, ensure_fla, poison)
import torch  # noqa: E402

import impls  # noqa: E402
from impls.linear.reference import decay_matrix  # noqa: E402
from impls.linear.triton import LinearTriton, LinearTritonConfig  # noqa: E402

DEV = "cuda"
DRY = False
LOWP = torch.bfloat16  # float32 in the dry run: bf16 in the interpreter gives garbage
BW, FLOPS = 4.2e12, 600e12
TOKENS, H, D = 131072, 16, 128


def variants(dry: bool) -> dict[str, LinearTritonConfig]:
    """Prefill variants: "old" the default form (seg=False), "new*" the segmented walker (seg=True).
    On the CPU (one 'SM') the shape rule picks one segment: the dry run forces short segments so that
    every kernel of the segmented path runs."""
    f = {"seg": True, **({"seg_chunks": 1} if dry else {})}
    return {
        "old": LinearTritonConfig(seg=False),
        "new": LinearTritonConfig(**f),
        "new-s2": LinearTritonConfig(seg_stages=2, **f),
        "new-bv32w4": LinearTritonConfig(fused_bv=32, fused_warps=4, **f),
        "new-bv32w4-s2": LinearTritonConfig(fused_bv=32, fused_warps=4, seg_stages=2, **f),
        "new-waves4": LinearTritonConfig(seg_waves=4, **f),
        "new-waves16": LinearTritonConfig(seg_waves=16, **f),
    }


def floors(path: str, T: int, B: int) -> dict:
    """Bytes and FLOPs of one prefill (forward + final state) per form, H=16, D=128, bf16, chunk 64.
    X = one (B, T, H, D) tensor. Two-pass: fwd_h reads k, v (each re-read by the other state
    blocks, caught by L2 at best) and writes the chunk states (B*H*NT*D*D bf16 = 2X), fwd_o reads
    q, k, v and the states, writes o: 10X. Walker with NS segments: pass 1 reads k, v of the first
    NS-1 segments, pass 3 reads q, k, v and writes o, plus the float32 segment states: ~6X.
    fla chunk_fwd_h + chunk_fwd_o: 10X like the two-pass form."""
    X = B * T * H * D * 2
    tok = B * T * H
    if path.startswith("walker"):
        NS = int(path.split("NS=")[1].split()[0])
        seg_states = B * H * NS * D * D * 4
        byt = 2 * X * (NS - 1) / NS + 4 * X + 3 * seg_states if NS > 1 else 4 * X
        # pass 3 per token: q S, q k^T (per 64-wide value block: 2 blocks), s v, k^T v; pass 1: k^T v
        flop = tok * (2 * D * D + 2 * 64 * D * 2 + 2 * 64 * D + 2 * D * D) + (tok * 2 * D * D if NS > 1 else 0)
    else:  # two-pass and fla
        byt = 10 * X
        flop = tok * 2 * D * D + tok * (2 * D * D + 2 * 64 * D * 2 + 2 * 64 * D)
    return {"bytes": byt, "flops": flop, "floor_ms": max(byt / BW, flop / FLOPS) * 1e3}


# ---------------------------------------------------------------------------------------------- checks
def lowp_state(k, v, decay):
    """Final state as one einsum in the input dtype (float32 accumulation on the GPU)."""
    B, T, Hh, _ = k.shape
    M = decay_matrix(decay.float() if decay is not None else None, B, T, Hh, k.device, torch.float32)
    w = M[..., -1, :].expand(B, Hh, T).to(k.dtype)
    return torch.einsum("bhs,bshd,bshe->bhde", w, k, v)


def check_prefill(impl: LinearTriton, B, T, Hh, Dd, dtype, use_decay, seed) -> dict:
    torch.manual_seed(seed)
    q, k, v = (torch.randn(B, T, Hh, Dd, device=DEV).to(dtype) for _ in range(3))
    decay = (-torch.rand(B, T, Hh, device=DEV) * 0.2) if use_decay else None
    ref = impls.get("linear/reference")
    rs = ref.init_state(B, Hh, Dd, T, device=DEV, dtype=torch.float64)
    o64 = ref.prefill(rs, q.double(), k.double(), v.double(), decay.double() if use_decay else None)
    olp = G.lowp_forward(q, k, v, decay, Dd ** -0.5)
    slp = lowp_state(k, v, decay)
    G.poison()
    st = impl.init_state(B, Hh, Dd, T, device=DEV, dtype=dtype)
    st.S.fill_(float("nan"))  # prefill must overwrite every entry
    o = impl.prefill(st, q, k, v, decay)
    n_sm = 1 if DRY else torch.cuda.get_device_properties(0).multi_processor_count
    row = {"what": "prefill", "B": B, "T": T, "H": Hh, "D": Dd, "dtype": str(dtype).split(".")[-1],
           "decay": use_decay, "path": G.form_of(impl.config, B * Hh, Dd, T, n_sm)}
    return G.fa_rule(row, ("o", "state"), (o, st.S), (olp, slp), (o64, rs.S))


def run_checks(cfgs: dict[str, LinearTritonConfig]) -> list[dict]:
    rows = []
    n_sm = 1 if DRY else torch.cuda.get_device_properties(0).multi_processor_count
    base = [(1, 8192, 2, 128), (2, 4000, 2, 128)] if not DRY else [(1, 200, 2, 128), (1, 260, 1, 64)]
    forced = LinearTritonConfig(seg=True, seg_chunks=3)  # segments of 3 chunks, partial last chunk (T=4000)
    cases = [("new", cfgs["new"], s, LOWP, dec) for s in base for dec in (False, True)]
    cases += [("new", cfgs["new"], base[0], dt, True) for dt in ((torch.float16, torch.float32) if not DRY else ())]
    cases += [("new seg_chunks=3", forced, base[1], LOWP, dec) for dec in (False, True)]
    cases += [("old", cfgs["old"], base[0], LOWP, dec) for dec in (False, True)]
    for name, cfg, shape, dt, dec in cases:
        try:
            r = check_prefill(LinearTriton(cfg), *shape, dt, dec, seed=len(rows))
            r["impl"] = name
        except Exception:  # noqa: BLE001
            r = {"impl": name, "shape": shape, "ok": False, "error": traceback.format_exc()[-1200:]}
        rows.append(r)
    # the opt-in training forward through the walker: o and every gradient, FA rule
    seg_train = LinearTritonConfig(seg_train=True, **({"seg_chunks": 1} if DRY else {}))
    for dec in (False, True):
        shape = (1, 128, 2, 64) if DRY else (1, 4096, 2, 128)
        try:
            r = G.check_case(*shape, LOWP, dec, seed=50 + dec, impl=LinearTriton(seg_train))
            r["what"], r["impl"] = "train", "seg_train"
            r["path"] = G.form_of(seg_train, shape[0] * shape[2], shape[3], shape[1], n_sm, train=True)
        except Exception:  # noqa: BLE001
            r = {"what": "train", "impl": "seg_train", "ok": False, "error": traceback.format_exc()[-1200:]}
        rows.append(r)
    return rows


def variant_ok(cfg: LinearTritonConfig) -> dict:
    """The check every timed variant passes first: bf16 prefill with decay, shape-rule segments."""
    shape = (1, 200, 2, 128) if DRY else (1, 8192, 2, 128)
    return check_prefill(LinearTriton(cfg), *shape, LOWP, True, seed=77)


# ---------------------------------------------------------------------------------------------- timing
def bench(fn, ms_hint: float) -> float:
    return _common.bench(fn, ms_hint, dry=DRY)


def time_T(T: int, cfgs: dict[str, LinearTritonConfig], fla_reason: str | None, ok: dict[str, bool]) -> list[dict]:
    B = TOKENS // T
    n_sm = 1 if DRY else torch.cuda.get_device_properties(0).multi_processor_count
    torch.manual_seed(T)
    q, k, v, do = (torch.randn(B, T, H, D, device=DEV, dtype=LOWP) for _ in range(4))
    decay = -torch.rand(B, T, H, device=DEV) * 0.2
    rows = []

    def add(impl, mode, dec, ms, path="", **extra):
        fl = floors(path, T, B) if path else {}
        rows.append({"impl": impl, "mode": mode, "decay": dec, "T": T, "B": B, "ms": ms, "path": path, **fl, **extra})

    for name, cfg in cfgs.items():
        if not ok.get(name, False):
            add(f"linear/triton[{name}]", "prefill", False, None, reason="failed its correctness check")
            continue
        impl = LinearTriton(cfg)
        st = impl.init_state(B, H, D, T, device=DEV, dtype=LOWP)
        for dec in ((False, True) if name in ("old", "new") else (False,)):
            def pf(dec=dec, impl=impl, st=st):
                st.pos = 0
                impl.prefill(st, q, k, v, decay if dec else None)
            add(f"linear/triton[{name}]", "prefill", dec, bench(pf, 2.0), G.form_of(cfg, B * H, D, T, n_sm))
    train_cfgs = {"old": cfgs["old"], "new": cfgs["new"],
                  "seg_train": LinearTritonConfig(seg_train=True, **({"seg_chunks": 1} if DRY else {}))}
    for name, cfg in train_cfgs.items():
        impl = LinearTriton(cfg)
        for dec in (False, True):
            leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
            dl = decay.clone().requires_grad_(True) if dec else None
            ins = leaves + ([dl] if dl is not None else [])

            def fn(impl=impl, leaves=leaves, dl=dl, ins=ins):
                return torch.autograd.grad(impl.forward(*leaves, decay=dl), ins, do)
            add(f"linear/triton[{name}]", "train", dec, bench(fn, 6.0), G.form_of(cfg, B * H, D, T, n_sm, train=True))
    if fla_reason is None:
        from fla.ops.linear_attn import chunk_linear_attn
        from fla.ops.simple_gla import chunk_simple_gla

        with torch.no_grad():
            add("fla chunk_linear_attn", "prefill", False, bench(
                lambda: chunk_linear_attn(q, k, v, scale=D ** -0.5, normalize=False, output_final_state=True), 2.0),
                "fla")
            try:
                add("fla chunk_simple_gla", "prefill", True, bench(
                    lambda: chunk_simple_gla(q, k, v, g=decay, scale=D ** -0.5, output_final_state=True), 2.0), "fla")
            except Exception as exc:  # noqa: BLE001
                add("fla chunk_simple_gla", "prefill", True, None, reason=f"{type(exc).__name__}: {str(exc)[:200]}")
        leaves = [x.clone().requires_grad_(True) for x in (q, k, v)]
        fn = lambda: torch.autograd.grad(chunk_linear_attn(*leaves, scale=D ** -0.5, normalize=False)[0], leaves, do)  # noqa: E731
        add("fla chunk_linear_attn", "train", False, bench(fn, 8.0))
    return rows


def profile_prefill(cfgs: dict[str, LinearTritonConfig]) -> dict:
    """CUDA time per kernel of one prefill at B=1, T=131072 (mean over 5 calls)."""
    from torch.profiler import ProfilerActivity, profile

    B, T = 1, TOKENS
    q, k, v = (torch.randn(B, T, H, D, device=DEV, dtype=torch.bfloat16) for _ in range(3))
    out = {}
    for name in ("old", "new"):
        impl = LinearTriton(cfgs[name])
        st = impl.init_state(B, H, D, T, device=DEV, dtype=torch.bfloat16)
        for _ in range(3):
            st.pos = 0  # prefill needs an empty state (the H200 run of 2026-11-29 lost its profile here)
            impl.prefill(st, q, k, v)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                st.pos = 0
                impl.prefill(st, q, k, v)
            torch.cuda.synchronize()
        per = {}
        for e in prof.key_averages():
            us = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0.0)
            if us:
                per[e.key[:60]] = us / 5 / 1e3
        out[name] = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="T = 131072 only")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="CPU interpreter, tiny shapes; times nothing")
    args = ap.parse_args()
    global DEV, DRY, TOKENS, H, LOWP
    if args.dry_run:
        DEV, DRY, TOKENS, H, LOWP = "cpu", True, 256, 2, torch.float32
        torch.cuda.synchronize = lambda *a: None  # type: ignore[assignment]
    G.DEV, G.DRY = DEV, DRY  # the helpers borrowed from gpu_linear_triton.py read these
    out_dir = os.environ.get("OUT", tempfile.gettempdir())
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    res: dict = {"env": _common.env_info(ROOT, DRY, sm_count=True)}
    fla_reason = "dry run" if DRY else G.ensure_fla()
    res["fla"] = fla_reason or "ok"

    def dump():
        with open(os.path.join(out_dir, "linear_prefill.json"), "w") as fh:
            json.dump(res, fh, indent=1, default=str)

    cfgs = variants(DRY)
    checks = run_checks(cfgs)
    ok = {}
    for name, cfg in cfgs.items():
        try:
            r = variant_ok(cfg)
        except Exception:  # noqa: BLE001
            r = {"ok": False, "error": traceback.format_exc()[-800:]}
        r["impl"] = f"variant {name}"
        checks.append(r)
        ok[name] = bool(r["ok"]) or DRY
    res["checks"] = checks
    dump()
    print(f"checks done in {time.time() - t0:.0f}s", flush=True)

    timing: list[dict] = []
    Ts = (64, 128) if DRY else (TOKENS,) if args.quick else (4096, 32768, TOKENS)
    for T in Ts:
        try:
            timing += time_T(T, cfgs, fla_reason, ok)
        except Exception:  # noqa: BLE001
            timing.append({"T": T, "error": traceback.format_exc()[-1500:]})
        res["timing"] = timing
        dump()
        print(f"T={T} timed at {time.time() - t0:.0f}s", flush=True)
    if not DRY and not args.no_profile:
        try:
            res["profile_b1"] = profile_prefill(cfgs)
        except Exception:  # noqa: BLE001
            res["profile_b1"] = {"error": traceback.format_exc()[-800:]}
    res["wall_s"] = time.time() - t0
    dump()

    # ---- short table last
    print(f"\nfla: {res['fla']}")
    print("correctness (rel err vs float64; FA rule: <= 2x the low-precision reference + 1e-5):")
    for c in checks:
        if "error" in c:
            print(f"  BAD {c.get('impl')} {c.get('shape', '')}: {c['error'][-300:]}")
            continue
        worst = G.worst_ratio(c)
        print(f"  {'ok ' if c['ok'] else 'BAD'} {c.get('what', 'prefill'):7s} {c['impl']:20s} {c['dtype']:8s} "
              f"B={c['B']} T={c['T']:5d} H={c['H']} decay={c['decay']!s:5s} {c.get('path', ''):20s} "
              f"o {c['o']['err']:.2e} (ref {c['o']['err_lowp_ref']:.2e})  worst {worst[0]:.2f}x ({worst[1]})")
    if "profile_b1" in res:
        print("profile, prefill B=1 T=131072, ms per call:")
        for name, per in res["profile_b1"].items():
            top = "; ".join(f"{k} {v:.3f}" for k, v in list(per.items())[:6]) if isinstance(per, dict) else str(per)
            print(f"  {name}: {top}")

    def line(r: dict) -> str:
        fl = f" floor {r['floor_ms']:.2f} ({r['bytes'] / 1e9:.2f} GB)" if "floor_ms" in r else ""
        why = f" ({r['reason'][:80]})" if r.get("reason") else ""
        return (f"{r['mode']:7s} T={r['T']:<6d} B={r['B']:<3d} decay={r['decay']!s:5s} {r['impl']:30s} "
                f"{G.ms_cell(r):>7s} {r['path']:22s}{fl}{why}")
    G.print_timing("timing, ms (median); floor = max(bytes / 4.2 TB/s, FLOPs / 600 TF/s) of the form:", timing, line)
    print(f"wall {res['wall_s']:.0f}s")


if __name__ == "__main__":
    main()
