"""The perf-regression gate: compare statistics on synthetic samples, the CLI's exit codes, the gate
end to end on the CPU with a test-only implementation (A/A passes, a 1.5x slower copy fails), the
calibration arithmetic, and the static kernel gate (one small kernel compiled for sm_90)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ratbench.bench import compare as CMP
from ratbench.bench import gate as G
from ratbench.bench import results as R
from ratbench.bench import static_gate as S
from ratbench.bench.sweep import Case, SweepSpec

ROOT = Path(__file__).resolve().parents[2]


def _meta(name: str = "Test CPU", device: str = "cpu", **spec_kw) -> dict:
    spec = SweepSpec(device=device, **spec_kw)
    return {"device": {"device": device, "name": name, "torch": "2.13.0", "triton": "3.7.1"},
            "spec": spec.to_dict(), "ceilings": None}


def _write_run(d: Path, samples: dict[Case, list[float]], meta: dict | None = None, status: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    R.write_meta(d, meta or _meta())
    for case, s in samples.items():
        st = (status or {}).get(case, "ok")
        if st == "ok":
            row = R.Row.for_case(case, "ok", ms_median=float(np.median(s)), samples_ms=list(s), n_samples=len(s),
                                 timer="wall-clock", timed_call="prefill")
        else:
            row = R.Row.for_case(case, st, reason="boom")
        R.append_row(d / R.RESULTS, row)
    return d


def _noisy(center: float, n: int, rel: float, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(center * (1 + rel * rng.standard_normal(n)).clip(0.5, None))


# ----- statistics ---------------------------------------------------------------------------------
def test_ten_percent_slowdown_with_low_noise_is_a_regression():
    base, new = _noisy(1.0, 30, 0.01, 1), _noisy(1.10, 30, 0.01, 2)
    ratio, lo, hi = CMP.median_ratio_ci(base, new, seed=3)
    assert 1.08 < ratio < 1.12 and lo < ratio < hi
    assert CMP.classify(ratio, lo, hi, 0.05) == CMP.REGRESSION


def test_aa_is_not_flagged_and_noise_makes_it_inconclusive_not_failing():
    cfg = CMP.CompareConfig()
    for seed in range(20):  # A/A: same distribution, 20 different draws: never a regression
        b = {"key": "k", "samples_ms": _noisy(1.0, 30, 0.02, seed)}
        n = {"key": "k", "samples_ms": _noisy(1.0, 30, 0.02, 100 + seed)}
        assert CMP.compare_case(b, n, cfg).status in (CMP.UNCHANGED, CMP.INCONCLUSIVE)
    # very noisy A/A (30% per sample, 10 samples a side): false alarms stay rare (measured: 2 in 100)
    alarms = sum(CMP.compare_case({"key": f"k{s}", "samples_ms": _noisy(1.0, 10, 0.3, s)},
                                  {"key": f"k{s}", "samples_ms": _noisy(1.0, 10, 0.3, 1000 + s)}, cfg).status
                 == CMP.REGRESSION for s in range(100))
    assert alarms <= 5


def test_improvement_and_too_few_samples_and_determinism():
    cfg = CMP.CompareConfig()
    b = {"key": "k", "samples_ms": _noisy(1.0, 30, 0.01, 1)}
    fast = {"key": "k", "samples_ms": _noisy(0.8, 30, 0.01, 2)}
    assert CMP.compare_case(b, fast, cfg).status == CMP.IMPROVEMENT
    few = {"key": "k", "samples_ms": [2.0, 2.0, 2.0]}
    r = CMP.compare_case(b, few, cfg)
    assert r.status == CMP.INCONCLUSIVE and "fewer than" in r.note
    r1, r2 = CMP.compare_case(b, fast, cfg), CMP.compare_case(b, fast, cfg)
    assert (r1.ci_low, r1.ci_high) == (r2.ci_low, r2.ci_high)  # fixed seed per case key
    with pytest.raises(ValueError, match="positive"):
        CMP.median_ratio_ci([1.0, -1.0], [1.0])
    with pytest.raises(ValueError, match="threshold"):
        CMP.CompareConfig(threshold=1.5)


def _cases(n: int) -> list[Case]:
    return [Case(impl="full/reference", mode="prefill", batch=2, seq_len=64 * (i + 1), heads=2, head_dim=32,
                 dtype="float32", device="cpu") for i in range(n)]


def test_compare_cli_exit_codes_and_outputs(tmp_path, capsys):
    from ratbench.bench import cli as run_bench

    c = _cases(4)
    base = _write_run(tmp_path / "base", {x: _noisy(1.0 + i, 30, 0.01, i) for i, x in enumerate(c[:3])})
    same = _write_run(tmp_path / "same", {x: _noisy(1.0 + i, 30, 0.01, 50 + i) for i, x in enumerate(c[:3])})
    assert run_bench.main(["compare", str(base), str(same)]) == 0
    assert (same / "compare.md").exists()
    v = json.loads((same / "compare.json").read_text())
    assert v["verdict"] == "pass" and v["counts"].get("regression", 0) == 0
    # one case 10% slower, one case missing, one new case, one faster
    slow = _write_run(tmp_path / "slow", {c[0]: _noisy(1.10, 30, 0.01, 7), c[1]: _noisy(1.6, 30, 0.01, 8),
                                          c[3]: _noisy(4.0, 30, 0.01, 9)})
    assert run_bench.main(["compare", str(base), str(slow)]) == 1
    v = json.loads((slow / "compare.json").read_text())
    st = {x["key"]: x["status"] for x in v["cases"]}
    assert st[c[0].key] == "regression" and st[c[1].key] == "improvement"
    assert st[c[2].key] == "missing" and st[c[3].key] == "new"
    md = (slow / "compare.md").read_text()
    assert "FAIL" in md and "regression" in md
    # improvements fail only on request (a stale baseline)
    fast = _write_run(tmp_path / "fast", {c[0]: _noisy(0.7, 30, 0.01, 1)})
    assert run_bench.main(["compare", str(base), str(fast)]) == 0
    assert run_bench.main(["compare", str(base), str(fast), "--fail-on-improvement"]) == 1


def test_compare_refuses_mismatched_runs(tmp_path, capsys):
    from ratbench.bench import cli as run_bench

    c = _cases(1)
    base = _write_run(tmp_path / "base", {c[0]: _noisy(1.0, 30, 0.01, 1)})
    other = _write_run(tmp_path / "other", {c[0]: _noisy(1.0, 30, 0.01, 2)}, meta=_meta(name="Other CPU"))
    assert run_bench.main(["compare", str(base), str(other)]) == 2
    assert "device name" in capsys.readouterr().err
    proto = _write_run(tmp_path / "proto", {c[0]: _noisy(1.0, 30, 0.01, 2)},
                       meta=_meta(name="GPU", device="cuda", flush_l2=False))
    base_gpu = _write_run(tmp_path / "bgpu", {c[0]: _noisy(1.0, 30, 0.01, 1)}, meta=_meta(name="GPU", device="cuda"))
    with pytest.raises(CMP.MismatchError, match="L2 flush"):
        CMP.compare_runs(base_gpu, proto)
    (tmp_path / "nometa").mkdir()
    (tmp_path / "nometa" / R.RESULTS).write_text((base / R.RESULTS).read_text())
    assert run_bench.main(["compare", str(base), str(tmp_path / "nometa")]) == 2


def test_broken_and_unusable_cases(tmp_path):
    c = _cases(2)
    base = _write_run(tmp_path / "base", {x: _noisy(1.0, 30, 0.01, i) for i, x in enumerate(c)})
    new = _write_run(tmp_path / "new", {c[0]: [], c[1]: []}, status={c[0]: "error", c[1]: "unavailable"})
    v = CMP.compare_runs(base, new)
    assert v.verdict == "unusable" and v.exit_code == 2
    st = {x.key: x.status for x in v.cases}
    assert st == {c[0].key: CMP.BROKEN, c[1].key: CMP.UNUSABLE}


# ----- calibration arithmetic ---------------------------------------------------------------------
def test_detectable_slowdown_follows_from_the_interval():
    # an A/A interval starting at 0.98 needs (1 + s) * 0.98 > 1.05: s > 7.14%
    assert G.detectable_slowdown([0.98] * 10, 0.05) == pytest.approx(1.05 / 0.98 - 1)
    # 90% of runs: the 9th smallest need of 10
    lows = [1.0] * 9 + [0.5]
    assert G.detectable_slowdown(lows, 0.05) == pytest.approx(0.05)
    # and it is what injecting the slowdown into the samples gives
    base, new = _noisy(1.0, 40, 0.02, 1), _noisy(1.0, 40, 0.02, 2)
    _, lo, _ = CMP.median_ratio_ci(base, new, seed=9)
    s = G.detectable_slowdown([lo], 0.05)
    _, lo2, _ = CMP.median_ratio_ci(base, [x * (1 + s + 1e-3) for x in new], seed=9)
    _, lo3, _ = CMP.median_ratio_ci(base, [x * (1 + s - 1e-3) for x in new], seed=9)
    assert lo2 > 1.05 > lo3


# ----- the gate end to end on the CPU -------------------------------------------------------------
@pytest.fixture
def gate_impl():
    """full/test-gate registered as WorkFull; ``swap(cls)`` re-registers it (a code change)."""
    from ratbench import impls
    from ratbench.impls import registry

    name = "full/test-gate"

    def swap(target: str) -> None:
        registry._REGISTRY.pop(name, None)
        registry._CLASSES.pop(name, None)
        impls.register(name, target)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a loaded box, OpenMP threads waiting for each other dominate the timings
    swap("gate_fakes:WorkFull")
    yield swap
    torch.set_num_threads(threads)
    registry._REGISTRY.pop(name, None)
    registry._CLASSES.pop(name, None)


def test_gate_end_to_end_aa_passes_and_slowed_copy_fails(tmp_path, gate_impl):
    from ratbench.bench import runner

    spec = SweepSpec(impls=["full/test-gate"], modes=["prefill"], seq_lens=[256], batches=[2], heads=[2],
                     head_dims=[32], device="cpu", repeats=20, min_repeats=20, case_budget_s=0.0)
    r, cases, _ = runner.start(spec, tmp_path / "base", command="test", measure_ceilings=False)
    rows = r.run(cases)
    assert [x.status for x in rows] == ["ok"]
    gcfg = G.GateConfig(rounds=4, samples_per_round=6)
    ccfg = CMP.CompareConfig(threshold=0.1)  # a shared CPU is noisy: the test asks for 1.5x against 1.1
    v = G.gate(tmp_path / "base", tmp_path / "aa", gcfg, ccfg)
    assert v.verdict == "pass", v.reason
    assert (tmp_path / "aa" / "gate.md").exists() and (tmp_path / "aa" / G.ROUNDS_FILE).exists()
    pooled = R.read_rows(tmp_path / "aa")
    assert pooled[0]["n_samples"] == 24 and len(R.read_rows(tmp_path / "aa" / G.ROUNDS_FILE)) == 4
    # the command line, with the slowed copy registered in place of the baseline's implementation
    from ratbench.bench import cli as run_bench

    rc = run_bench.main(["gate", "--baseline", str(tmp_path / "base"), "--out", str(tmp_path / "slow"),
                         "--register", "full/test-gate=gate_fakes:SlowedWorkFull", "--rounds", "4",
                         "--samples-per-round", "6", "--threshold", "0.1", "--threads", "1", "--no-progress"])
    v = json.loads((tmp_path / "slow" / "gate.json").read_text())
    assert rc == 1 and v["verdict"] == "fail", v["reason"]
    c = v["cases"][0]
    assert c["status"] == CMP.REGRESSION and c["ratio"] > 1.15, c  # 1.5 on an idle box


def test_gate_stops_where_the_device_was_lost(tmp_path, gate_impl, monkeypatch):
    """A kernel's fault that CUDA keeps for the process (bench/runner.py): no later round runs, and the
    verdict is unusable (exit 2) with the case named and the rounds so far on disk."""
    from ratbench.bench import memory, runner

    spec = SweepSpec(impls=["full/test-gate"], modes=["prefill"], seq_lens=[64, 128], batches=[1], heads=[1],
                     head_dims=[16], device="cpu", repeats=3, min_repeats=3, case_budget_s=0.0)
    r, cases, _ = runner.start(spec, tmp_path / "base", command="test", measure_ceilings=False)
    assert [x.status for x in r.run(cases)] == ["ok", "ok"]
    monkeypatch.setattr(memory, "free", lambda device, collect=False: "AcceleratorError: CUDA error: an illegal "
                        "memory access was encountered")
    v = G.gate(tmp_path / "base", tmp_path / "new", G.GateConfig(rounds=3, samples_per_round=3), CMP.CompareConfig())
    assert v.exit_code == 2 and "the device was lost in full/test-gate prefill" in v.reason
    assert len(R.read_rows(tmp_path / "new" / G.ROUNDS_FILE)) == 1


def test_gate_unknown_implementation_is_unusable(tmp_path):
    c = Case(impl="full/not-registered", mode="prefill", batch=2, seq_len=64, heads=2, head_dim=32,
             dtype="float32", device="cpu")
    from ratbench.bench.device import describe

    base = _write_run(tmp_path / "base", {c: _noisy(1.0, 30, 0.01, 1)}, meta=_meta(name=describe("cpu").name))
    v = G.gate(base, tmp_path / "new", G.GateConfig(rounds=1), CMP.CompareConfig())
    assert v.exit_code == 2 and "--register" in v.reason


def test_gate_refuses_another_device(tmp_path):
    c = _cases(1)
    base = _write_run(tmp_path / "base", {c[0]: _noisy(1.0, 30, 0.01, 1)}, meta=_meta(name="Some Other CPU"))
    v = G.gate(base, tmp_path / "new", G.GateConfig(rounds=1), CMP.CompareConfig())
    assert v.exit_code == 2 and "device mismatch" in v.reason


# ----- static kernel gate -------------------------------------------------------------------------
def _report(**kw) -> dict:
    k = {"regs": 128, "stack": 0, "local": 0, "spills": 0, "shared": 65536, "HGMMA": 8, "HMMA": 0,
         "instructions": 500}
    k.update(kw)
    return {"triton": "x", "kernels": {"rat.fwd_kernel [BM=64] w4 s2 bf16 #0": k}}


def test_static_check_rules():
    base = _report()
    assert S.check(_report(), base) == ([], [])
    fails, _ = S.check(_report(spills=12, stack=64), base)
    assert any("new spills" in f for f in fails)
    fails, _ = S.check(_report(HGMMA=0), base)
    assert any("lost HGMMA" in f for f in fails)
    fails, _ = S.check(_report(shared=S.SMEM_LIMIT + 1), base)
    assert any("shared memory" in f for f in fails)
    fails, notes = S.check(_report(regs=168), base)
    assert not fails and any("registers 128 -> 168" in n for n in notes)
    fails, _ = S.check({"triton": "x", "kernels": {"k": {"error": "boom"}}}, None)
    assert fails
    # every HGMMA its own wgmma group (ptxas serialized the pipeline) where the baseline's products had one each
    piped = _report(HGMMA_gsb0=2)
    fails, _ = S.check(_report(HGMMA_gsb0=8), piped)
    assert any("serialized" in f for f in fails)
    assert S.check(_report(HGMMA_gsb0=8), _report(HGMMA_gsb0=8)) == ([], [])
    assert S.check(_report(HGMMA_gsb0=2), piped) == ([], [])
    assert not S.serialized(_report(HGMMA=1, HGMMA_gsb0=1)["kernels"]["rat.fwd_kernel [BM=64] w4 s2 bf16 #0"])
    # wgmma descriptors that ptxas left unwritten: a failure with or without a baseline (bench/sass_flow.py)
    for baseline in (base, None):
        fails, _ = S.check(_report(hgmma_unwritten=2), baseline)
        assert any("2 HGMMA read wgmma descriptor registers that no write reaches" in f for f in fails)
    # a helper left as a function (not inlined) where the baseline had none, with or without a baseline
    for b in (base, None):
        fails, _ = S.check(_report(calls=1), b)
        assert any("helper call(s) left in its TTGIR" in f for f in fails), b
    assert S.check(_report(calls=1), _report(calls=1)) == ([], [])
    # a baseline kernel the report lacks is gone, unless the report holds some scenarios only (--impl / --like)
    other = {"triton": "x", "kernels": {**base["kernels"], "rat.other [X=1] w4 s1 bf16 #1": {"shared": 0, "spills": 0}}}
    assert any("gone" in n for n in S.check(_report(), other)[1])
    assert S.check(_report(), other, partial=True) == ([], [])


def _sass(*lines: str) -> str:
    return "\n".join(f"        /*{16 * i:04x}*/                   {t} ;   /* 0x0 */" for i, t in enumerate(lines))


def test_sass_flow_finds_wgmma_descriptors_no_write_reaches():
    """f22's miscompile in small: an if / else whose else branch issues a wgmma with descriptors only the if branch
    wrote (ptxas 12.8, the GPU's out-of-range shared address); against the same else branch writing its own, a loop
    reusing what its first pass wrote, a predicated write, and a wgmma with A from registers (not checked)."""
    from ratbench.bench import sass_flow as F

    head = ("UMOV UR4, 0x1", "UMOV UR5, 0x40000040")
    bad = _sass(*head, "@P1 BRA 0x80", "UMOV UR12, UR4", "UMOV UR13, UR5", "UMOV UR14, UR4", "UMOV UR15, UR5",
                "BRA 0x90", "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR12], R24", "EXIT")
    found = F.unwritten_hgmma_reads(bad)
    assert [(f.address, f.registers) for f in found] == [(0x80, (12, 13, 14, 15))]
    ok = _sass(*head, "@P1 BRA 0x40", "BRA 0x80", "UMOV.64 UR12, UR4", "UIADD3.64 UR14, UR4, 0x2, URZ",
               "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR12], R24", "EXIT")
    assert F.unwritten_hgmma_reads(ok) == []
    # the loop's first pass writes UR12..15 before its HGMMA; the second pass reads them again (a back edge)
    loop = _sass("UMOV.64 UR12, UR4", "UMOV.64 UR14, UR4", "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR12], R24",
                 "@P0 BRA 0x20", "EXIT")
    assert F.unwritten_hgmma_reads(loop) == []
    # written only where a predicate holds: some path writes it, so no finding (the analysis flags certain misses)
    maybe = _sass("@P2 UMOV.64 UR12, UR4", "UMOV.64 UR14, UR4", "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR12], RZ, !UPT")
    assert F.unwritten_hgmma_reads(maybe) == []
    # A in registers: not checked (in Triton's tl kernels gdesc[URn]'s URn also holds a float scale)
    assert F.unwritten_hgmma_reads(_sass("HGMMA.64x128x16.F32.BF16 R88, R24, gdesc[UR12].tnspB, R88")) == []


def test_static_predecessor_when_a_constexpr_is_added():
    old = {"kernel": "m.k", "num_warps": 8, "num_stages": 3, "constexprs": {"BM": 64}, "regs": 200, "stack": 0,
           "local": 0, "spills": 0, "shared": 1024, "HGMMA": 8}
    new = {**old, "constexprs": {"BM": 64, "DQ_ATOMIC": False}, "spills": 10, "stack": 32}
    fails, notes = S.check({"kernels": {"new-id": new}}, {"kernels": {"old-id": old}})
    assert any("new spills" in f for f in fails) and any("compared with old-id" in n for n in notes)
    other = {**new, "constexprs": {"BM": 128, "DQ_ATOMIC": False}}  # a different tile is not a predecessor
    fails, notes = S.check({"kernels": {"new-id": other}}, {"kernels": {"old-id": old}})
    assert any("new kernel spills" in f for f in fails)


def test_register_replaces_a_registered_name(gate_impl):
    from ratbench import impls

    G.register_impls([("full/test-gate", "gate_fakes:SlowedWorkFull")])
    assert impls.load_class("full/test-gate").REPEATS == 3
    with pytest.raises(ValueError, match="NAME=MODULE:CLASS"):
        G.parse_register(["full/x"])


KERNEL = textwrap.dedent('''
    import triton
    import triton.language as tl

    @triton.jit
    def mm_kernel(A, B, C, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
        rm = tl.arange(0, BM)
        rn = tl.arange(0, BN)
        rk = tl.arange(0, BK)
        a = tl.load(A + rm[:, None] * BK + rk[None, :])
        b = tl.load(B + rk[:, None] * BN + rn[None, :])
        tl.store(C + rm[:, None] * BN + rn[None, :], tl.dot(a, b))
''')


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return env


def test_static_gate_compiles_a_small_kernel_for_sm90(tmp_path):
    (tmp_path / "tiny_kernels.py").write_text(KERNEL)
    code = textwrap.dedent('''
        import json, sys
        sys.path.insert(0, sys.argv[1])
        from ratbench.bench import static_gate as S
        import tiny_kernels as T
        ck = S.compile_sm90(T.mm_kernel, {"A": "*bf16", "B": "*bf16", "C": "*fp32", "BM": "constexpr",
                            "BN": "constexpr", "BK": "constexpr"}, {"BM": 64, "BN": 64, "BK": 64},
                            {(0,): [["tt.divisibility", 16]], (1,): [["tt.divisibility", 16]],
                             (2,): [["tt.divisibility", 16]]}, 4, 2)
        st, sass = S.sass_stats(ck.asm["cubin"])
        st["shared"] = ck.metadata.shared
        print(json.dumps(st))
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=_clean_env(), check=False,
                         cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    st = json.loads(out.stdout.strip().splitlines()[-1])
    assert 0 < st["regs"] <= 255 and st["HGMMA"] > 0 and st["instructions"] > 0
    assert st["LDL"] == st["STL"] == 0 and st["shared"] > 0
    assert 0 < st["HGMMA_gsb0"] < st["HGMMA"]  # one wgmma group per product of several k-steps: not serialized


def test_static_gate_finds_the_gpu_launches():
    out = subprocess.run([sys.executable, "run_bench.py", "static", "--list"], capture_output=True, text=True,
                         env=_clean_env(), cwd=ROOT, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    # rat/triton at T=32k runs the big forward tile, at 4k the short one (bench.static_gate.SCENARIOS)
    assert any(ln.startswith("rat.fwd_kernel [BM=128 BN=128") and "rat train T=32k" in ln for ln in lines)
    assert any(ln.startswith("rat.fwd_kernel [BM=64 BN=64") and "rat train T=4k" in ln for ln in lines)
    assert any(ln.startswith("linear.recurrent_step_kernel") for ln in lines)
    assert all("bf16" in ln for ln in lines if "  <-  " in ln)


CANDIDATE = textwrap.dedent('''
    import dataclasses
    from ratbench.impls.rat.gluon import RATGluon

    class Poly0(RATGluon):
        def _config(self, *args, **kwargs):
            return dataclasses.replace(super()._config(*args, **kwargs), fwd_exp_poly=0, fwd_exp_poly_train=None)
''')


def test_static_gate_drives_a_registered_candidate_through_anothers_scenarios(tmp_path):
    """``static --register NAME=... --impl NAME --like rat/gluon``: rat/gluon's scenarios, run by the candidate (its
    config reaches the launches: head dim 64 takes f6's polynomial exponentials by default, none here)."""
    (tmp_path / "static_cand.py").write_text(CANDIDATE)
    env = _clean_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(tmp_path)])

    def listed(*extra: str) -> list[str]:
        out = subprocess.run([sys.executable, "run_bench.py", "static", "--list", *extra], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=300, check=False)
        assert out.returncode == 0, out.stderr[-2000:]
        return [ln for ln in out.stdout.splitlines() if "  <-  " in ln]

    own = listed("--impl", "rat/gluon")
    assert own and all(ln.startswith("rat.") for ln in own)
    assert any("D=64 EXP_POLY=8" in ln for ln in own if ln.startswith("rat.fwd_ws_kernel"))
    cand = listed("--register", "rat/gluon-p0=static_cand:Poly0", "--impl", "rat/gluon-p0", "--like", "rat/gluon")
    fwd = [ln for ln in cand if ln.startswith("rat.fwd_ws_kernel")]
    assert fwd and all("EXP_POLY=0" in ln for ln in fwd)
    assert all(ln.split("  <-  ")[1].startswith("rat/gluon-p0 as rat gluon ") for ln in cand)


