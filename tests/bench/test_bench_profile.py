"""run_bench.py profile (bench/profile.py, bench/stages.py, bench/profile_report.py) on the CPU: stage
attribution of synthetic kernel lists, trace parsing, per-stage costs, ncu output parsing, and a real
profile of rat/reference and rat/triton (interpreted) with its rows, traces and report section."""
from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

import pytest

from ratbench import impls
from ratbench.bench import cli as run_bench
from ratbench.bench import costs, timing
from ratbench.bench.profile import (
    NCU_METRICS,
    join_sass,
    kernel_base_name,
    ncu_command,
    parse_ncu_csv,
    sass_facts,
    summarize_ncu,
)
from ratbench.bench.results import PROFILE, load, read_rows
from ratbench.bench.stages import OTHER, KernelStat, attribute, compile_patterns, coverage, kernels_from_trace
from ratbench.bench.sweep import Case

ROOT = Path(__file__).resolve().parents[2]


def k(name: str, ms: float, calls: int = 1) -> KernelStat:
    return KernelStat(name, calls, ms)


# ----- attribution --------------------------------------------------------------------------------
def test_attribution_first_match_other_and_coverage():
    kernels = [k("scan_kernel", 1.0), k("bwd_scan_kernel", 2.0), k("fwd_kernel", 3.0, 2), k("bwd_dkv_early_kernel", 4.0),
               k("at::native::vectorized_elementwise_kernel<FillFunctor>", 0.5, 3)]
    stages = (("scans", r"scan\w*_kernel"), ("forward", r"fwd\w*_kernel"), ("dK/dV", r"bwd_dkv\w*_kernel"),
              ("never", r"nothing_matches_this"))
    out = attribute(kernels, stages)
    assert [s.name for s in out] == ["scans", "forward", "dK/dV", OTHER]  # declaration order, unused left out
    by = {s.name: s for s in out}
    assert by["scans"].ms == 3.0 and by["scans"].calls == 2 and sorted(by["scans"].kernels) == [
        "bwd_scan_kernel", "scan_kernel"]
    assert by["forward"].calls == 2 and by[OTHER].ms == 0.5 and by[OTHER].calls == 3
    assert [x.stage for x in kernels] == ["scans", "scans", "forward", "dK/dV", OTHER]
    # the first matching stage wins, even when a later one matches too
    both = [k("bwd_scan_kernel", 1.0)]
    assert attribute(both, (("backward", r"bwd_"), ("scans", r"scan")))[0].name == "backward"
    # no declared stages: everything is "other"
    assert [s.name for s in attribute([k("aten::mm", 1.0)], ())] == [OTHER]
    assert coverage(kernels, 21.0) == pytest.approx(10.5 / 21.0)
    assert coverage(kernels, None) is None and coverage(kernels, 0.0) is None


@pytest.mark.parametrize("bad", [(("a", "(unclosed"),), (("other", "x"),), (("only-a-name",),), ("stage",)])
def test_bad_stage_declarations_raise(bad):
    with pytest.raises(ValueError):
        compile_patterns(bad)


def _jit_kernel_names(path: Path) -> list[str]:
    src = path.read_text()
    return re.findall(r"@triton\.jit[^\n]*\ndef (\w+_kernel)\(", src)


