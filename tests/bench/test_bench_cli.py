"""run_bench.py end to end on the CPU (in-process, so the test stays fast)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ratbench.bench import cli as run_bench
from ratbench.bench import exit_codes
from ratbench.bench.results import load

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_flag_with_examples():
    out = subprocess.run([sys.executable, "run_bench.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0
    for flag in ("--impl", "--mode", "--seq-len", "--chunk-size", "--batch", "--tokens", "--window", "--heads",
                 "--head-dim", "--dtype", "--device", "--repeats", "--out", "--preset", "--resume", "examples:",
                 "report RESULTS", "resume DIR", "list"):
        assert flag in out.stdout, flag


def test_cli_smoke_run_report_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--preset", "smoke", "--impl", "full/reference,rat/reference,swa/reference", "--mode", "train,decode",
            "--seq-len", "32,64", "--heads", "1", "--head-dim", "16", "--device", "cpu", "--repeats", "3",
            "--no-progress", "--out", str(out)]
    assert run_bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "train (forward + backward)" in printed and "`rat/reference (L=16)`" in printed
    df = load(out)
    assert len(df) == 12 and set(df.status) == {"ok"} and set(df.seq_len) == {32, 64}
    assert (out / "report.md").exists() and (out / "figures" / "latency_vs_seq_len.pdf").exists()
    meta = json.loads((out / "run.json").read_text())
    assert "--preset smoke" in meta["command"] and meta["ceilings"]["copy_gbps"] > 0
    # the same --out again is refused (rows would mix); resume finds nothing left to do
    assert run_bench.main(argv) == 2
    assert run_bench.main(["resume", str(out), "--no-progress"]) == 0
    assert len(load(out)) == 12
    # report regenerates from the results file alone, into another directory, with a chosen baseline
    assert run_bench.main(["report", str(out / "results.jsonl"), "--baseline", "full/reference",
                           "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "speed-ups are over `full/reference`" in md


def test_resume_after_partial_run(tmp_path):
    out = tmp_path / "run"
    base = ["--impl", "full/reference", "--mode", "prefill", "--seq-len", "16,32,64", "--batch", "1", "--heads", "1",
            "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--no-progress", "--no-figures", "--out", str(out)]
    assert run_bench.main(base) == 0
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(lines[:1]) + "\n")  # as if it had died after one case
    assert run_bench.main(["resume", str(out), "--no-progress", "--no-figures"]) == 0
    df = load(out)
    assert sorted(df.seq_len) == [16, 32, 64]


def test_resume_retry_reruns_failed_cases(tmp_path, capsys):
    """After a bug fix, `resume DIR --retry error` runs again the cases whose last row is an error; the
    new row wins when the results are loaded; finished cases are not re-run."""
    out = tmp_path / "run"
    base = ["--impl", "full/reference", "--mode", "prefill", "--seq-len", "16,32", "--batch", "1", "--heads", "1",
            "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--no-progress", "--no-figures", "--out", str(out)]
    assert run_bench.main(base) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    rows[0].update(status="error", reason="RuntimeError: a bug since fixed", ms_median=None)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # plain resume: an error row is finished (nothing runs), and the run still has an error: exit 3
    assert run_bench.main(["resume", str(out), "--no-progress", "--no-figures"]) == exit_codes.FAILED
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    assert run_bench.main(["resume", str(out), "--retry", "error", "--no-progress", "--no-figures"]) == 0
    assert len((out / "results.jsonl").read_text().splitlines()) == 3  # only the failed case ran again
    df = load(out)
    assert len(df) == 2 and set(df.status) == {"ok"}
    assert run_bench.main(["resume", str(out), "--retry", "ok"]) == 2
    assert run_bench.main(["--retry", "error", "--out", str(tmp_path / "y"), "--device", "cpu"]) == 2
    assert "--retry goes with resume" in capsys.readouterr().err


@pytest.mark.parametrize("argv,msg", [
    (["--seq-len", "4q"], "cannot read"), (["--seq-len", "4k..1k"], "runs backwards"), (["--heads", "0"], ">= 1"),
    (["--impl", "nope/*"], "no implementation"), (["--mode", "fwd"], "unknown mode"),
    (["--dtype", "int8"], "unknown dtype"), (["--level", "nope"], "unknown level"), (["--decay", "maybe"], "yes/no"),
    (["--compile", "maybe"], "yes/no"), (["--threads", "-2"], ">= 0"), (["--budget", "nan"], ">= 0"),
    (["--max-call-s", "0"], "> 0"), (["--layers", "0"], ">= 1"), (["--decode-fill", "all"], "invalid choice")])
def test_bad_arguments_are_clear_errors(tmp_path, capsys, argv, msg):
    """One line with the prefix, exit 2, and the run directory is not created (all of the command line
    is checked before anything is written)."""
    assert run_bench.main(argv + ["--device", "cpu", "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert msg in err and err.startswith("run_bench.py: error: ") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_dry_run(capsys):
    assert run_bench.main(["--preset", "paper", "--device", "cpu", "--impl", "rat/reference", "--mode", "train",
                           "--level", "op", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0] == "rat/reference|train|op|B8|T128|H2|D32|L16|W-|decay-|float32|cpu"
    assert "3 cases" in out.err


def test_list(capsys):
    assert run_bench.main(["list", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "rat/reference" in out and "available" in out


def test_time_limit_leaves_cases_for_resume(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--impl", "full/reference", "--mode", "prefill", "--seq-len", "16,32,64", "--batch", "1", "--heads", "1",
            "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--no-progress", "--no-figures",
            "--time-limit", "0", "--out", str(out)]
    assert run_bench.main(argv) == exit_codes.UNFINISHED
    assert len(load(out)) == 1  # the first case starts, then the limit stops the rest
    assert f"2 cases not run; finish them with: python run_bench.py resume {out}" in capsys.readouterr().err
    assert "**incomplete**: 1 of 3 cases" in (out / "report.md").read_text()
    assert run_bench.main(["resume", str(out), "--no-progress", "--no-figures", "--time-limit", "1000"]) == 0
    assert len(load(out)) == 3
    assert "incomplete" not in (out / "report.md").read_text()


def test_a_lost_device_leaves_cases_for_resume(tmp_path, capsys, monkeypatch):
    """A kernel's fault that CUDA keeps for the process (bench/runner.py): the case ends error, the others are
    left for a resume in a fresh process, and stderr says why in one line, no traceback."""
    from ratbench.bench import memory

    out = tmp_path / "run"
    argv = ["--impl", "full/reference", "--mode", "prefill", "--seq-len", "16,32,64", "--batch", "1", "--heads", "1",
            "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--no-progress", "--no-figures", "--out", str(out)]
    monkeypatch.setattr(memory, "free", lambda device, collect=False: "AcceleratorError: CUDA error: an illegal "
                        "memory access was encountered")
    assert run_bench.main(argv) == exit_codes.UNFINISHED
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("the device was lost in full/reference prefill B=1 T=16: AcceleratorError: CUDA error: an "
            "illegal memory access was encountered, and this process can run no more cases: 2 cases not run; finish "
            f"them with: python run_bench.py resume {out}") in " ".join(err.split())
    rows = load(out)
    assert len(rows) == 1 and rows.status.tolist() == ["error"]
    monkeypatch.undo()
    assert run_bench.main(["resume", str(out), "--no-progress", "--no-figures"]) == exit_codes.FAILED
    assert len(load(out)) == 3


def test_time_limit_before_the_baseline_ran(tmp_path, capsys):
    """--baseline names an implementation of the sweep whose cases the time limit left for resume: the
    report of this session uses the default baseline (said on stderr) instead of failing at the end."""
    out = tmp_path / "run"
    argv = ["--impl", "full/reference,swa/reference", "--mode", "prefill", "--seq-len", "16", "--batch", "1",
            "--heads", "1", "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--no-progress", "--no-figures",
            "--time-limit", "0", "--baseline", "swa/reference", "--out", str(out)]
    assert run_bench.main(argv) == exit_codes.UNFINISHED
    assert "--baseline swa/reference has no rows yet" in capsys.readouterr().err
    assert run_bench.main(["resume", str(out), "--time-limit", "100", "--baseline", "swa/reference",
                           "--no-progress", "--no-figures"]) == 0
    assert "speed-ups are over `swa/reference`" in (out / "report.md").read_text()
