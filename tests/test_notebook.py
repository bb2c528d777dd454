"""notebooks/figures.ipynb regenerates every figure from the committed results files, on the CPU.

With the [dev] extra installed (nbclient, jupyter_core, ipykernel) the notebook runs through the README's
command (python -m jupyter execute notebooks/figures.ipynb) in a real kernel; without them its code cells run
in order with exec in one namespace (the same code, minus the kernel). Either way the test
checks the figures it must have written."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ratbench.bench import report

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "figures.ipynb"


def readme_notebook_command() -> list[str]:
    """The notebook command of README.md's first code block (python -m jupyter execute ...)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE).group(1)
    lines = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("python -m jupyter")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def _run_with_nbclient(out: Path) -> None:
    """The README's command, as a user runs it (from the repository root, a real kernel)."""
    cmd = readme_notebook_command()
    assert cmd[0] == "python"
    env = dict(os.environ, RATBENCH_FIGURES_DIR=str(out))
    proc = subprocess.run([sys.executable, *cmd[1:]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _run_with_exec(out: Path, monkeypatch) -> None:
    monkeypatch.setenv("RATBENCH_FIGURES_DIR", str(out))
    monkeypatch.chdir(NOTEBOOK.parent)
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    ns: dict = {"__name__": "__notebook__"}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name} cell", "exec"), ns)  # noqa: S102


def _has_kernel() -> bool:
    try:
        import ipykernel  # noqa: F401
        import jupyter_core  # noqa: F401
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("runner", ["nbclient" if _has_kernel() else "exec"])
def test_notebook_regenerates_every_figure(tmp_path, monkeypatch, runner):
    out = tmp_path / "figures"
    if runner == "nbclient":
        _run_with_nbclient(out)
    else:
        _run_with_exec(out, monkeypatch)
    op = out / "h200-op-2026-11-29" / "figures"
    for name in ("latency_vs_seq_len", "speedup_vs_seq_len", "roofline"):  # the committed report's figures
        assert (op / f"{name}.png").stat().st_size > 10_000 and (op / f"{name}.pdf").exists()
    assert (out / "h200-op-2026-11-29" / "report.md").read_text().startswith("# ratbench results")
    assert (out / "layers-2026-11-29" / "paper_figure3.png").stat().st_size > 10_000
    with_rows, _ = report.find_runs(ROOT)  # a run without rows (a sweep stopped before its first case) has no report
    assert len(with_rows) > 100
    for run in with_rows:  # every run with rows got its figures
        assert list((out / str(run.relative_to(ROOT / "reports")).replace("/", "_") / "figures").glob("*.png")), run
