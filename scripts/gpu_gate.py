"""Evidence for the regression gate on the GPU (issue 6): A/A false alarms and detection of a real
slowdown of rat/train at T = 32k. Writes everything under $OUT (default reports/runs/gpu-gate).

    python scripts/gpu_gate.py baseline     # the paper's op-level grid as a gate baseline ($OUT/h200-op;
                                            # commit it as reports/baselines/h200-op): <= 9.5 min (preset limit)
    python scripts/gpu_gate.py evidence     # about 6-9 min: see below; --aa 20 --detect 10 --budget 540

``evidence``, in one process (kernels compile once):
1. a gate baseline of 9 cases at T = 32k (rat/triton, linear/triton, full/sdpa-cudnn; train, prefill,
   decode; H 16, D 128, bf16, 128k tokens per batch, decode batch 64);
2. ``--aa`` A/A gate runs against it (5 rounds x 6 samples per case): false alarms at 5% and the
   calibration table (bench.gate.calibration_summary: against the baseline and within the session);
3. for each variant of scripts/gate_variants.py (rat/triton with one launch parameter made worse,
   registered in place of rat/triton), ``--detect`` gate runs of the rat/triton train T=32k case,
   interleaved with as many A/A runs of it; the variant's true slowdown is the ratio of the pooled
   medians of all its samples to all A/A samples (hundreds each), next to how often the gate flagged it
   at thresholds 2-5% (a rule "whole interval above 1 + t" cannot catch a true 5% slowdown 9 times in
   10 at t = 5%: its interval straddles 1.05; the issue's target needs t below the effect, e.g. 3%,
   which the A/A runs must then show to be quiet).
Stops starting runs after ``--budget`` seconds (the A/A part after half of it when variants follow),
writes what it has; prints a short table last.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

RAT_KEY_PREFIX = "rat/triton|train|op|B4|T32768|"


def baseline(out: Path) -> int:
    cmd = [sys.executable, "run_bench.py", "--preset", "paper", "--device", "cuda", "--no-progress", "--no-figures",
           "--out", str(out / "h200-op")]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def evidence(out: Path, n_aa: int, n_detect: int, budget: float, variants: list[str]) -> int:
    from ratbench.bench import compare as CMP
    from ratbench.bench import gate as G
    from ratbench.bench import results as R
    from ratbench.bench import runner
    from ratbench.bench.sweep import SweepSpec

    t0 = time.perf_counter()
    spec = SweepSpec(impls=["rat/triton", "linear/triton", "full/sdpa-cudnn"], modes=["train", "prefill", "decode"],
                     seq_lens=[32768], chunk_sizes=[16], heads=[16], head_dims=[128], tokens=131072,
                     decode_batches=[64], dtype="bfloat16", device="cuda", repeats=30, min_repeats=30,
                     case_budget_s=0.0, warmup=2)
    base = out / "baseline"
    r, cases, _ = runner.start(spec, base, command="scripts/gpu_gate.py evidence")
    rows = r.run(cases)
    runner.finish(base, rows)
    print(f"baseline: {len(rows)} cases, {sum(x.status == 'ok' for x in rows)} ok, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    gcfg = G.GateConfig(rounds=5, samples_per_round=6)
    ccfg = CMP.CompareConfig()
    aa: list = []
    run_s: list[float] = []
    # with variants to detect, the A/A part may use half the budget (the rest is theirs); without, all of it
    aa_budget = budget * (0.5 if n_detect and variants else 1.0)
    for i in range(n_aa):
        if time.perf_counter() - t0 > aa_budget:
            print(f"A/A: time budget reached after {i} runs", flush=True)
            break
        t1 = time.perf_counter()
        aa.append(G.gate(base, out / f"aa{i:02d}", gcfg, ccfg))
        run_s.append(time.perf_counter() - t1)
        print(f"A/A {i + 1}/{n_aa}: {aa[-1].verdict} ({aa[-1].reason}), {run_s[-1]:.1f} s", flush=True)
    summary: dict = {"aa_runs": len(aa), "aa_false_alarms_5pct": sum(v.verdict == "fail" for v in aa),
                     "aa_unusable": sum(v.verdict == "unusable" for v in aa),
                     "gate_run_s_median": statistics.median(run_s) if run_s else None}
    if aa:
        cal = G.calibration_summary(aa)
        cal["session"] = G.calibration_summary([CMP.compare_runs(out / "aa00", out / f"aa{i:02d}", ccfg)
                                                for i in range(1, len(aa))])
        (out / "calibration.md").write_text(G.calibration_markdown(cal, f"{len(aa)} A/A gate runs of {len(cases)} "
                                                                   "cases at T = 32k"), encoding="utf-8")
        summary["calibration"] = cal

    # detection: the rat/triton train T=32k case alone
    rat_rows = [x for x in R.read_rows(base) if x["key"].startswith(RAT_KEY_PREFIX) and x["status"] == "ok"]
    if not rat_rows:
        print("no ok rat/triton train T=32k row in the baseline: no detection runs", flush=True)
    else:
        rb = out / "rat-baseline"
        rb.mkdir(parents=True, exist_ok=True)
        R.write_meta(rb, R.read_meta(base))
        (rb / R.RESULTS).write_text(json.dumps(rat_rows[0]) + "\n", encoding="utf-8")
        det = {}
        for name in variants:
            flagged, aa_flags, var_samples, aa_samples, done = 0, 0, [], [], 0
            lows_var: list[float] = []
            lows_aa: list[float] = []
            for i in range(n_detect):
                if time.perf_counter() - t0 > budget:
                    print(f"{name}: time budget reached after {i} runs", flush=True)
                    break
                G.register_impls([("rat/triton", "ratbench.impls.rat.triton:RATTriton")])
                va = G.gate(rb, out / f"det-{name}-aa{i:02d}", gcfg, ccfg)
                G.register_impls([("rat/triton", f"gate_variants:{name}")])
                vb = G.gate(rb, out / f"det-{name}-{i:02d}", gcfg, ccfg)
                G.register_impls([("rat/triton", "ratbench.impls.rat.triton:RATTriton")])
                aa_flags += va.verdict == "fail"
                flagged += vb.verdict == "fail"
                done += 1
                aa_samples += R.read_rows(out / f"det-{name}-aa{i:02d}")[0].get("samples_ms") or []
                var_samples += R.read_rows(out / f"det-{name}-{i:02d}")[0].get("samples_ms") or []
                c = vb.cases[0]
                lows_var.append(c.ci_low or 0.0)
                lows_aa.append(va.cases[0].ci_low or 0.0)
                print(f"{name} {i + 1}/{n_detect}: {vb.verdict} ratio {c.ratio} [{c.ci_low}, {c.ci_high}]; "
                      f"A/A {va.verdict}", flush=True)
            effect = (statistics.median(var_samples) / statistics.median(aa_samples)
                      if var_samples and aa_samples else None)
            # the interval does not depend on the threshold: the verdict at other thresholds follows from it
            at = {f"{t:.3f}": {"flagged": sum(lo > 1 + t for lo in lows_var), "aa_false_alarms":
                               sum(lo > 1 + t for lo in lows_aa)} for t in (0.02, 0.03, 0.04, 0.05)}
            det[name] = {"runs": done, "flagged": flagged, "aa_false_alarms": aa_flags, "true_slowdown": effect,
                         "by_threshold": at}
        summary["detection"] = det
    summary["total_s"] = time.perf_counter() - t0
    (out / "gate_evidence.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nA/A: {summary['aa_false_alarms_5pct']} false alarms in {summary['aa_runs']} gate runs "
          f"(threshold 5%); one gate run of {len(cases)} cases: {summary['gate_run_s_median']} s")
    print("| variant | true slowdown (pooled medians) | runs | flagged / A/A alarms at t = 2%, 3%, 4%, 5% |")
    for name, d in summary.get("detection", {}).items():
        eff = "-" if d["true_slowdown"] is None else f"{(d['true_slowdown'] - 1) * 100:+.1f}%"
        by = ", ".join(f"{x['flagged']}/{x['aa_false_alarms']}" for x in d["by_threshold"].values())
        print(f"| {name} | {eff} | {d['runs']} | {by} |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["baseline", "evidence"])
    ap.add_argument("--aa", type=int, default=20, help="A/A gate runs (default 20)")
    ap.add_argument("--detect", type=int, default=10, help="gate runs per variant (default 10)")
    ap.add_argument("--budget", type=float, default=540.0, help="start no run after this many seconds (default 540)")
    ap.add_argument("--variants", default="RATDkvBM32,RATDqTile64,RATDkvStages2",
                    help="classes of scripts/gate_variants.py, e.g. RATDkvStages2")
    args = ap.parse_args()
    out = Path(os.environ.get("OUT", ROOT / "reports" / "runs" / "gpu-gate"))
    out.mkdir(parents=True, exist_ok=True)
    import torch

    if not torch.cuda.is_available():
        print("scripts/gpu_gate.py needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.step == "baseline":
        return baseline(out)
    return evidence(out, args.aa, args.detect, args.budget, [v.strip() for v in args.variants.split(",") if v.strip()])


if __name__ == "__main__":
    sys.exit(main())
