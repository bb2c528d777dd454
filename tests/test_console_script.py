"""The installed command: ``pip install -e .`` (the README's install) puts a ``ratbench`` script next to the
interpreter; it is run_bench.py's command line, with ``--version``; runtime dependencies are what the library
imports (test tools live in the dev extra); an install puts one import name, ``ratbench``, into site-packages."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
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
    library = [p for d in ("ratbench", "bench", "impls", "models") for p in (ROOT / d).rglob("*.py")] + [
        ROOT / "run_bench.py"]
    for path in library:
        assert not re.search(r"^\s*(import|from) pytest", path.read_text(), re.MULTILINE), path


PACKAGES = ("bench", "impls", "models")


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_installs_under_ratbench():
    """pyproject.toml lists the packages by hand (setuptools' find cannot map folders into a namespace): the list
    is every folder with an __init__.py under bench/, impls/, models/, each as ratbench.<folder path>, the
    three folders mapped; no top-level module (run_bench.py is the checkout's entry point, not installed)."""
    cfg = _setuptools_config()
    folders = sorted(".".join(("ratbench", *p.parent.relative_to(ROOT).parts)) for d in PACKAGES
                     for p in (ROOT / d).rglob("__init__.py"))
    assert sorted(cfg["packages"]) == sorted(["ratbench", *folders])
    assert cfg["package-dir"] == {f"ratbench.{d}": d for d in PACKAGES}
    assert "py-modules" not in cfg and "find" not in cfg.get("packages", [])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"ratbench": "ratbench.bench.cli:main"}


def test_the_wheel_holds_one_import_name(tmp_path):
    """Build the wheel (setuptools' PEP 517 backend, no network) from a copy of the sources: its only top-level
    names are ratbench/ and the dist-info, and every library module of the checkout is in it."""
    try:
        import setuptools
    except ImportError:
        pytest.skip("no setuptools in this environment (pip builds in an isolated one)")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"setuptools {setuptools.__version__} here; pyproject.toml needs >= 77")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("ratbench", *PACKAGES):
        shutil.copytree(ROOT / d, src / d, ignore=ignore)
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-c", "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))",
                           str(out)], cwd=src, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = out / proc.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"ratbench", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, top
    want = {"ratbench/__init__.py"} | {"ratbench/" + p.relative_to(ROOT).as_posix() for d in PACKAGES
                                       for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts}
    assert want <= set(names), sorted(want - set(names))
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ratbench = ratbench.bench.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
