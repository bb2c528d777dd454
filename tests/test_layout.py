"""The layout stays what docs/architecture.md says: no import cycle among the project's modules (module- and
function-level imports both count), no library module over 600 lines, no library function over 80 lines,
and tests that mirror the code (tests/bench, tests/impls/<family>, tests/models; repository-level checks at
the top of tests/)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "impls", "models")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: test modules that check the repository as a whole (docs, install, layout, notebook), not one package
TOP_LEVEL_TESTS = {"test_console_script.py", "test_install_docs.py", "test_layout.py", "test_notebook.py",
                   "test_repo_links.py", "test_scripts_folded.py"}


def library_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")) + [ROOT / "run_bench.py"]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in library_files() if p.name != "run_bench.py"}

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                r = resolve(t)
                if r and r != m:
                    graph[m].add(r)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 60 and "bench.runner" in graph["bench.profile"]
    assert cycles(graph) == []


def test_module_and_function_sizes():
    big = [f"{p.relative_to(ROOT)}: {n}" for p in library_files() if (n := len(p.read_text().splitlines())) >
           MAX_MODULE_LINES]
    assert big == [], f"library modules over {MAX_MODULE_LINES} lines"
    long = []
    for p in library_files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}: {n}")
    assert long == [], f"library functions over {MAX_FUNCTION_LINES} lines"


def test_tests_mirror_the_code():
    tests = ROOT / "tests"
    top = {p.name for p in tests.glob("test_*.py")}
    assert top <= TOP_LEVEL_TESTS, sorted(top - TOP_LEVEL_TESTS)
    for p in tests.rglob("test_*.py"):
        rel = p.relative_to(tests).parts
        if len(rel) > 1:
            assert rel[0] in (*PACKAGES, "benchmarks"), p
            if rel[0] == "impls" and len(rel) > 2:
                assert (ROOT / "impls" / rel[1]).is_dir(), p
    names = [p.name for p in tests.rglob("test_*.py")]
    assert len(names) == len(set(names)), "test module basenames must be unique (tests/conftest.py puts every folder on sys.path)"
