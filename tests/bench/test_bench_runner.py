"""Running cases: rows for every outcome (ok, oom, error, wrong, unsupported, unavailable, skipped),
results written as each case finishes, resume, and the decode state filled in batch slices."""
from __future__ import annotations

import json
from pathlib import Path

import bench_fakes
import pytest
import torch

from ratbench.bench import cases as C
from ratbench.bench import runner
from ratbench.bench.results import Row, finished_keys, load, read_rows
from ratbench.bench.sweep import Case, SweepSpec
from ratbench.bench.timing import TimingPolicy, measure, quantile


@pytest.fixture(scope="module")
def fakes():
    with bench_fakes.registered() as names:
        yield names


def spec(**kw):
    base = {"impls": ["full/reference"], "modes": ["train", "prefill", "decode"], "seq_lens": [32, 128], "heads": [1],
            "head_dims": [16], "batches": [1], "tokens": None, "dtype": "float32", "device": "cpu", "repeats": 3,
            "min_repeats": 2, "warmup": 1, "case_budget_s": 0.01, "max_call_s": 10.0}
    base.update(kw)
    return SweepSpec(**base)


def run(tmp_path, **kw):
    r, cases, done = runner.start(spec(**kw), tmp_path, command="pytest", measure_ceilings=False)
    rows = r.run(cases, skip=done)
    return rows, load(tmp_path)


def test_ok_rows_have_every_column(tmp_path):
    rows, df = run(tmp_path, impls=["full/reference", "rat/reference"], chunk_sizes=[16])
    assert len(rows) == 12 and set(df.status) == {"ok"}
    for col in ("family", "impl", "mode", "level", "batch", "seq_len", "heads", "head_dim", "chunk_size", "window",
                "dtype", "device", "status", "ms_median", "ms_p20", "ms_p80", "n_samples", "tflops", "gbps",
                "peak_mem_bytes", "max_abs_err"):
        assert col in df.columns
    assert (df.ms_p20 <= df.ms_median).all() and (df.ms_median <= df.ms_p80).all()
    assert (df.n_samples >= 2).all() and all(len(s) == n for s, n in zip(df.samples_ms, df.n_samples))
    assert (df.tflops > 0).all() and (df.timer == "wall-clock").all()
    dec = df[df["mode"] == "decode"]
    # decode rows carry the state size: full attention 2 * T * H * D floats (float32 cache), RAT 2 * T/L slots
    full = dec[dec.impl == "full/reference"].set_index("seq_len").state_bytes_per_seq
    assert full[128] == 2 * 128 * 16 * 4
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["command"] == "pytest" and meta["spec"]["seq_lens"] == [32, 128] and meta["device"]["torch"]


def test_oom_error_wrong_unsupported_unavailable(tmp_path, fakes):
    impl_list = ["full/test-oom", "full/test-cuda-oom", "full/test-broken", "full/test-wrong", "full/test-nodecode",
                 "full/test-gpuonly"]
    rows, df = run(tmp_path, impls=impl_list, modes=["prefill", "decode"])
    st = {(r.impl, r.mode, r.seq_len): r for r in rows}
    # small T passes (the accuracy check uses the case's T when it is small), large T fails
    assert st["full/test-oom", "prefill", 32].status == "ok"
    assert st["full/test-oom", "prefill", 128].status == "oom"
    assert "not enough memory" in st["full/test-oom", "prefill", 128].reason
    assert st["full/test-cuda-oom", "prefill", 128].status == "oom"
    broken = st["full/test-broken", "prefill", 128]
    assert broken.status == "error" and "kernel exploded" in broken.reason and broken.ms_median is None
    # the OOM and the error did not stop the sweep: every case has its row
    assert len(rows) == 2 * 2 * len(impl_list) and len(df) == len(rows)
    for T in (32, 128):
        w = st["full/test-wrong", "prefill", T]
        assert w.status == "wrong" and w.ms_median is None and w.n_samples is None  # never timed
        assert w.max_abs_err == pytest.approx(0.1, rel=1e-3) and "differs from full/reference" in w.reason
    assert st["full/test-nodecode", "decode", 32].status == "unsupported"
    assert st["full/test-nodecode", "decode", 32].reason == "no decode step"
    assert st["full/test-nodecode", "prefill", 32].status == "ok"
    assert st["full/test-nodecode", "prefill", 32].accuracy == "pass"
    gpu = st["full/test-gpuonly", "prefill", 32]
    assert gpu.status == "unavailable" and "cuda" in gpu.reason


def test_unsupported_configuration(tmp_path):
    # RAT needs T to be a multiple of the chunk size
    rows, _ = run(tmp_path, impls=["rat/reference"], modes=["prefill"], seq_lens=[48], chunk_sizes=[32])
    assert rows[0].status == "unsupported" and "multiple of chunk_size" in rows[0].reason


