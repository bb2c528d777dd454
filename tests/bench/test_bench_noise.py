"""Numbers that cannot be trusted say so (bench.timing.noise_columns, adaptive repeats, the noisy flag,
the console warning). Timed callables run on a fake clock: each call advances it by an injected duration,
and the run-queue wait and load average are injected too, so nothing here depends on this machine's load."""
from __future__ import annotations

import json
import random

import pytest

from ratbench.bench import device as D
from ratbench.bench import results as R
from ratbench.bench import timing
from ratbench.bench.sweep import Case


class FakeClock:
    """Stands in for the ``time`` module inside bench.timing: ``perf_counter`` only moves when a fake call
    runs, by that call's duration; ``wait_frac`` of each call is reported as run-queue wait."""

    def __init__(self, durations_ms, wait_frac: float = 0.0) -> None:
        self.now = 0.0
        self.wait = 0.0
        self.durations = iter(durations_ms)
        self.wait_frac = wait_frac
        self.calls = 0

    def perf_counter(self) -> float:
        return self.now

    def call(self) -> None:
        d = next(self.durations) / 1e3
        self.now += d
        self.wait += d * self.wait_frac
        self.calls += 1


@pytest.fixture()
def clock(monkeypatch):
    """``make(durations, wait_frac=0, load=0.1)``: a fake clock installed in bench.timing; its ``call`` is the
    timed callable."""

    def make(durations_ms, wait_frac: float = 0.0, load: float | None = 0.1) -> FakeClock:
        c = FakeClock(durations_ms, wait_frac)
        monkeypatch.setattr(timing, "time", c)

        class FakeWait:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                pass

            def read(self):
                return c.wait

        monkeypatch.setattr(timing, "RunQueueWait", FakeWait)
        monkeypatch.setattr(timing, "load_per_cpu", lambda: load)
        return c

    return make


def steady(n: int, ms: float = 10.0) -> list[float]:
    rng = random.Random(0)
    return [ms * (1 + rng.uniform(-0.005, 0.005)) for _ in range(n)]


def jittery(n: int, ms: float = 10.0) -> list[float]:
    rng = random.Random(1)
    return [ms * rng.choice([1.0, 1.0, 1.5, 3.0, 6.0]) for _ in range(n)]


def policy(**kw) -> timing.TimingPolicy:
    base: dict = {"repeats": 500, "min_repeats": 3, "warmup": 1, "budget_s": 2.0, "target_ci_rel": 0.05}
    base.update(kw)
    return timing.TimingPolicy(**base)


def test_jittery_calls_are_noisy_steady_ones_are_not(clock):
    c = clock(steady(40))
    t = timing.measure(c.call, lambda: None, "cpu", policy(target_ci_rel=None, repeats=30, budget_s=10.0), first_ms=1.0)
    cols = t.noise("cpu")
    assert t.n == 30 and cols["noisy"] is False and cols["noise_reason"] is None
    assert 0 < cols["ms_rel_spread"] < 0.01 and cols["ms_ci_rel"] < 0.01
    c = clock(jittery(40))
    t = timing.measure(c.call, lambda: None, "cpu", policy(target_ci_rel=None, repeats=30, budget_s=10.0), first_ms=1.0)
    cols = t.noise("cpu")
    assert cols["noisy"] is True and "spread" in cols["noise_reason"] and cols["ms_rel_spread"] > timing.SPREAD_MAX
    # the same samples on CUDA: the spread decides there as well
    assert timing.noise_columns(t.samples_ms, "cuda")["noisy"] is True


def test_adaptive_repeats_stop_early_when_the_median_is_tight(clock):
    c = clock(steady(1000))
    t = timing.measure(c.call, lambda: None, "cpu", policy(), first_ms=1.0)
    # 6 samples are the fewest with a 95% interval of the median; steady ones make it narrow at once
    assert t.converged is True and t.n == 6 and c.calls == 1 + 6  # 1 warm-up
    assert t.noise("cpu")["converged"] is True