def test_rat_triton_every_kernel_has_a_stage():
    """Every @triton.jit kernel of rat/triton (found by name in impls/rat/triton*.py and impls/rat/kernels/)
    falls in a declared stage, and the named ones in the expected stage."""
    cls = impls.load_class("rat/triton")
    rat = ROOT / "impls" / "rat"
    files = [*rat.glob("triton*.py"), *(rat / "kernels").glob("*.py")]
    names = sorted({n for p in files for n in _jit_kernel_names(p)})
    assert len(names) >= 10, names
    pats = compile_patterns(cls.profile_stages)
    from ratbench.bench.stages import stage_of

    got = {n: stage_of(n, pats) for n in names}
    assert OTHER not in got.values(), {n: s for n, s in got.items() if s == OTHER}
    expect = {"scan_kernel": "scans", "bwd_scan_kernel": "scans", "lscan_carry_kernel": "scans",
              "bwd_lscan_sum_kernel": "scans", "fwd_kernel": "forward",
              "bwd_dq_pre_kernel": "dq", "bwd_dq_kernel": "dq", "bwd_pre_kernel": "dq",
              "bwd_dkv_early_kernel": "dK/dV", "bwd_dkv_kernel": "dK/dV", "step_kernel": "decode step"}
    for name, stage in expect.items():
        assert got.get(name) == stage, (name, got.get(name))


@pytest.mark.parametrize("impl,name,stage", [
    ("full/sdpa-cudnn", "cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x128x128_4x1x1_kernel0_0",
     "forward"),
    ("full/sdpa-cudnn", "cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_7_64x128x128_4x2x1_kernel0_0",
     "backward"),
    ("full/sdpa-flash", "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>>(Flash_fwd_params)",
     "forward"),
    ("full/sdpa-flash", "void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<X>(Flash_bwd_params)",
     "backward"),
    ("full/fa4", "kernel_cutlass_kernel_flash_attncuteflash_fwd_sm90FlashAttentionForwardSm90_object_at__tensor_0",
     "forward"),
    ("full/fa4", "kernel_cutlass_kernel_flash_attncuteflash_bwd_sm90FlashAttentionBackwardSm90_object_at__t_0",
     "backward"),
    ("full/flex", "triton_tem_fused_0", "flex attention"),
    ("linear/fla", "chunk_fwd_kernel_h", "forward"),
    ("linear/fla", "chunk_bwd_kernel_dqkwg", "backward"),
    ("linear/fla", "fused_recurrent_fwd_kernel", "decode step"),
    ("full/sdpa-cudnn", "at::native::vectorized_elementwise_kernel<4, FillFunctor<float>>", OTHER),
])
def test_peer_stage_patterns(impl, name, stage):
    from ratbench.bench.stages import stage_of

    assert stage_of(name, compile_patterns(impls.load_class(impl).profile_stages)) == stage


@pytest.mark.parametrize("impl,module", [("linear/triton", "impls/linear/triton_kernels.py"),
                                         ("full/triton", "impls/full/triton_kernels.py"),
                                         ("swa/triton", "impls/full/triton_kernels.py")])
def test_our_triton_kernels_have_stages(impl, module):
    from ratbench.bench.stages import stage_of

    pats = compile_patterns(impls.load_class(impl).profile_stages)
    names = _jit_kernel_names(ROOT / module)
    assert names and all(stage_of(n, pats) != OTHER for n in names), [n for n in names if stage_of(n, pats) == OTHER]


# ----- trace parsing ------------------------------------------------------------------------------
def test_kernels_from_gpu_trace():
    ev = [{"ph": "X", "cat": "kernel", "name": "fwd_kernel", "ts": 10, "dur": 1000},
          {"ph": "X", "cat": "kernel", "name": "fwd_kernel", "ts": 2000, "dur": 500},
          {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "ts": 5, "dur": 2},
          {"ph": "X", "cat": "cpu_op", "name": "aten::empty", "ts": 0, "dur": 50},
          {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 1, "dur": 5},
          {"ph": "i", "cat": "kernel", "name": "marker", "ts": 3}]
    ks = kernels_from_trace(ev, "cuda")
    assert [(x.name, x.calls) for x in ks] == [("fwd_kernel", 2), ("Memset (Device)", 1)]
    assert ks[0].total_ms == pytest.approx(1.5) and ks[0].per_call_ms == pytest.approx(0.75)