def test_slow_series_skips_longer_sequences(tmp_path, fakes):
    rows, _ = run(tmp_path, impls=["full/test-slow"], modes=["prefill"], seq_lens=[16, 32, 64], max_call_s=0.005)
    assert [r.status for r in rows] == ["ok", "skipped", "skipped"]
    assert "max_call_s" in rows[1].reason


def test_rows_are_appended_as_cases_finish_and_resume_skips_them(tmp_path, fakes):
    s = spec(impls=["full/reference", "full/test-broken"], modes=["prefill", "decode"])
    r, cases, done = runner.start(s, tmp_path, command="first", measure_ceilings=False)
    assert done == set() and len(cases) == 8
    seen = []

    def on_done(case, row):
        seen.append(len(read_rows(tmp_path)))  # the row is on disk before the next case starts

    with pytest.raises(KeyboardInterrupt):
        def interrupt(case):
            if len(seen) == 3:
                raise KeyboardInterrupt
        r.run(cases, on_start=interrupt, on_done=on_done)
    assert seen == [1, 2, 3] and len(finished_keys(tmp_path)) == 3
    # a crash in the middle of writing leaves a partial line: it is skipped, not fatal
    with open(tmp_path / "results.jsonl", "a") as fh:
        fh.write('{"key": "partial')
    with pytest.raises(FileExistsError):
        runner.start(s, tmp_path, command="again", measure_ceilings=False)
    r2, cases2, done2 = runner.start(s, tmp_path, command="resume", resume=True, measure_ceilings=False)
    assert len(done2) == 3
    rows2 = r2.run(cases2, skip=done2)
    assert len(rows2) == 5
    df = load(tmp_path)
    assert sorted(df.key) == sorted(c.key for c in cases) and df.key.is_unique
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["command"] == "first" and meta["resumed"][0]["command"] == "resume"
    # --retry: cases whose last row has one of the statuses are not finished (torchrun deals from this too)
    statuses = {row["key"]: row["status"] for row in read_rows(tmp_path)}
    failed = {k for k, st in statuses.items() if st != "ok"}
    assert failed  # full/test-broken errs
    assert finished_keys(tmp_path, {"error", "wrong", "oom"}) == set(statuses) - failed
    _, _, done3 = runner.start(s, tmp_path, command="retry", resume=True, retry={"error", "wrong", "oom"},
                               measure_ceilings=False)
    assert done3 == set(statuses) - failed


LOST = "AcceleratorError: CUDA error: an illegal memory access was encountered"


