"""Checks the harness's GPU path on a real GPU (about 1-2 minutes on an H200), before a long sweep:

1. ceilings: bf16 matmul rate and copy bandwidth, as every run measures them;
2. the timer against triton.testing.do_bench (median) on a matmul and on causal SDPA (within 5%);
3. the L2 flush: a 16 MiB copy timed with and without it (with it must not be faster);
4. decode by CUDA-graph replay vs eager events (full/sdpa-flash and rat/triton when available),
   compared with the anchors (SDPA decode at T=4096, B=64: 0.477 ms);
5. an out-of-memory case becomes an 'oom' row, its memory is returned, and the next case runs;
6. NVML: device info, and power/energy sampled during a case.

    python scripts/gpu_bench_check.py            # writes $OUT/gpu_bench_check.json when OUT is set
Prints a short table last.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from ratbench.bench import device as D
from ratbench.bench import runner, timing
from ratbench.bench.results import load
from ratbench.bench.sweep import SweepSpec

RESULTS: list[dict] = []


def record(name: str, ok: bool | None, detail: str, **data: object) -> None:
    RESULTS.append({"check": name, "ok": ok, "detail": detail, **data})
    print(f"[{'PASS' if ok else ('INFO' if ok is None else 'FAIL')}] {name}: {detail}", flush=True)


def check(fn):  # type: ignore[no-untyped-def]
    def wrapped() -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failed check must not hide the others
            record(fn.__name__, False, f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    return wrapped


@check
def ceilings() -> None:
    c = D.measure_ceilings("cuda")
    record("ceilings", None, f"bf16 matmul {c.matmul_tflops:.0f} TFLOP/s, copy {c.copy_gbps:.0f} GB/s "
                             "(anchors: 800, 4240)", **c.__dict__)


@check
def timer_vs_do_bench() -> None:
    from triton.testing import do_bench

    pol = timing.TimingPolicy(repeats=100, min_repeats=10, warmup=3, budget_s=1.0, flush_l2=True)
    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    q, k, v = (torch.randn(8, 16, 4096, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    fns = {"matmul 4096^3 bf16": lambda: a @ a,
           "sdpa causal B8 T4096": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)}
    for name, fn in fns.items():
        ours = timing.measure(fn, lambda: None, "cuda", pol).median
        ref = do_bench(fn, warmup=25, rep=200, return_mode="median")
        ratio = ours / ref
        record(f"timer vs do_bench: {name}", abs(ratio - 1) < 0.05,
               f"ours {ours:.4f} ms, do_bench {ref:.4f} ms, ratio {ratio:.3f}", ours_ms=ours, do_bench_ms=ref)


@check
def l2_flush() -> None:
    x = torch.empty(16 << 20, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    base = {"repeats": 200, "min_repeats": 50, "warmup": 5, "budget_s": 0.5}
    hot = timing.measure(lambda: y.copy_(x), lambda: None, "cuda", timing.TimingPolicy(flush_l2=False, **base))
    cold = timing.measure(lambda: y.copy_(x), lambda: None, "cuda", timing.TimingPolicy(flush_l2=True, **base))
    record("L2 flush", cold.median >= hot.median * 0.98,
           f"16 MiB copy: {hot.median * 1e3:.1f} us L2-hot, {cold.median * 1e3:.1f} us after a flush",
           hot_ms=hot.median, cold_ms=cold.median)


def _sweep(tmp: str, **kw: object) -> object:
    base = {"modes": ["decode"], "seq_lens": [4096], "heads": [16], "head_dims": [128], "batches": [64],
            "tokens": None, "chunk_sizes": [16], "dtype": "bfloat16", "device": "cuda", "repeats": 100,
            "min_repeats": 10, "warmup": 2, "case_budget_s": 0.5}
    base.update(kw)
    r, cases, done = runner.start(SweepSpec(**base), tmp, command="gpu_bench_check", measure_ceilings=False)
    r.run(cases, skip=done)
    return load(tmp)


@check
def decode_graphs() -> None:
    from ratbench import impls

    names = [n for n in ("full/sdpa-flash", "rat/triton") if n in impls.names()]
    for graphs in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            df = _sweep(tmp, impls=names, cuda_graphs=graphs)
            for _, r in df.iterrows():
                ok = r.status == "ok" and (r.timer == "cuda-graph") == graphs
                record(f"decode {r.impl} graphs={graphs}", ok if r.status != "unavailable" else None,
                       f"{r.status}: {r.ms_median if r.status == 'ok' else r.reason} ms, timer {r.timer}, "
                       f"note {r.timer_note}, state/seq {r.state_bytes_per_seq} B (anchor SDPA 0.477 ms)",
                       ms=r.ms_median, timer=r.timer)


@check
def oom_then_next_case() -> None:
    timing._L2Flusher.flush()  # the harness's own buffer, allocated once per process
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    st = {}
    # the reference materialises B*H*T^2 float32 scores: 275 GB at T = 64k, H = 16 -> OOM; then a case that fits
    for T in (65536, 2048):
        with tempfile.TemporaryDirectory() as tmp:
            df = _sweep(tmp, impls=["full/reference"], modes=["prefill"], seq_lens=[T], batches=[1],
                        check_accuracy=False)
            st.update(dict(zip(df.seq_len, df.status)))
            if T == 65536:
                reason = str(df.reason.iloc[0])[:120]
    after = torch.cuda.memory_allocated()
    ok = st.get(65536) == "oom" and st.get(2048) == "ok" and after - before < (64 << 20)
    record("OOM recorded, memory freed, sweep continues", ok,
           f"statuses {st} ({reason}); allocated before {before >> 20} MiB, after {after >> 20} MiB")


@check
def nvml() -> None:
    nv = D.Nvml.open(0)
    if nv is None:
        record("NVML", False, "NVML unavailable (nvidia-ml-py missing or no driver)")
        return
    info = nv.info()
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    with D.NvmlSampler(nv, interval_s=0.02) as s:
        t0 = time.time()
        while time.time() - t0 < 1.0:
            a @ a
        torch.cuda.synchronize()
    summ = s.summary()
    record("NVML", summ.get("power_w_mean") is not None,
           f"{info.get('name')}, driver {info.get('driver')}, power {summ.get('power_w_mean')} W mean, "
           f"energy {summ.get('energy_j')} J over 1 s of matmuls, throttle {summ.get('throttle')}",
           info=info, summary=summ)


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA GPU visible", file=sys.stderr)
        return 2
    for fn in (ceilings, timer_vs_do_bench, l2_flush, decode_graphs, oom_then_next_case, nvml):
        fn()
    out = os.environ.get("OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "gpu_bench_check.json").write_text(json.dumps(RESULTS, indent=2, default=str))
    print("\n| check | result | detail |\n|---|---|---|")
    for r in RESULTS:
        res = "pass" if r["ok"] else ("info" if r["ok"] is None else "FAIL")
        print(f"| {r['check']} | {res} | {r['detail'][:150]} |")
    return 0 if all(r["ok"] is not False for r in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