def test_kernels_from_cpu_trace_self_time_and_triton_ranges():
    ev = [  # thread 1: root range > aten::linear (100) > aten::mm (60); a triton range (50) with an op inside
        {"ph": "X", "cat": "user_annotation", "name": "ratbench::profiled_call", "ts": 0, "dur": 1000, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::linear", "ts": 10, "dur": 100, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 20, "dur": 60, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "user_annotation", "name": "triton::fwd_kernel", "ts": 200, "dur": 50, "pid": 1, "tid": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::copy_", "ts": 210, "dur": 20, "pid": 1, "tid": 1},
        # thread 2: an op on another thread counts too
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 15, "dur": 30, "pid": 1, "tid": 2},
    ]
    ks = {x.name: x for x in kernels_from_trace(ev, "cpu")}
    assert set(ks) == {"aten::linear", "aten::mm", "fwd_kernel"}  # the copy inside the triton range is hidden
    assert ks["aten::linear"].total_ms == pytest.approx(0.040)  # 100 - 60 us of child
    assert ks["aten::mm"].calls == 2 and ks["aten::mm"].total_ms == pytest.approx(0.090)
    assert ks["fwd_kernel"].total_ms == pytest.approx(0.050)


# ----- stage costs --------------------------------------------------------------------------------
def _rat(mode: str, T: int = 4096, B: int = 2) -> Case:
    return Case("rat/triton", mode, B, T, 16, 128, "bfloat16", "cuda", chunk_size=16)


def test_rat_triton_stage_costs():
    pre = costs.stage_costs(_rat("prefill"))
    assert set(pre) == {"scans", "forward"}
    assert pre["scans"].flops + pre["forward"].flops == pytest.approx(costs.cost(_rat("prefill")).flops)
    tr = costs.stage_costs(_rat("train"))
    assert set(tr) == {"scans", "forward", "dq", "dK/dV"}
    c = _rat("train")
    prod = 2.0 * c.batch * c.heads * c.head_dim * costs.rat_pairs(c.seq_len, 16)
    n = c.batch * c.seq_len * c.heads * c.head_dim
    assert tr["forward"].flops == pytest.approx(2 * prod + 3 * n)  # S and PV
    assert tr["dq"].flops == pytest.approx(3 * prod + 3 * n)  # S, dP, dq recomputed
    assert tr["dK/dV"].flops == pytest.approx(4 * prod)  # S^T, dV, dP^T, dK
    # as implemented: 9 products, above the 7 of the end-to-end convention
    assert sum(x.flops for x in tr.values()) > costs.cost(c).flops
    assert costs.stage_costs(_rat("decode")) == {"decode step": costs.cost(_rat("decode"))}
    assert costs.stage_costs(Case("rat/flex", "train", 1, 256, 2, 32, "float32", "cpu", chunk_size=16)) == {}


def test_forward_backward_split_adds_up():
    c = Case("full/sdpa-cudnn", "train", 2, 4096, 16, 128, "bfloat16", "cuda")
    s = costs.stage_costs(c)
    tot = costs.cost(c)
    assert s["forward"].flops * costs.TRAIN_FACTOR == pytest.approx(tot.flops)
    assert s["forward"].flops + s["backward"].flops == pytest.approx(tot.flops)
    assert s["forward"].bytes + s["backward"].bytes == pytest.approx(tot.bytes)


# ----- Nsight Compute and SASS plumbing -----------------------------------------------------------
NCU_CSV = """==PROF== Connected to process 1234
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC",\
"gpu__time_duration.sum","sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active","sm__throughput.avg.pct_of_peak_sustained_elapsed",\
"gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed","sm__warps_active.avg.pct_of_peak_sustained_active",\
"launch__registers_per_thread","smsp__sass_inst_executed_op_local_ld.sum","smsp__sass_inst_executed_op_local_st.sum"
"","","","","","","","","","","","ns","%","%","%","%","register/thread","inst","inst"
"0","1234","python","h","fwd_kernel","1","7","(128, 1, 1)","(1024, 16, 1)","0","9.0","9,500,000","61.5","70.1","12.3","24.9","255","0","0"
"1","1234","python","h","bwd_dkv_early_kernel","1","7","(256, 1, 1)","(512, 16, 1)","0","9.0","18000000","55","66","9","12","232","6","6"
"2","1234","python","h","fwd_kernel","1","7","(128, 1, 1)","(1024, 16, 1)","0","9.0","9,700,000","60.5","72.1","n/a","25.1","255","0","0"
==PROF== Disconnected from process 1234
"""


