"""Tables and figures regenerated from a stored results file."""
from __future__ import annotations

from pathlib import Path

import pytest

from ratbench.bench import report
from ratbench.bench.costs import cost
from ratbench.bench.results import Row, append_row, load, write_meta
from ratbench.bench.sweep import Case


def row(impl, mode, T, ms, status="ok", B=None, **kw):
    B = B if B is not None else max(1, 131072 // T)
    c = Case(impl=impl, mode=mode, batch=B, seq_len=T, heads=16, head_dim=128, dtype="bfloat16", device="cuda", **kw)
    if status != "ok":
        return Row.for_case(c, status, reason=f"{status} here")
    k = cost(c)
    return Row.for_case(c, "ok", ms_median=ms, ms_p20=ms * 0.98, ms_p80=ms * 1.03, n_samples=3,
                        samples_ms=[ms * 0.98, ms, ms * 1.03], timer="cuda-events", first_call_ms=ms * 5,
                        flops=k.flops, bytes=k.bytes, tflops=k.flops / ms / 1e9, gbps=k.bytes / ms / 1e6,
                        pct_peak_flops=10.0, pct_peak_bw=20.0, peak_mem_bytes=2**30, max_abs_err=1e-3,
                        accuracy="pass")


@pytest.fixture()
def stored(tmp_path):
    rows = []
    for T, base in ((4096, 10.0), (16384, 40.0), (65536, 160.0)):
        rows.append(row("full/sdpa-flash", "train", T, base))
        rows.append(row("full/sdpa-cudnn", "train", T, base * 0.6))
        rows.append(row("rat/triton", "train", T, base / 4, chunk_size=16))
        rows.append(row("rat/triton", "train", T, base / 2, chunk_size=64))
        rows.append(row("full/sdpa-flash", "prefill", T, base / 3))
        rows.append(row("rat/triton", "prefill", T, base / 12, chunk_size=16))
        for B in (64, 512):
            rows.append(row("rat/triton", "decode", T, 0.05 * B / 64, B=B, chunk_size=16))
            if T == 65536 and B == 512:
                rows.append(row("full/sdpa-flash", "decode", T, 0, status="oom", B=B))
            else:
                rows.append(row("full/sdpa-flash", "decode", T, 0.4 * T / 4096 * B / 64, B=B))
    rows.append(row("full/fa4", "train", 4096, 0, status="unavailable"))
    rows.append(row("rat/flex", "train", 65536, 0, status="error", chunk_size=16))
    for r in rows:
        append_row(tmp_path / "results.jsonl", r)
    write_meta(tmp_path, {"command": "python run_bench.py --preset default", "git": "abc123",
                          "device": {"name": "NVIDIA H200", "device": "cuda", "torch": "2.11"},
                          "ceilings": {"matmul_tflops": 800.0, "matmul_dtype": "bfloat16", "matmul_shape": 8192,
                                       "copy_gbps": 4240.0, "copy_bytes": 2**30},
                          "spec": {"repeats": 50}})
    return tmp_path


def test_report_tables_and_figures(stored):
    path = report.write_report(stored)
    md = path.read_text()
    assert "NVIDIA H200" in md and "800 TFLOP/s" in md and "abc123" in md
    assert "speed-ups are over `full/sdpa-flash`" in md  # the paper's baseline is preferred
    lines = md.splitlines()
    train_row = next(l for l in lines if l.startswith("| `rat/triton (L=16)`") and "(4x)" in l)
    assert "2.5 (4x)" in train_row and "10 (4x)" in train_row and "40 (4x)" in train_row
    cudnn = next(l for l in lines if l.startswith("| `full/sdpa-cudnn`"))
    assert "6 (1.67x)" in cudnn
    # the second baseline (cuDNN, the strongest SDPA backend): RAT L=16 is 10 / 4 = 2.5 ms vs 6 ms
    second = md.split("Speed-up over `full/sdpa-cudnn`")[1].split("##")[0]
    assert "| `rat/triton (L=16)` | 2.4x | 2.4x | 2.4x |" in second
    # decode has two batches per T: the series name carries B, and the OOM is shown, not dropped
    assert any(l.startswith("| `full/sdpa-flash B=512`") and "OOM" in l for l in lines)
    assert "`full/fa4`" in md.split("## Cases not timed")[1]  # unavailable rows are listed with their reason
    assert "unavailable here" in md and "error here" in md
    for name in ("latency_vs_seq_len", "speedup_vs_seq_len", "latency_vs_chunk_size", "decode_vs_batch", "roofline"):
        for ext in ("png", "pdf"):
            f = stored / "figures" / f"{name}.{ext}"
            assert f.exists() and f.stat().st_size > 1000, f
        assert f"figures/{name}.png" in md


def test_chosen_baseline_and_errors(stored):
    path = report.write_report(stored, baseline="full/sdpa-cudnn", figures=False)
    md = path.read_text()
    assert "speed-ups are over `full/sdpa-cudnn`" in md
    assert "| `rat/triton (L=16)` | 2.5 (2.4x)" in md
    with pytest.raises(ValueError, match="has no rows"):
        report.write_report(stored, baseline="full/nope", figures=False)


def test_report_from_file_path_and_tables(stored):
    text = report.summary_tables(stored / "results.jsonl")
    assert "train (forward + backward)" in text and "decode" in text
    df = load(stored / "results.jsonl")
    assert len(df) == 32 and df.key.is_unique and set(df.status) == {"ok", "oom", "unavailable", "error"}


def test_empty_results(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(ValueError, match="no rows"):
        report.write_report(tmp_path)


def test_find_runs_sets_apart_the_runs_without_rows(tmp_path, stored):
    """The figures notebook draws every run under reports/; a sweep stopped before its first case left an empty
    results.jsonl (and run.json), which has no report: find_runs lists it apart instead of the notebook failing."""
    runs = tmp_path / "reports" / "runs"
    for name, text in (("b-full", (stored / "results.jsonl").read_text()), ("a-empty", ""), ("c-blank", "\n\n")):
        (runs / name).mkdir(parents=True)
        (runs / name / "results.jsonl").write_text(text)
    with_rows, without = report.find_runs(tmp_path)
    assert with_rows == [runs / "b-full"]
    assert without == [runs / "a-empty", runs / "c-blank"]
    assert report.find_runs(tmp_path / "nowhere") == ([], [])


def test_report_from_a_committed_run(tmp_path):
    """A results file written by an earlier version of the harness (a CPU smoke run) still loads and
    reports: the results format is what the gate and the multi-GPU merge build on."""
    stored = Path(__file__).resolve().parents[1] / "data" / "bench_run_cpu_smoke"
    df = load(stored / "results.jsonl")
    assert len(df) == 30 and set(df.status) == {"ok"} and df.key.is_unique
    assert all(len(s) == n for s, n in zip(df.samples_ms, df.n_samples))
    path = report.write_report(stored, out_dir=tmp_path, figures=True)
    md = path.read_text()
    for name in ("full/reference", "full/sdpa-math", "linear/reference", "rat/reference (L=16)",
                 "swa/reference (W=32)"):
        assert f"`{name}`" in md
    assert (tmp_path / "figures" / "roofline.png").exists()
    assert not (stored / "report.md").exists()  # --out leaves the stored run untouched


def test_write_reports_in_parallel_equals_one_at_a_time(stored, tmp_path):
    """write_reports (the figures notebook's many runs) in two processes writes what write_report writes, in the
    order given, and raises a run's error."""
    committed = Path(__file__).resolve().parents[1] / "data" / "bench_run_cpu_smoke"
    pairs = [(stored, tmp_path / "par" / "a"), (committed, tmp_path / "par" / "b")]
    got = report.write_reports(pairs, jobs=2)
    assert got == [tmp_path / "par" / "a" / "report.md", tmp_path / "par" / "b" / "report.md"]
    for (run, _), path in zip(pairs, got):
        one = report.write_report(run, out_dir=tmp_path / "one" / run.name)
        strip = (lambda text: "\n".join(ln for ln in text.splitlines() if "figures/" not in ln))
        assert strip(path.read_text()) == strip(one.read_text())
        assert sorted(p.name for p in (path.parent / "figures").iterdir()) == \
            sorted(p.name for p in (one.parent / "figures").iterdir())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "results.jsonl").write_text("")
    with pytest.raises(ValueError, match="no rows"):
        report.write_reports([(stored, tmp_path / "x"), (tmp_path / "empty", tmp_path / "y")], jobs=2)