GLUON_KERNEL = textwrap.dedent('''
    from triton.experimental import gluon
    from triton.experimental.gluon import language as gl

    @gluon.jit
    def _twice_early(x, c):
        if c > 0:
            return x * 2.0
        return x

    @gluon.jit
    def _twice_if_else(x, c):
        if c > 0:
            y = x * 2.0
        else:
            y = x
        return y

    @gluon.jit
    def loop_kernel(X, n, BM: gl.constexpr, EARLY: gl.constexpr):
        layout: gl.constexpr = gl.BlockedLayout([1], [32], [4], [0])
        r = gl.arange(0, BM, layout=layout)
        acc = gl.load(X + r)
        for i in range(n):
            if EARLY:
                acc = _twice_early(acc, i)
            else:
                acc = _twice_if_else(acc, i)
        gl.store(X + r, acc)
''')


def test_static_gate_counts_helpers_left_as_calls(tmp_path):
    """A Gluon helper with an early return, called in a loop, stays a function in the TTGIR (what f22's _blocks did:
    it compiled, and crashed on the GPU); the same helper with if / else is inlined."""
    (tmp_path / "tiny_gluon.py").write_text(GLUON_KERNEL)
    code = textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[1])
        from ratbench.bench import static_gate as S
        import tiny_gluon as G
        for early in (True, False):
            ck = S.compile_sm90(G.loop_kernel, {"X": "*fp32", "n": "i32", "BM": "constexpr", "EARLY": "constexpr"},
                                {"BM": 128, "EARLY": early}, {(0,): [["tt.divisibility", 16]]}, 4, 2)
            print(S.ttgir_calls(ck.asm["ttgir"]))
    ''')
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=_clean_env(),
                         check=False, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["1", "0"]