def test_parse_ncu_csv_and_summary():
    rows = parse_ncu_csv(NCU_CSV)
    assert [r["kernel"] for r in rows] == ["fwd_kernel", "bwd_dkv_early_kernel", "fwd_kernel"]
    assert rows[0]["ncu_ns"] == 9.5e6 and rows[1]["tensor_pct"] == 55.0 and rows[2]["dram_pct"] is None
    s = summarize_ncu(rows)
    assert s["fwd_kernel"]["launches"] == 2 and s["fwd_kernel"]["tensor_pct"] == pytest.approx(61.0)
    assert s["bwd_dkv_early_kernel"]["registers"] == 232 and s["bwd_dkv_early_kernel"]["local_st"] == 6
    assert parse_ncu_csv("==ERROR== something failed\n") == []


def test_kernel_base_name_and_ncu_command():
    assert kernel_base_name("void pytorch_flash::flash_fwd_kernel<T<128, 64>>(Flash_fwd_params)") == "flash_fwd_kernel"
    assert kernel_base_name("fwd_kernel") == "fwd_kernel"
    assert kernel_base_name("void at::native::(anonymous namespace)::k<float>(int)") == "k"
    c = _rat("train", T=131072, B=1)
    cmd = ncu_command("ncu", c, [k("bwd_dkv_early_kernel", 18.0), k("scan_kernel", 1.0, 2)], 0)
    assert cmd[cmd.index("--kernel-name") + 1] == "regex:^(bwd_dkv_early_kernel|scan_kernel)$"
    assert cmd[cmd.index("--launch-count") + 1] == "3"
    assert cmd[cmd.index("--profile-from-start") + 1] == "off"
    assert "--csv" in cmd and cmd[cmd.index("--page") + 1] == "raw"
    assert cmd[cmd.index("--metrics") + 1].split(",") == list(NCU_METRICS)
    child = json.loads(cmd[cmd.index("--ncu-child") + 1])
    assert Case.from_dict(child) == c and cmd[cmd.index("--ncu-child") - 1] == "profile"


def test_sass_join_and_unavailable():
    recs = [{"id": "rat.fwd_kernel [..] w8 s3", "kernel": "impls.rat.triton_kernels.fwd_kernel", "regs": 168,
             "spills": 0, "shared": 98304, "HGMMA": 40},
            {"id": "rat.bwd_dq_pre_kernel", "kernel": "impls.rat.triton_kernels.bwd_dq_pre_kernel", "regs": 255,
             "spills": 176, "shared": 65536, "HGMMA": 30},
            {"id": "broken", "kernel": "impls.rat.triton_kernels.scan_kernel", "error": "boom"}]
    ks = [k("fwd_kernel", 9.0), k("bwd_dq_pre_kernel", 12.0), k("scan_kernel", 1.0), k("Memset (Device)", 0.1)]
    j = join_sass(recs, ks)
    assert set(j) == {"fwd_kernel", "bwd_dq_pre_kernel"}
    assert j["bwd_dq_pre_kernel"]["spills"] == 176 and j["fwd_kernel"]["HGMMA"] == 40
    got = sass_facts(_rat("train"), ks, compile_fn=lambda sc: recs)
    assert got["status"] == "ok" and set(got["kernels"]) == {"fwd_kernel", "bwd_dq_pre_kernel"}
    ref = Case("rat/reference", "train", 1, 64, 1, 32, "float32", "cpu", chunk_size=8)
    assert sass_facts(ref, ks)["status"] == "unavailable"


