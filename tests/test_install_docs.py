"""The README's install and test commands are the ones CI runs, and the install they document is complete.

README.md's first code block holds the commands a user runs: install, tests, a sweep, the notebook. .ci/run
must install with the README's install line word for word and end with the README's test command, so a
green CI is evidence for the README. Under CI (CI=true) every package of the extras that line installs must
be there, so that no test that needs one (linear/fla's) is skipped in CI.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    """The command lines of README.md's first fenced bash block (comments left out)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert block, "README.md has no bash block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def readme_install_line() -> str:
    lines = [ln for ln in readme_commands() if "pip install" in ln]
    assert len(lines) == 1, f"README.md's first block should have one install line, has {lines}"
    return lines[0]


def readme_command(prefix: str) -> str:
    lines = [ln for ln in readme_commands() if ln.startswith(prefix)]
    assert len(lines) == 1, f"README.md's first block should have one '{prefix}' line, has {lines}"
    return lines[0]


def ci_commands() -> list[str]:
    """.ci/run's command lines (comments left out, continuation lines joined)."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8").replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def readme_extras() -> list[str]:
    m = re.search(r'-e\s+"?\.\[([\w,\s-]+)\]"?', readme_install_line())
    assert m, "the README's install line installs no extras of this project"
    return [x.strip() for x in m.group(1).split(",") if x.strip()]


def test_ci_installs_with_the_readmes_install_line():
    install = readme_install_line()
    assert install in ci_commands(), f".ci/run does not run the README's install line {install!r}"
    assert not [ln for ln in ci_commands() if "pip install" in ln and ln != install and "--upgrade pip" not in ln], \
        ".ci/run installs something besides the README's install line"


def test_ci_ends_with_the_readmes_test_command():
    test_cmd = readme_command("python -m pytest")
    assert test_cmd == "python -m pytest -q"
    assert ci_commands()[-1] == test_cmd, f".ci/run's last command is {ci_commands()[-1]!r}, not {test_cmd!r}"


def test_the_readmes_extras_exist_and_hold_the_notebook_tools():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for name in readme_extras():
        assert name in extras, f"the README installs [{name}], which pyproject.toml does not define"
    notebook = shlex.split(readme_command("python -m jupyter"))
    assert notebook == ["python", "-m", "jupyter", "execute", "notebooks/figures.ipynb"]  # needs nbclient, jupyter_core
    names = {re.match(r"[A-Za-z0-9._-]+", r).group(0).lower().replace("_", "-") for r in extras["dev"]}
    assert {"nbclient", "nbformat", "jupyter-core", "ipykernel", "pytest", "pytest-benchmark"} <= names


def _missing_distributions() -> list[str]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    missing = []
    for name in readme_extras():
        for req in extras[name]:
            dist = re.match(r"[A-Za-z0-9._-]+", req).group(0)
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                missing.append(f"{dist} (from [{name}])")
    return missing


def test_ci_has_every_package_the_readme_installs():
    missing = _missing_distributions()
    if os.environ.get("CI", "").lower() not in ("1", "true", "yes") and missing:
        pytest.skip(f"not installed as the README says (outside CI, allowed): {', '.join(missing)}")
    assert not missing, f"CI lacks packages the README's install line installs: {', '.join(missing)}"
    if "fla" in readme_extras():  # then the linear/fla tests (tests/impls/test_peers.py) run, not skip
        assert importlib.util.find_spec("fla") is not None
