"""The installed command: ``pip install -e .`` (the README's install) puts a ``ratbench`` script next to the
interpreter; it is run_bench.py's command line, with ``--version``; runtime dependencies are what the library
imports (test tools live in the dev extra)."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script() -> Path:
    path = Path(sys.executable).parent / "ratbench"
    if not path.exists():
        pytest.fail(f"no {path}: install the project as the README says (pip install -e \".[dev,fla]\")")
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(_script()), *args], capture_output=True, text=True, timeout=300, check=False,
                          cwd="/")


def test_version():
    proc = _run("--version")
    assert proc.returncode == 0, proc.stderr
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(rf"ratbench {re.escape(version)}( \(git [0-9a-f]{{7,40}}(\+dirty)?\))?\n", proc.stdout), proc.stdout


def test_help_lists_the_subcommands_and_bad_input_is_one_line():
    proc = _run("--help")
    assert proc.returncode == 0
    for cmd in ("list", "report", "resume", "compare", "gate", "calibrate", "static", "profile", "--version"):
        assert cmd in proc.stdout, cmd
    bad = _run("--seq-len", "x")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "error:" in bad.stderr


def test_runtime_dependencies_leave_test_tools_to_the_dev_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=;! \[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert not names & {"pytest", "pytest-benchmark", "ruff"}, names
    assert {"pytest", "pytest-benchmark"} <= {re.split(r"[<>=;! \[]", d, maxsplit=1)[0].lower()
                                             for d in project["optional-dependencies"]["dev"]}
    library = [p for d in ("bench", "impls", "models") for p in (ROOT / d).rglob("*.py")] + [ROOT / "run_bench.py"]
    for path in library:
        assert not re.search(r"^\s*(import|from) pytest", path.read_text(), re.MULTILINE), path