def test_adaptive_repeats_run_to_the_budget_when_not_tight(clock):
    c = clock(jittery(1000))
    t = timing.measure(c.call, lambda: None, "cpu", policy(budget_s=2.0), first_ms=1.0)
    timed_s = sum(t.samples_ms) / 1e3
    assert t.converged is False and t.n < 500
    assert 2.0 <= timed_s < 2.0 + max(t.samples_ms) / 1e3  # stopped by the budget, at the first call past it
    # and to the repeats cap when that comes first
    c = clock(jittery(1000))
    t = timing.measure(c.call, lambda: None, "cpu", policy(budget_s=100.0, repeats=40), first_ms=1.0)
    assert t.n == 40 and t.converged is False


def test_adaptive_repeats_never_go_below_min_repeats_nor_change_a_fixed_count(clock):
    c = clock(steady(1000))
    t = timing.measure(c.call, lambda: None, "cpu", policy(min_repeats=25), first_ms=1.0)
    assert t.n == 25 and t.converged is True
    # repeats == min_repeats (the gate's rounds): exactly that many, whatever the budget
    c = clock(jittery(1000))
    t = timing.measure(c.call, lambda: None, "cpu", policy(min_repeats=7, repeats=7, budget_s=0.0), first_ms=1.0)
    assert t.n == 7 and t.converged is None


def test_a_busy_machine_is_flagged_from_the_run_queue_wait_and_the_load(clock):
    # a competing process takes the CPU for 40% of every call: steady samples, but the median call is stretched
    c = clock(steady(100), wait_frac=0.4)
    t = timing.measure(c.call, lambda: None, "cpu", policy(target_ci_rel=None, repeats=20, budget_s=10.0), first_ms=1.0)
    cols = t.noise("cpu")
    assert cols["cpu_wait_frac"] == pytest.approx(0.4) and cols["ms_rel_spread"] < 0.01
    assert cols["noisy"] is True and "waited 40% of its time for a CPU" in cols["noise_reason"]
    # no wait, but a load average of 3 per CPU
    c = clock(steady(100), load=3.0)
    t = timing.measure(c.call, lambda: None, "cpu", policy(target_ci_rel=None, repeats=20, budget_s=10.0), first_ms=1.0)
    cols = t.noise("cpu")
    assert cols["cpu_wait_frac"] == 0 and cols["load_avg"] == 3.0 and cols["noisy"] is True
    assert "load average 3.00 per CPU" in cols["noise_reason"]
    # on CUDA the spread alone decides (host load does not stretch GPU time)
    assert timing.noise_columns(t.samples_ms, "cuda", load_avg=3.0, cpu_wait_frac=0.4)["noisy"] is False


def test_median_interval_from_order_statistics():
    assert timing.median_ci([1.0, 2.0, 3.0, 4.0, 5.0]) is None  # no 95% interval from 5 samples
    assert timing.median_ci([6.0, 1.0, 2.0, 3.0, 4.0, 5.0]) == (1.0, 6.0)  # 1 - 2/64 = 96.9%
    xs = [float(i) for i in range(1, 101)]
    assert timing.median_ci(xs) == (40.0, 61.0)  # ranks 40 and 61 of 100 (the binomial table's)
    assert timing.ci_rel(xs) == pytest.approx(21.0 / 50.5)
    assert timing.rel_spread(xs) == pytest.approx((80.2 - 20.8) / 50.5)


def _row(noisy: bool | None, reason: str | None = None, device: str = "cpu") -> R.Row:
    c = Case(impl="full/reference", mode="decode", batch=1, seq_len=64, heads=1, head_dim=8, dtype="float32",
             device=device)
    return R.Row.for_case(c, "ok", ms_median=1.0, ms_p20=1.0, ms_p80=1.0, n_samples=3, noisy=noisy,
                          noise_reason=reason)