# ----- NVTX around each case of the harness -------------------------------------------------------
def test_nvtx_range_only_on_cuda(monkeypatch):
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda.nvtx, "range_push", lambda name: calls.append(("push", name)))
    monkeypatch.setattr(torch.cuda.nvtx, "range_pop", lambda: calls.append(("pop",)))
    with timing.nvtx_range("full/x|train", "cuda"):
        calls.append(("body",))
    assert calls == [("push", "full/x|train"), ("body",), ("pop",)]
    calls.clear()
    with pytest.raises(RuntimeError), timing.nvtx_range("k", "cuda"):  # popped when the case raises
        raise RuntimeError
    assert calls == [("push", "k"), ("pop",)]
    calls.clear()
    with timing.nvtx_range("k", "cpu"):
        pass
    assert calls == []


def test_runner_wraps_each_case_in_an_nvtx_range(monkeypatch, tmp_path):
    import contextlib

    from ratbench.bench import runner as R
    from ratbench.bench.sweep import SweepSpec, expand

    seen = []

    @contextlib.contextmanager
    def rec(name, device):
        seen.append((name, device))
        yield

    monkeypatch.setattr(timing, "nvtx_range", rec)
    spec = SweepSpec(impls=["full/reference"], modes=["prefill"], seq_lens=[16], heads=[1], head_dims=[8], batches=[1],
                     tokens=None, repeats=2, min_repeats=1, case_budget_s=0.01, check_accuracy=False)
    case = expand(spec)[0]
    row = R.Runner(tmp_path / "r.jsonl", spec).run_case(case)
    assert row.status == "ok" and seen == [(case.key, "cpu")]


# ----- the command end to end ---------------------------------------------------------------------
def test_profile_cli_cpu_rows_traces_and_report(tmp_path, capsys):
    out = tmp_path / "prof"
    argv = ["profile", "--impl", "rat/reference,rat/triton", "--mode", "train,prefill", "--seq-len", "32",
            "--batch", "1", "--heads", "1", "--head-dim", "32", "--chunk-size", "8", "--device", "cpu",
            "--threads", "1", "--repeats", "2", "--ncu", "--no-progress", "--out", str(out)]
    assert run_bench.main(argv) == 0
    printed = capsys.readouterr()
    assert "--ncu unavailable" in printed.err and "coverage" in printed.out
    # timing rows: results.jsonl as for run (readers unaffected), profile rows apart, row_type set
    df = load(out)
    assert len(df) == 4 and set(df.status) == {"ok"} and df.row_type.isna().all()
    prows = {(r["impl"], r["mode"]): r for r in read_rows(out / PROFILE)}
    assert len(prows) == 4 and {r["row_type"] for r in prows.values()} == {"profile"}
    tri = prows[("rat/triton", "train")]
    d = tri["details"]
    stages = {s["stage"]: s for s in d["stages"]}
    assert {"scans", "forward", "dq", "dK/dV"} <= set(stages)
    assert stages["forward"]["kernels"] == ["fwd_kernel"] and stages["forward"]["tflops"] > 0
    assert stages["dK/dV"]["pct_peak_flops"] is not None and stages["scans"]["calls"] >= 2
    assert sum(s["ms"] for s in d["stages"]) == pytest.approx(d["kernel_ms"])
    assert d["coverage"] == pytest.approx(d["kernel_ms"] / tri["ms_median"])
    assert tri["ms_median"] == df[(df.impl == "rat/triton") & (df["mode"] == "train")].ms_median.iloc[0]
    assert d["ncu"]["status"] == "unavailable" and "ncu unavailable" in tri["reason"]
    ref = prows[("rat/reference", "train")]
    assert [s["stage"] for s in ref["details"]["stages"]] == [OTHER] and "no stages declared" in ref["reason"]
    assert any(x["name"].startswith("aten::") for x in ref["details"]["kernels"])
    # one gzipped Chrome trace per case, with the profiled call's range and the interpreted kernels
    with gzip.open(out / d["trace"], "rt") as fh:
        trace = json.load(fh)
    names = {e.get("name") for e in trace["traceEvents"]}
    assert "ratbench::profiled_call" in names and "triton::fwd_kernel" in names
    assert len(list((out / "traces").glob("*.json.gz"))) == 4
    # the report section and its figures
    md = (out / "report.md").read_text()
    assert "## Kernel profile" in md and "| `rat/triton` train T=32 B=1, L=8 | scans |" in md
    assert "Nsight Compute: unavailable" in md
    for f in ("profile_stages_train.png", "profile_stages_prefill.png", "profile_roofline.png"):
        assert (out / "figures" / f).exists() and f"figures/{f}" in md
    meta = json.loads((out / "run.json").read_text())
    assert meta["command"].startswith("python run_bench.py profile") and meta["profile"]["ncu"] is True
    # the stages come from kernel names, not from rat/triton's module-level profiling hooks
    import ratbench.impls.rat.triton as RT

    assert getattr(RT, "STAGE_EVENTS", None) is None and getattr(RT, "LAUNCHES", None) is None


