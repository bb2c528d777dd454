"""The pytest-benchmark adapter's parts: the harness's cases, its measurement, and a timer that hands the
harness's samples to pytest-benchmark.

The grid is given as run_bench.py flags in ``RATBENCH_BENCH_ARGS`` and turned into a SweepSpec by run_bench's
own parser and ``build_spec``, so ``run_bench.py $ARGS`` and ``RATBENCH_BENCH_ARGS="$ARGS" pytest tests/benchmarks``
run the same cases (same keys). Each case is measured by ``bench.runner.Runner.run_case``, exactly as a sweep
measures it: accuracy check first, first call apart, peak memory, then ``bench.timing.measure`` (CUDA events
around each call after an L2 flush, decode steps by CUDA-graph replay; wall clock on the CPU). pytest-benchmark
then records those samples: its timer (``HarnessSamples``) reads 0 before and the next harness sample after each
of its rounds, so its stats are computed from exactly the harness's samples and ``--benchmark-json`` holds the
harness's numbers (the whole harness row is in ``extra_info['row']``).
"""
from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path

ENV_ARGS = "RATBENCH_BENCH_ARGS"
#: the GPU grid when RATBENCH_BENCH_ARGS is unset: three implementations, every mode, T = 4k and 32k
DEFAULT_ARGS = ("--impl rat/triton,linear/triton,full/sdpa-cudnn --seq-len 4k,32k --tokens 128k --decode-batch 64 "
                "--device cuda")


class UsageError(Exception):
    """RATBENCH_BENCH_ARGS that run_bench.py would refuse."""


def bench_args() -> list[str]:
    return shlex.split(os.environ.get(ENV_ARGS) or DEFAULT_ARGS)


def build(argv: list[str] | None = None):  # -> (SweepSpec, argparse.Namespace)
    """run_bench.py's flags -> its SweepSpec (the same parser and defaults as a sweep)."""
    from ratbench.bench import cli as run_bench
    from ratbench.bench import exit_codes
    from ratbench.bench.sweep import SweepError

    argv = bench_args() if argv is None else argv
    try:
        args = run_bench.parse_run_args(argv)
        spec = run_bench.build_spec(args)
    except (exit_codes.UsageError, SweepError, ValueError) as exc:  # what run_bench.py would refuse
        raise UsageError(f"{ENV_ARGS}={shlex.join(argv)!r}: {exc}") from None
    for flag in ("out", "resume", "retry", "dry_run"):
        if getattr(args, flag, None):
            raise UsageError(f"{ENV_ARGS}: --{flag.replace('_', '-')} has no meaning here")
    return spec, args


def device_requested(argv: list[str] | None = None) -> str:
    """cpu, cuda or auto as the flags say (without building the spec, which refuses cuda on a CPU box)."""
    argv = bench_args() if argv is None else argv
    for i, a in enumerate(argv):
        if a == "--device" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--device="):
            return a.split("=", 1)[1]
    return "auto"


class HarnessSamples:
    """A pytest-benchmark timer that replays harness samples: within a round it reads 0.0, then the round's
    sample in seconds, so the round's duration is that sample exactly. ``load`` the samples of a case, run
    ``benchmark.pedantic`` with as many rounds (iterations=1, no warm-up rounds), and the stats are the
    harness's samples."""

    def __init__(self) -> None:
        self.__name__ = "harness_samples"  # how pytest-benchmark names the timer in its JSON options
        self._samples: list[float] = []
        self._next = 0
        self._in_round = False

    def load(self, samples_ms: list[float]) -> None:
        self._samples = [float(x) / 1e3 for x in samples_ms]
        self._next = 0
        self._in_round = False

    @property
    def left(self) -> int:
        return len(self._samples) - self._next

    def __call__(self) -> float:
        if not self._in_round:
            self._in_round = True
            return 0.0
        if self._next >= len(self._samples):
            raise RuntimeError("more pytest-benchmark rounds than harness samples")
        self._in_round = False
        self._next += 1
        return self._samples[self._next - 1]

    def __repr__(self) -> str:
        return "harness_samples"


class Harness:
    """One bench.runner.Runner for the session (its accuracy cache is shared by the cases, as in a sweep)."""

    def __init__(self, spec, args) -> None:  # type: ignore[no-untyped-def]
        from ratbench.bench.device import Nvml
        from ratbench.bench.runner import Runner

        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        self.spec = spec
        self._tmp = tempfile.TemporaryDirectory(prefix="ratbench-pytest-benchmark-")
        nvml = Nvml.open(0) if spec.device == "cuda" else None
        self.runner = Runner(Path(self._tmp.name) / "results.jsonl", spec, nvml=nvml)

    def run(self, case):  # type: ignore[no-untyped-def]  # -> bench.results.Row
        return self.runner.run_case(case)


def row_dict(row) -> dict:  # type: ignore[no-untyped-def]
    """The row as results.jsonl stores it."""
    return json.loads(row.to_json())


def machine_info(device: str) -> dict[str, object]:
    """What pytest-benchmark's machine_info lacks: GPU, driver, CUDA, torch, triton (bench.device.describe)."""
    from ratbench.bench.device import describe
    from ratbench.bench.provenance import git_revision

    info = describe(device).to_dict()
    nvml = info.get("nvml") or {}
    return {
        "ratbench_device": device,
        "gpu": info["name"] if device == "cuda" else None,
        "gpu_capability": info.get("capability"),
        "gpu_driver": nvml.get("driver"),
        "cuda": info.get("cuda"),
        "cudnn": info.get("cudnn"),
        "torch": info.get("torch"),
        "triton": info.get("triton"),
        "triton_interpret": os.environ.get("TRITON_INTERPRET"),
        "ratbench_git": git_revision(str(Path(__file__).resolve().parents[2])),
        "ratbench_args": shlex.join(bench_args()),
    }
