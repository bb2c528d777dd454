"""The harness's layering: data flows one way (sweep -> cases -> measurement -> rows -> results file ->
tables / figures / gate), so the reporting modules import nothing that measures, the launcher sits above the
runner, and helpers shared by two layers have one definition."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (module level and inside functions)."""
    files = [p for d in ("bench", "models", "impls") for p in (ROOT / d).rglob("*.py")]
    mods = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in files}

    def resolve(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for n in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                     [f"{n.module}.{a.name}" for a in n.names] if isinstance(n, ast.ImportFrom) and n.module else [])
            for name in names:  # the project's modules import each other as ratbench.<package>...
                r = resolve(name.removeprefix("ratbench."))
                if r and r != m:
                    graph[m].add(r)
    return graph


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("module", ["bench.report", "bench.paper", "bench.profile_report", "bench.profile",
                                    "bench.runner", "bench.distributed"])
def test_no_import_cycle_through(module):
    """bench.distributed <-> bench.runner and bench.paper / profile / profile_report / report were cycles."""
    graph = _imports()
    assert module not in _reaches(graph, module), f"{module} imports itself through another module"


def test_reporting_imports_no_measurement():
    """Tables and figures are regenerated from a results file: the report side never imports what measures."""
    graph = _imports()
    # (bench.levels, which measures too, is still reached through the bench.results / bench.sweep cycle)
    measuring = {"bench.profile", "bench.runner", "bench.distributed"}
    for m in ("bench.report", "bench.paper", "bench.profile_report", "bench.rounds"):
        assert not (_reaches(graph, m) & measuring), (m, _reaches(graph, m) & measuring)


def test_one_is_oom():
    """is_oom had two definitions (bench.memory, models.lm) that disagreed: one, with both kinds of message."""
    from ratbench.bench import memory
    from ratbench.models import lm, throughput

    assert lm.is_oom is memory.is_oom and throughput.is_oom is memory.is_oom
    assert memory.is_oom(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert memory.is_oom(MemoryError())
    assert memory.is_oom(RuntimeError("CUDA error: out of memory"))
    assert not memory.is_oom(RuntimeError("shape mismatch"))


def test_one_capture_graph():
    """capture_graph had two definitions (bench.timing, models.lm): one, used by the models too."""
    from ratbench.bench import timing
    from ratbench.models import cases, lm

    assert lm.capture_graph is timing.capture_graph and cases.capture_graph is timing.capture_graph
    defs = [p for d in ("bench", "models", "impls", "scripts") for p in (ROOT / d).rglob("*.py")
            if "def capture_graph(" in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in defs] == ["bench/timing.py"]