def test_profile_unsupported_case_gets_a_profile_row(tmp_path):
    """A case that cannot run still gets its profile row; a profile where nothing ran exits 5 as run does."""
    from ratbench.bench import exit_codes

    out = tmp_path / "p"
    assert run_bench.main(["profile", "--impl", "rat/triton", "--mode", "prefill", "--seq-len", "32", "--batch", "1",
                           "--heads", "1", "--head-dim", "16", "--chunk-size", "8", "--device", "cpu", "--no-progress",
                           "--no-figures", "--out", str(out)]) == exit_codes.NOTHING_RUNNABLE
    (row,) = read_rows(out / PROFILE)
    assert row["status"] == "unsupported" and "head_dim 16" in row["reason"] and row["row_type"] == "profile"
    assert "Not profiled:" in (out / "report.md").read_text()


def test_profile_stops_where_the_device_was_lost(tmp_path, capsys, monkeypatch):
    """A kernel's fault that CUDA keeps for the process (bench/runner.py): the case ends error, the rest are not
    profiled, and stderr says why in one line (exit 4)."""
    from ratbench.bench import exit_codes, memory

    monkeypatch.setattr(memory, "free", lambda device, collect=False: "AcceleratorError: CUDA error: an illegal "
                        "memory access was encountered")
    out = tmp_path / "p"
    assert run_bench.main(["profile", "--impl", "rat/reference", "--mode", "prefill", "--seq-len", "32,64", "--batch",
                           "1", "--heads", "1", "--head-dim", "32", "--chunk-size", "8", "--device", "cpu",
                           "--repeats", "2", "--no-progress", "--no-figures", "--out", str(out)]) == exit_codes.UNFINISHED
    err = " ".join(capsys.readouterr().err.split())
    assert ("the device was lost in rat/reference (L=8) prefill B=1 T=32: AcceleratorError: CUDA error: an illegal memory "
            "access was encountered: 1 cases not profiled") in err and "Traceback" not in err
    assert [r["status"] for r in read_rows(out)] == ["error"]


@pytest.mark.parametrize("extra,msg", [(["--resume", "x"], "--resume"), (["--top", "0"], "--top"),
                                       (["--impl", "nope/none"], "nope/none")])
def test_profile_bad_input_one_line_exit_2(tmp_path, capsys, extra, msg):
    out = tmp_path / "bad"
    argv = ["profile", "--mode", "prefill", "--seq-len", "32", "--batch", "1", "--device", "cpu", "--no-progress",
            "--out", str(out)] + (extra if "--impl" in extra else ["--impl", "full/reference"] + extra)
    assert run_bench.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("run_bench.py profile: error:") and msg in err[0]
    assert not out.exists()