def test_free_returns_the_error_of_a_lost_device(monkeypatch):
    """A kernel's fault surfaces at the synchronize after the case; CUDA keeps it for the process."""
    from ratbench.bench import memory

    emptied = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    assert memory.free("cuda") is None and emptied == [1]

    def fault():
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nSearch for `cudaErrorIllegalAddress'")

    monkeypatch.setattr(torch.cuda, "synchronize", fault)
    assert memory.free("cuda") == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert emptied == [1]
    assert memory.free("cpu") is None


@pytest.mark.parametrize("after", ["error", "ok"])
def test_a_lost_device_stops_the_sweep_and_keeps_the_rows(tmp_path, fakes, monkeypatch, after):
    """The case after which the device is lost ends error (an ok row's timing cannot be trusted); no later
    case starts, and every case before it keeps its row on disk."""
    from ratbench.bench import memory

    s = spec(impls=["full/test-broken", "full/reference"], modes=["prefill"], seq_lens=[128, 256])
    r, cases, _ = runner.start(s, tmp_path, command="pytest", measure_ceilings=False)
    lose = "full/test-broken" if after == "error" else "full/reference"  # test-broken raises above T 64
    at = next(i for i, c in enumerate(cases) if c.impl == lose)
    started = []
    monkeypatch.setattr(memory, "free", lambda device, collect=False: LOST if started[-1] == lose else None)
    rows = r.run(cases, on_start=lambda c: started.append(c.impl))
    assert len(rows) == at + 1 and len(read_rows(tmp_path)) == at + 1 and r.left == len(cases) - at - 1 > 0
    last = rows[-1]
    assert last.status == "error" and last.impl == lose
    assert (LOST in last.reason) == (after == "ok") and r.device_lost == f"{cases[at].short()}: {LOST}"


def test_row_roundtrip():
    c = Case(impl="swa/reference", mode="decode", batch=2, seq_len=64, heads=1, head_dim=8, dtype="float32",
             device="cpu", window=16)
    row = Row.for_case(c, "oom", reason="x", ms_median=float("nan"))
    d = json.loads(row.to_json())
    assert d["ms_median"] is None and d["window"] == 16 and d["key"] == c.key
    assert Row(**d).case() == c
    with pytest.raises(ValueError):
        Row.for_case(c, "fine")


@pytest.mark.parametrize("name,extra", [("rat/reference", {"chunk_size": 4}), ("full/reference", {}),
                                        ("swa/reference", {"window": 5}), ("linear/reference", {"decay": True})])
def test_decode_state_filled_in_batch_slices_equals_one_prefill(monkeypatch, name, extra):
    from ratbench import impls

    c = Case(impl=name, mode="decode", batch=5, seq_len=16, heads=2, head_dim=8, dtype="float64", device="cpu",
             **extra)
    impl = impls.get(name)
    monkeypatch.setattr(C, "FILL_TOKENS", 30)  # 2 sequences of 15 tokens per prefill call: slices 2, 2, 1
    sliced, _ = C.filled_state(impl, c, seed=3)
    monkeypatch.setattr(C, "FILL_TOKENS", 10**9)
    whole, _ = C.filled_state(impl, c, seed=3)
    assert sliced.pos == whole.pos == 15
    # the slices use different seeds than one call, so compare against slices built by hand instead
    ref = C.init_state(impl, c, 5, 16)
    for b0, nb in ((0, 2), (2, 2), (4, 1)):
        part = C.init_state(impl, c, nb, 16)
        C.prefill(impl, c, part, C.make_inputs(c, nb, 15, 2, seed=3 + b0))
        C._copy_batch_slice(ref, part, b0, nb)
    for f in ("k", "v", "S", "k_cache", "v_cache", "kt", "vt"):
        if hasattr(ref, f):
            assert torch.equal(getattr(ref, f), getattr(sliced, f)), f
    # and the step on the sliced state agrees with the reference forward on the same sequences
    tok = C.make_inputs(c, 5, 1, 2, seed=9, step=True)
    C.step(impl, c, sliced, tok)
    assert sliced.pos == 16


def test_timing_statistics_on_cpu():
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.2) == pytest.approx(1.8)
    assert quantile([3.0], 0.8) == 3.0
    calls = []
    t = measure(lambda: calls.append(1), lambda: None, "cpu", TimingPolicy(repeats=7, min_repeats=2, warmup=2,
                                                                           budget_s=10.0))
    # 1 first call + 2 warm-up + 7 timed (the budget would allow many more; repeats caps it)
    assert t.n == 7 and len(calls) == 10 and t.timer == "wall-clock" and t.first_call_ms is not None
    assert t.p20 <= t.median <= t.p80


def test_prefill_says_which_call_was_timed(tmp_path, fakes):
    rows, _ = run(tmp_path, impls=["full/reference", "full/test-nodecode"], modes=["prefill", "train", "decode"],
                  seq_lens=[32])
    calls = {(r.impl, r.mode): r.timed_call for r in rows if r.status == "ok"}
    assert calls == {("full/reference", "prefill"): "prefill", ("full/test-nodecode", "prefill"): "forward",
                     ("full/reference", "train"): "forward+backward", ("full/test-nodecode", "train"): "forward+backward",
                     ("full/reference", "decode"): "step"}


def test_rows_say_how_far_they_can_be_trusted(tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        rows, df = run(tmp_path, modes=["prefill", "decode"], repeats=50, min_repeats=3, case_budget_s=0.05,
                       target_ci_rel=0.05, threads=1)
        assert torch.get_num_threads() == 1  # the spec's thread count, set before anything is timed
    finally:
        torch.set_num_threads(threads)
    assert len(rows) == 4 and set(df.status) == {"ok"}
    for r in rows:
        assert r.ms_rel_spread == pytest.approx((r.ms_p80 - r.ms_p20) / r.ms_median, rel=1e-4, abs=1e-6)
        assert isinstance(r.noisy, bool) and isinstance(r.converged, bool) and r.load_avg is not None
        assert r.noisy == bool(r.noise_reason)
        assert r.cpu_wait_frac is not None and r.cpu_wait_frac >= 0  # Linux: the threads' schedstat
        assert 3 <= r.n_samples <= 50
        assert r.converged == (r.ms_ci_rel is not None and r.ms_ci_rel <= 0.05)
    assert df.noisy.dtype == bool


def test_cpu_presets_time_adaptively_on_one_thread():
    from ratbench.bench.presets import preset

    for name in ("smoke", "default", "paper"):
        cpu, gpu = preset(name, "cpu"), preset(name, "cuda")
        assert cpu.threads == 1 and cpu.target_ci_rel == 0.05
        assert gpu.threads is None and gpu.target_ci_rel is None  # the GPU protocol is unchanged
    s = preset("default", "cpu")
    assert runner.Runner(Path("x"), s).policy.target_ci_rel == 0.05
    s.device = "cuda"
    assert runner.Runner(Path("x"), s).policy.target_ci_rel is None  # CUDA events are read once, at the end
