"""A gate run's speed-ups round by round (bench/rounds.py): rounds.jsonl split into rounds by each case's order,
every round compared as the report compares a run, the section in report.md and in `run_bench.py report`'s output,
and nothing for a run without rounds."""
from __future__ import annotations

from pathlib import Path

import pytest

from ratbench.bench import report, rounds
from ratbench.bench import results as R
from ratbench.bench.sweep import Case, SweepSpec


def _case(impl: str, T: int = 256) -> Case:
    return Case(impl=impl, mode="prefill", batch=2, seq_len=T, heads=2, head_dim=32, dtype="float32", device="cpu")


def _row(case: Case, ms: float | None) -> R.Row:
    if ms is None:
        return R.Row.for_case(case, "error", reason="boom")
    return R.Row.for_case(case, "ok", ms_median=ms, ms_p20=ms, ms_p80=ms, samples_ms=[ms] * 3, n_samples=3,
                          timer="wall-clock", timed_call="prefill", first_call_ms=ms * 5, flops=1e9, bytes=1e6,
                          tflops=1e9 / ms / 1e9, gbps=1e6 / ms / 1e6, pct_peak_flops=1.0, pct_peak_bw=1.0,
                          peak_mem_bytes=2**20, max_abs_err=1e-6, accuracy="pass")


def _gate_run(d: Path, per_round: list[dict[Case, float | None]]) -> Path:
    """A gate run's files: run.json, rounds.jsonl (round by round, each round's cases in the given order) and the
    pooled results.jsonl (the last round's rows stand in for the pooled ones)."""
    d.mkdir(parents=True, exist_ok=True)
    R.write_meta(d, {"device": {"device": "cpu", "name": "Test CPU"}, "spec": SweepSpec(device="cpu").to_dict(),
                     "ceilings": None, "command": "test"})
    for k, rows in enumerate(per_round):
        items = list(rows.items()) if k % 2 == 0 else list(rows.items())[::-1]  # gate alternates the direction
        for case, ms in items:
            R.append_row(d / R.ROUNDS, _row(case, ms))
    for case, ms in per_round[-1].items():
        R.append_row(d / R.RESULTS, _row(case, ms))
    return d


def test_round_speedups_per_round_and_case(tmp_path):
    a, b, a2, b2 = _case("full/reference"), _case("full/sdpa"), _case("full/reference", 512), _case("full/sdpa", 512)
    run = _gate_run(tmp_path / "g", [
        {a: 2.0, b: 1.0, a2: 4.0, b2: 5.0},
        {a: 2.0, b: 2.5, a2: 4.0, b2: 4.0},
        {a: 3.0, b: 1.5, a2: 4.0, b2: None},  # b2 failed in the last round
    ])
    rs = rounds.round_speedups(run, "full/reference")
    assert [(r.series, r.seq_len) for r in rs] == [("full/sdpa", 256), ("full/sdpa", 512)]
    assert rs[0].speedups == pytest.approx((2.0, 0.8, 2.0)) and rs[0].faster == 2
    assert rs[1].speedups[:2] == pytest.approx((0.8, 1.0)) and rs[1].speedups[2] is None and rs[1].faster == 0
    # against the other implementation: the inverse, per round
    inv = rounds.round_speedups(run, "full/sdpa")
    assert inv[0].speedups == pytest.approx((0.5, 1.25, 0.5)) and inv[0].faster == 1
    text = rounds.rounds_section(run, "full/reference")
    assert "| `full/sdpa` | prefill | 256 (2) | 2.000 0.800 2.000 | 0.800 - 2.000 | 2 of 3 |" in text
    assert "| `full/sdpa` | prefill | 512 (2) | 0.800 1.000 - | 0.800 - 1.000 | 0 of 2 |" in text


def test_report_and_cli_show_the_rounds_and_a_plain_run_has_none(tmp_path, capsys):
    a, b = _case("full/reference"), _case("full/sdpa")
    run = _gate_run(tmp_path / "g", [{a: 2.0, b: 1.0}, {a: 2.0, b: 4.0}])
    md = report.write_report(run, baseline="full/reference", figures=False).read_text()
    assert "## Speed-up per round (gate rounds)" in md and "| 2.000 0.500 | 0.500 - 2.000 | 1 of 2 |" in md
    from ratbench.bench import cli

    assert cli.main(["report", str(run), "--baseline", "full/reference", "--no-figures"]) == 0
    assert "| 2.000 0.500 | 0.500 - 2.000 | 1 of 2 |" in capsys.readouterr().out
    (run / R.ROUNDS).unlink()  # a plain run: no section, nothing printed
    assert rounds.round_speedups(run, "full/reference") == [] and report.rounds_summary(run) == ""
    assert "per round" not in report.write_report(run, baseline="full/reference", figures=False).read_text()
