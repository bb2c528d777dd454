"""Issue 15 item 5 / issue 16 item 4: the per-kernel check-then-time scripts are folded into the harness
(``--accuracy fa-rule``, the presets), the profiling globals of rat/triton are gone (``run_bench.py profile``
replaces them), scripts/ keeps thin drivers, and the product never imports experiments/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("impls", "bench", "models", "run_bench.py")


@pytest.mark.parametrize("name", ["STAGE_EVENTS", "LAUNCHES", "_stage", "_launch"])
def test_rat_triton_has_no_module_level_profiling_hooks(name):
    import ratbench.impls.rat.triton as RT

    assert not hasattr(RT, name)


def test_no_module_level_mutable_profiling_hooks_in_impls():
    for path in (ROOT / "impls").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = [t.id for n in [node] if isinstance(n, (ast.Assign, ast.AnnAssign))
                       for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)]
            assert not {"STAGE_EVENTS", "LAUNCHES"} & set(targets), path


def test_scripts_are_thin():
    files = [p for p in (ROOT / "scripts").iterdir() if p.is_file()]
    total = sum(len(p.read_text().splitlines()) for p in files)
    assert total < 1000, total
    removed = ["_gpu_common.py", "gpu_rat_triton.py", "gpu_full_swa_triton.py", "gpu_linear_triton.py", "gpu_peers.py",
               "gpu_layers.py", "sass_rat_triton.py", "sass_full_swa_triton.py", "sass_linear_triton.py",
               "gpu_linear_prefill.py", "gpu_rat_long_chunk.py"]
    assert not [n for n in removed if (ROOT / "scripts" / n).exists()]


def test_the_product_never_imports_experiments():
    for top in PRODUCT:
        paths = [ROOT / top] if top.endswith(".py") else list((ROOT / top).rglob("*.py"))
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not [n for n in names if n.split(".")[0] in ("experiments", "rat_experiments")], path


def test_every_experiment_has_a_status_line():
    studies = [p for p in (ROOT / "experiments").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    assert studies
    for d in studies:
        first = (d / "README.md").read_text().splitlines()[0]
        assert first.startswith("Status: "), d
