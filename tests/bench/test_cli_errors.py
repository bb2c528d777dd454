"""Every command of run_bench.py, run as a subprocess: bad input is one line on stderr with the usual
prefix, exit 2, no traceback and nothing written; ``COMMAND --help`` exits 0; a sweep's exit code says
whether it is done (0), had failures (3), is unfinished (4) or had nothing to run (5).

Exit codes are written out as numbers here (bench/exit_codes.py has the table): these tests run the
command line as a user does."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PREFIX = re.compile(r"^run_bench\.py( (run|list|report|resume|compare|gate|calibrate|static))?: error: \S")
TINY = ["--mode", "prefill", "--batch", "1", "--heads", "1", "--head-dim", "8", "--device", "cpu", "--threads", "1",
        "--repeats", "2", "--no-progress", "--no-figures"]


def _run(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """A workspace: a finished run ('full'), a directory without run.json ('nometa'), a file, a run whose
    implementation is not registered ('unknown'), a broken static baseline ('bad.json')."""
    ws = tmp_path_factory.mktemp("ws")
    p = _run(["--impl", "full/reference", "--seq-len", "16", *TINY, "--out", str(ws / "full")], cwd=ws)
    assert p.returncode == 0, p.stderr
    (ws / "nometa").mkdir()
    (ws / "file").write_text("x\n")
    (ws / "bad.json").write_text("{not json\n")
    shutil.copytree(ws / "full", ws / "unknown")
    rows = [json.loads(x) for x in (ws / "unknown" / "results.jsonl").read_text().splitlines()]
    for r in rows:
        r["key"] = r["key"].replace("full/reference", "full/not-registered")
        r["impl"] = r["label"] = "full/not-registered"
    (ws / "unknown" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    meta = json.loads((ws / "unknown" / "run.json").read_text())
    meta["spec"]["impls"] = ["full/not-registered"]
    (ws / "unknown" / "run.json").write_text(json.dumps(meta))
    return ws


NO_GPU = not torch.cuda.is_available()
BAD = [
    # run (the default command)
    (["run", "--seq-len", "4x"], "cannot read '4x' as a size"),  # more sweep flags: test_bench_cli.py
    (["--impl", "nope/*"], "no implementation matches 'nope/*'"),
    (["--preset", "nope"], "invalid choice: 'nope'"),
    (["--level", "nope"], "unknown level"),
    (["--threads", "-1"], "--threads: must be >= 0"),
    (["--repeats", "many"], "--repeats: an integer is needed"),
    (["--time-limit", "-1"], "--time-limit: must be >= 0"),
    (["--batch", "1", "--tokens", "4k"], "not allowed with argument"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    *([(["--device", "cuda", "--impl", "full/reference"], "no CUDA GPU is visible")] if NO_GPU else []),
    (["--impl", "full/reference", "--out", "/proc/ratbench-x"], "--out /proc/ratbench-x: cannot write there"),
    (["--impl", "full/reference", "--out", "{ws}/file"], "is not a directory"),
    (["--impl", "full/reference", "--out", "{ws}/full"], "already has rows"),
    (["--impl", "full/reference", "--baseline", "nope/x"], "--baseline nope/x is not among"),
    (["--retry", "error"], "--retry goes with resume"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["bogus"], "unrecognized arguments: bogus"),
    # --register (any command that runs implementations)
    (["--register", "bad", "--impl", "full/reference"], "--register takes NAME=MODULE:CLASS"),
    (["--impl", "full/reference", "--register"], "--register: expected NAME=MODULE:CLASS"),
    (["--register", "full/x=no_such_module:X", "--impl", "full/x"], "No module named 'no_such_module'"),
    (["--register", "full/x=bench_fakes:Nope", "--impl", "full/x"], "has no attribute 'Nope'"),
    (["--register", "nofamily/x=bench_fakes:WrongFull"], "'<family>/<impl>'"),
    # ratbench's own module by its top-level name (a second copy, with a registry of its own)
    (["--register", "full/x=impls.full.sdpa:SDPAMath", "--impl", "full/x"], "use ratbench.impls.full.sdpa:SDPAMath"),
    (["--register", "full/x=bench_fakes:WrongFull", "report", "{ws}/full"], "--register does not apply"),
    # resume
    (["resume"], "the following arguments are required: DIR"),
    (["resume", "{ws}/missing"], "no such run directory"),
    (["resume", "{ws}/nometa"], "no run.json with a sweep spec"),
    (["resume", "{ws}/full", "--retry", "ok"], "--retry goes with resume"),
    (["resume", "{ws}/full", "--retry", "bogus"], "unknown: bogus"),
    (["resume", "{ws}/full", "--seq-len", "4k"], "unrecognized arguments: --seq-len 4k"),
    (["--resume", "{ws}/full", "--seq-len", "4k"], "these flags would be ignored: --seq-len"),
    (["resume", "{ws}/full", "--baseline", "nope/x"], "--baseline nope/x is not among"),
    (["resume", "{ws}/unknown"], "no implementation matches 'full/not-registered'"),
    # list
    (["list", "--device", "tpu"], "invalid choice: 'tpu'"),
    (["list", "extra"], "unrecognized arguments: extra"),
    # report
    (["report"], "the following arguments are required: results"),
    (["report", "{ws}/missing"], "no such file or directory"),
    (["report", "{ws}/nometa"], "no results rows"),
    (["report", "{ws}/full", "--baseline", "nope/x"], "--baseline nope/x has no rows"),
    (["report", "{ws}/full", "--out", "/proc/ratbench-x"], "cannot write there"),
    (["report", "{ws}/full", "--format", "md,xls"], "argument --format: unknown format 'xls'; valid: md, csv, json"),
    (["report", "{ws}/full", "--metrics", "ms,bogus"], "argument --metrics: unknown metric 'bogus'; valid: ms, "),
    (["report", "{ws}/full", "--format", "csv", "--metrics", ""], "argument --metrics: no metric given"),
    *([(["report", "{ws}/full", "--format", "csv,parquet"], "parquet needs pyarrow or fastparquet")]
      if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")) else []),
    # compare
    (["compare", "{ws}/full"], "the following arguments are required: new"),
    (["compare", "{ws}/missing", "{ws}/full"], "does not exist"),
    (["compare", "{ws}/full", "{ws}/nometa"], "has no results.jsonl"),
    (["compare", "{ws}/full", "{ws}/full", "--threshold", "2"], "threshold must be in"),
    (["compare", "{ws}/full", "{ws}/full", "--out", "/proc/ratbench-x"], "cannot write there"),
    # gate
    (["gate"], "the following arguments are required: --baseline"),
    (["gate", "--baseline", "{ws}/missing"], "does not exist"),
    (["gate", "--baseline", "{ws}/full", "--rounds", "0"], "--rounds: must be >= 1"),
    (["gate", "--baseline", "{ws}/full", "--calibrate", "0"], "--calibrate: must be >= 1"),
    (["gate", "--baseline", "{ws}/unknown"], "--register NAME=MODULE:CLASS"),
    (["gate", "--baseline", "{ws}/full", "--out", "{ws}/full"], "already has rows"),
    (["gate", "--baseline", "{ws}/full", "--out", "/proc/ratbench-x"], "cannot write there"),
    (["gate", "--baseline", "{ws}/full", "--register", "bad"], "--register takes NAME=MODULE:CLASS"),
    # calibrate
    (["calibrate", "--baseline", "{ws}/missing"], "does not exist"),
    (["calibrate", "--baseline", "{ws}/full", "--runs", "0"], "--runs: must be >= 1"),
    (["calibrate", "--baseline", "{ws}/full", "--threshold", "-1"], "threshold must be in"),
    # static
    (["static", "--jobs", "0"], "--jobs: must be >= 1"),
    (["static", "--baseline", "{ws}/missing.json"], "does not exist"),
    (["static", "--baseline", "{ws}/bad.json"], "is not a static-gate report"),
    (["static", "--baseline", "none", "--out", "/proc/ratbench-x"], "cannot write there"),
    (["static", "--like", "rat/gluon"], "--like goes with --impl"),
    (["static", "--impl", "rat/nope"], "--impl rat/nope: unknown implementation"),
    (["static", "--impl", "full/sdpa-math"], "no scenario of the static gate runs it"),
    (["static", "--impl", "rat/gluon", "--update"], "--update writes the whole baseline"),
]


@pytest.fixture(scope="module")
def outcomes(ws, tmp_path_factory) -> dict[int, tuple[subprocess.CompletedProcess, bool, Path]]:
    """Every BAD command line, run as a subprocess in its own copy of the workspace (a few at a time: each
    one starts Python and most import torch): (its result, whether the copy is unchanged, the copy)."""
    root = tmp_path_factory.mktemp("bad")

    def one(i: int, argv: list[str]) -> tuple[subprocess.CompletedProcess, bool, Path]:
        d = root / f"{i:02d}"
        shutil.copytree(ws, d)
        before = _snapshot(d)
        args = [a.replace("{ws}", str(d)) for a in argv]
        try:
            p = _run(args, cwd=d, timeout=120)
        except subprocess.TimeoutExpired as exc:  # it ran something long instead of refusing
            p = subprocess.CompletedProcess(args, None, str(exc.stdout or ""), f"timed out: {exc.stderr or ''}")
        return p, _snapshot(d) == before, d

    with ThreadPoolExecutor(max_workers=4) as ex:
        futures = {i: ex.submit(one, i, argv) for i, (argv, _) in enumerate(BAD)}
        return {i: f.result() for i, f in futures.items()}


@pytest.mark.parametrize("i", range(len(BAD)), ids=[" ".join(argv) for argv, _ in BAD])
def test_bad_input_is_one_line_exit_2_nothing_written(outcomes, i):
    p, unchanged, _ = outcomes[i]
    msg = BAD[i][1]
    lines = p.stderr.splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
    assert len(lines) == 1 and PREFIX.match(lines[0]), p.stderr
    assert msg in lines[0], lines[0]
    assert "Traceback" not in p.stderr + p.stdout
    assert unchanged  # no run directory, no report, no gate.md: nothing written


@pytest.mark.parametrize("command", ["", "run", "list", "report", "resume", "compare", "gate", "calibrate",
                                     "static"])
def test_every_command_has_help(tmp_path, command):
    p = _run([command, "--help"] if command else ["--help"], cwd=tmp_path, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.startswith(f"usage: run_bench.py {command if command not in ('', 'run') else ''}".rstrip())
    if command in ("", "run", "resume"):  # the exit-code table
        assert "exit codes" in p.stdout and "nothing runnable" in p.stdout
    assert list(tmp_path.iterdir()) == []


def test_errors_and_wrong_results_exit_3(tmp_path):
    out = tmp_path / "run"
    p = _run(["--register", "full/test-broken=bench_fakes:BrokenFull", "--register=full/test-wrong=bench_fakes:WrongFull",
              "--impl", "full/reference,full/test-broken,full/test-wrong", "--seq-len", "32,128", *TINY,
              "--out", str(out)], cwd=tmp_path)
    assert p.returncode == 3, p.stderr
    assert "3 cases ended error or wrong" in p.stderr
    assert "full/test-broken prefill: error:" in p.stderr and "full/test-wrong prefill: wrong:" in p.stderr
    assert "Traceback" not in p.stderr
    assert "--register full/test-broken=bench_fakes:BrokenFull" in json.loads((out / "run.json").read_text())["command"]
    # a resume with nothing left to run judges the whole run: still 3
    p = _run(["resume", str(out), "--register", "full/test-broken=bench_fakes:BrokenFull",
              "--register", "full/test-wrong=bench_fakes:WrongFull", "--no-progress", "--no-figures"], cwd=tmp_path)
    assert p.returncode == 3, p.stderr


def test_out_of_memory_is_a_result_exit_0(tmp_path):
    p = _run(["--register", "full/test-oom=bench_fakes:OomFull", "--impl", "full/test-oom", "--seq-len", "32,128",
              *TINY, "--out", str(tmp_path / "run")], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    statuses = [json.loads(x)["status"] for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert statuses == ["ok", "oom"]


def test_time_limit_exits_4_with_the_resume_command(tmp_path):
    out = tmp_path / "run"
    p = _run(["--impl", "full/reference", "--seq-len", "16,32,64", *TINY, "--time-limit", "0", "--out", str(out)],
             cwd=tmp_path)
    assert p.returncode == 4, p.stderr
    assert f"2 cases not run; finish them with: python run_bench.py resume {out}" in p.stderr
    p = _run(["resume", str(out), "--time-limit", "1000", "--no-progress", "--no-figures"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr


def test_nothing_runnable_exits_5_with_reasons_and_no_figures(tmp_path):
    out = tmp_path / "run"
    p = _run(["--impl", "rat/reference", "--seq-len", "100", "--chunk-size", "16", "--mode", "train,prefill",
              "--batch", "1", "--heads", "1", "--head-dim", "8", "--device", "cpu", "--threads", "1",
              "--no-progress", "--out", str(out)], cwd=tmp_path)
    assert p.returncode == 5, p.stderr
    assert "nothing runnable: all 2 cases are unsupported, unavailable or skipped" in p.stderr
    assert "rat/reference (L=16) train,prefill: unsupported: seq_len 100 is not a multiple of chunk_size 16" \
        in p.stderr
    assert not (out / "figures").exists()  # no empty figures
    assert "| implementation |" not in p.stdout  # no empty table
    assert "seq_len 100 is not a multiple of chunk_size 16" in (out / "report.md").read_text()