def test_profile_help_reuses_the_run_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        run_bench.main(["profile", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--impl", "--seq-len", "--tokens", "--budget", "--ncu", "--sass", "--top", "run_bench.py profile"):
        assert flag in text, flag
    assert "--ncu-child" not in text


def test_coverage_reason_explains_cases_off_the_median():
    """A case whose kernel time is more than 10% off the harness median gets a reason from the harness's own
    samples (the H200 full/fa4 prefill 4k case: bimodal calls, the profiled one in the slow mode)."""
    from ratbench.bench.profile_report import coverage_reason

    fa4 = [3.920448, 3.920608, 3.92112, 3.923168, 3.92464, 3.925504, 3.925504, 3.926912, 3.927328, 3.927488,
           3.928576, 3.930112, 3.931648, 4.058112, 4.386848, 4.386976, 4.38704, 4.387328, 4.387872, 4.388384]
    why = coverage_reason(4.414, 3.928, fa4)
    assert "6 of 20" in why and "3.92-4.39" in why
    assert "slower than every timed call" in coverage_reason(6.0, 4.0, [3.9, 4.0, 4.1])
    assert "launch gaps" in coverage_reason(2.0, 4.0, [4.0])


def test_rat_gluon_stage_costs_follow_its_backward_route():
    """rat/gluon's stages are rat/triton's where it trains with rat/triton's backward (D 128, L 1024, T 4k) and, where
    impls.rat.gluon.gluon_backward_used sends the backward to its Gluon kernel, that kernel's 5 products in one
    "backward" stage beside its memory passes."""
    def case(T, L=16):
        return dataclasses.replace(_rat("train", T=T, B=1), impl="rat/gluon", chunk_size=L)

    assert costs.stage_costs(case(4096, 1024)) == costs.stage_costs(dataclasses.replace(_rat("train", T=4096, B=1),
                                                                                        chunk_size=1024))
    st = costs.stage_costs(case(131072))
    assert set(st) == {"scans", "forward", "bwd pre/post", "backward"}
    tri = costs.stage_costs(_rat("train", T=131072, B=1))
    assert st["backward"].flops == pytest.approx(5 / 4 * tri["dK/dV"].flops)
    n, e = 131072 * 16 * 128, 2  # b5: the forward writes RoPE(q); the scan reads the dq accumulator, writes dq
    assert st["forward"].flops == tri["forward"].flops and st["forward"].bytes == tri["forward"].bytes + n * e
    assert st["scans"].bytes == tri["scans"].bytes + 4 * n + n * e
    # head dim 128 (impls.rat.gluon.dq_writer_used): the first dq share stores, the pre pass writes no zeros
    assert st["bwd pre/post"].bytes == 2 * n * e + 4 * 131072 * 16 * 4
    n4 = 4096 * 16 * 128
    assert costs.stage_costs(case(4096))["bwd pre/post"].bytes == 2 * n4 * e + 4 * 4096 * 16 * 4
    # head dim 64: the writer up to 256 chunk ends; beyond, the pre pass writes the accumulator's zeros
    d64 = dataclasses.replace(case(131072), head_dim=64)
    n64 = n // 2
    assert costs.stage_costs(d64)["bwd pre/post"].bytes == 2 * n64 * e + 4 * 131072 * 16 * 4 + 4 * n64
    assert costs.stage_costs(dataclasses.replace(case(4096), head_dim=64))["bwd pre/post"].bytes == (
        2 * n4 // 2 * e + 4 * 4096 * 16 * 4)
    # chunks of 2048 take the two-level scans: the pre pass reads q, kt, vt for dq's self term, the post pass runs
    long = costs.stage_costs(case(131072, 2048))
    assert long["bwd pre/post"].bytes == 2 * n * e + 4 * 131072 * 16 * 4 + 4 * n + 3 * n * e + 4 * n + n * e
