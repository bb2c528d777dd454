"""tests/benchmarks (the pytest-benchmark adapter) on the CPU: its JSON holds the harness's samples and the
machine's GPU / driver / torch / triton fields; a harness run of the same flags has the same cases; and
scripts/compare_benchmark_json.py compares the two (the check the lead runs on the H200)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("--device cpu --impl rat/reference,linear/triton --mode train,prefill,decode --seq-len 64 --batch 1 "
        "--heads 1 --head-dim 64 --repeats 3 --min-repeats 3 --budget 0.001 --threads 1")
N_CASES = 6  # 2 implementations x 3 modes


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    env.pop("TRITON_INTERPRET", None)  # under pytest, tests/conftest.py must set it (no GPU visible)
    return {**env, **extra}


def _compare_module():
    path = ROOT / "scripts" / "compare_benchmark_json.py"
    spec = importlib.util.spec_from_file_location("compare_benchmark_json", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapter") / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/benchmarks", "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={out}"], cwd=ROOT, env=_env(RATBENCH_BENCH_ARGS=ARGS),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{N_CASES} passed" in proc.stdout, proc.stdout[-2000:]
    return out


def test_json_holds_the_harness_samples_and_the_machine(bench_json):
    data = json.loads(bench_json.read_text())
    info = data["machine_info"]
    for k in ("gpu", "gpu_driver", "cuda", "torch", "triton", "triton_interpret", "ratbench_device", "ratbench_args"):
        assert k in info, k
    import torch
    import triton

    assert info["torch"] == torch.__version__ and info["triton"] == triton.__version__
    assert info["ratbench_device"] == "cpu" and info["gpu"] is None and info["triton_interpret"] == "1"
    assert info["ratbench_args"] == ARGS
    benches = data["benchmarks"]
    assert len(benches) == N_CASES
    for b in benches:
        row = b["extra_info"]["row"]
        assert row["status"] == "ok" and row["key"] == b["extra_info"]["key"] and row["device"] == "cpu"
        assert b["extra_info"]["timer"] == row["timer"] == "wall-clock"  # bench.timing's CPU timer
        assert b["options"]["timer"] == "harness_samples"
        # pytest-benchmark's samples are exactly the harness's (seconds vs milliseconds), nothing host-timed
        assert b["stats"]["data"] == [s / 1e3 for s in row["samples_ms"]]
        assert b["stats"]["rounds"] == row["n_samples"] == len(row["samples_ms"]) == 3
        assert b["stats"]["median"] * 1e3 == pytest.approx(row["ms_median"], rel=1e-6)
        # checked against the family reference first, as in a sweep (a reference is not checked against itself)
        assert row["accuracy"] == ("unchecked" if row["impl"].endswith("/reference") else "pass")


def test_a_harness_run_of_the_same_flags_has_the_same_cases(bench_json, tmp_path):
    run = tmp_path / "harness"
    proc = subprocess.run([sys.executable, "run_bench.py", *ARGS.split(), "--out", str(run), "--no-figures",
                           "--no-progress"], cwd=ROOT, env=_env(TRITON_INTERPRET="1"),  # as the adapter had it
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    comp = _compare_module().compare(bench_json, run, tolerance=0.05)
    assert len(comp.cases) == N_CASES and not comp.only_pytest and not comp.only_harness
    assert all(c.samples_match and c.pytest_timer == c.harness_timer == "wall-clock" for c in comp.cases)
    # CPU timings of two processes on a shared box differ by more than 5%: the verdict is the GPU's to give;
    # here a tolerance nothing can miss must pass through the command line
    cli = subprocess.run([sys.executable, "scripts/compare_benchmark_json.py", str(bench_json), str(run),
                          "--tolerance", "1e9"], cwd=ROOT, env=_env(), capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"{N_CASES} of {N_CASES} common cases within" in cli.stdout


def _rows_from(bench_json: Path, run: Path, scale: dict[str, float] | None = None) -> None:
    """A harness run directory holding the rows the adapter recorded (optionally some ms_median scaled)."""
    run.mkdir()
    data = json.loads(bench_json.read_text())
    with open(run / "results.jsonl", "w") as fh:
        for b in data["benchmarks"]:
            row = dict(b["extra_info"]["row"])
            row["ms_median"] *= (scale or {}).get(row["key"], 1.0)
            fh.write(json.dumps(row) + "\n")
    (run / "run.json").write_text(json.dumps({"device": {"device": "cpu", "name": "some CPU"}}))


def test_compare_flags_a_case_outside_the_tolerance(bench_json, tmp_path, capsys):
    main = _compare_module().main
    keys = [b["extra_info"]["key"] for b in json.loads(bench_json.read_text())["benchmarks"]]
    _rows_from(bench_json, tmp_path / "same")
    assert main([str(bench_json), str(tmp_path / "same")]) == 0
    _rows_from(bench_json, tmp_path / "slow", {keys[0]: 1.08})  # the harness 8% slower on one case
    assert main([str(bench_json), str(tmp_path / "slow")]) == 1
    assert f"{N_CASES - 1} of {N_CASES} common cases within 5.0%" in capsys.readouterr().out
    assert main([str(bench_json), str(tmp_path / "slow"), "--tolerance", "0.1"]) == 0


def test_compare_refuses_unusable_input(bench_json, tmp_path, capsys):
    main = _compare_module().main
    assert main([str(bench_json), str(tmp_path / "nope")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("compare_benchmark_json.py: error: no harness results at")
    assert len(err.strip().splitlines()) == 1
    gpu_run = tmp_path / "gpu"
    _rows_from(bench_json, gpu_run)
    (gpu_run / "run.json").write_text(json.dumps({"device": {"device": "cuda", "name": "NVIDIA H200"}}))
    assert main([str(bench_json), str(gpu_run)]) == 2
    assert "different devices" in capsys.readouterr().err


def test_triton_interpret_is_set_only_without_a_gpu():
    """tests/conftest.py: the interpreter without a GPU, never with one (it would be timed by tests/benchmarks)."""
    probe = ("import runpy, os, torch\n"
             "torch.cuda.is_available = lambda: {gpu}\n"
             "runpy.run_path('tests/conftest.py')\n"
             "print(os.environ.get('TRITON_INTERPRET'))\n")
    for gpu, expected in ((False, "1"), (True, "None")):
        out = subprocess.run([sys.executable, "-c", probe.format(gpu=gpu)], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=120, check=True).stdout.split()
        assert out[-1] == expected, (gpu, out)