def test_rows_of_older_runs_without_the_fields_load_as_not_noisy(tmp_path):
    old = json.loads(_row(None).to_json())
    for col in ("ms_rel_spread", "ms_ci_rel", "converged", "cpu_wait_frac", "load_avg", "noisy", "noise_reason"):
        old.pop(col)
    new = json.loads(_row(True, "p20-p80 spread 50% of the median (> 20%)").to_json())
    new["key"] += "-2"
    (tmp_path / R.RESULTS).write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    df = R.load(tmp_path)
    assert df.noisy.tolist() == [False, True] and df.noisy.dtype == bool
    assert R.is_noisy(old) is False and R.is_noisy(new) is True and R.is_noisy(float("nan")) is False
    assert R.noise_summary([old]) is None
    # an old run.json's ceilings (no noise fields) still make Ceilings
    ceil = D.Ceilings(matmul_tflops=1.0, matmul_dtype="float32", matmul_shape=1024, copy_gbps=1.0, copy_bytes=1)
    assert ceil.noisy is None and R.noise_summary([old], ceil.__dict__) is None


def test_noise_summary_counts_and_gives_the_remedy():
    rows = [_row(False), _row(True, "p20-p80 spread 50% of the median (> 20%)"),
            _row(True, "the median call waited 40% of its time for a CPU (> 10%): the machine was busy")]
    msg = R.noise_summary(rows)
    assert msg.startswith("warning: 2 of 3 timed rows are noisy")
    assert "1 timed while the machine was busy" in msg and "1 with a p20-p80 spread" in msg
    assert "--threads 1" in msg and "--budget" in msg and "idle machine" in msg
    assert R.noise_summary([_row(False), _row(None)]) is None
    msg = R.noise_summary([_row(False)], {"noisy": True, "noise_reason": "matmul: load average 3.00 per CPU"})
    assert msg and msg.startswith("warning: the measured ceilings are noisy (run.json: ceilings.noise_reason)")


def test_cpu_ceilings_carry_their_spread_and_flag(monkeypatch):
    monkeypatch.setattr(timing, "load_per_cpu", lambda: 5.0)  # as busy as it gets
    ceil = D.measure_ceilings("cpu")
    assert ceil.matmul_rel_spread is not None and ceil.copy_rel_spread is not None
    assert ceil.noisy is True and "load average 5.00 per CPU" in ceil.noise_reason


def test_run_warns_once_about_noisy_rows_and_records_the_threads(tmp_path, monkeypatch, capsys):
    import torch

    from ratbench.bench import cli as run_bench

    threads = torch.get_num_threads()
    base = ["--preset", "smoke", "--impl", "full/reference", "--mode", "decode", "--seq-len", "32", "--no-progress",
            "--no-figures", "--device", "cpu"]
    try:
        monkeypatch.setattr(timing, "load_per_cpu", lambda: 5.0)  # every row measured on a "busy" machine
        assert run_bench.main(base + ["--out", str(tmp_path / "busy")]) == 0
        err = capsys.readouterr().err
        assert err.count("warning:") == 1 and "1 of 1 timed rows are noisy" in err and "--budget" in err
        assert "ceilings are noisy" in err
        meta = R.read_meta(tmp_path / "busy")
        assert meta["spec"]["threads"] == 1 and meta["device"]["torch_threads"] == 1
        assert meta["ceilings"]["noisy"] is True
        monkeypatch.setattr(timing, "load_per_cpu", lambda: 0.0)
        monkeypatch.setattr(timing, "SPREAD_MAX", 1e9)  # whatever this machine's load: nothing is noisy
        monkeypatch.setattr(timing, "WAIT_MAX", 1e9)
        assert run_bench.main(base + ["--out", str(tmp_path / "quiet"), "--threads", "0"]) == 0
        assert "warning:" not in capsys.readouterr().err
        assert R.read_meta(tmp_path / "quiet")["spec"]["threads"] == 0  # 0: torch's choice
    finally:
        torch.set_num_threads(threads)


def test_gate_pools_the_noise_columns_of_its_rounds():
    from ratbench.bench.gate import _pool

    a, b = _row(False), _row(False)
    a.samples_ms, a.cpu_wait_frac, a.load_avg = [10.0, 10.1, 10.0], 0.0, 0.2
    b.samples_ms, b.cpu_wait_frac, b.load_avg = [30.0, 31.0, 30.5], 0.3, 0.4
    out = _pool([a, b])
    assert out.ms_rel_spread == pytest.approx(timing.rel_spread(a.samples_ms + b.samples_ms), abs=1e-6)
    assert out.noisy is True and out.cpu_wait_frac == 0.3 and out.load_avg == 0.4
