"""The layout stays what docs/architecture.md says: no import cycle among the project's modules (module- and
function-level imports both count), no library module over 600 lines, no library function over 80 lines,
and tests that mirror the code (tests/bench, tests/impls/<family>, tests/models; repository-level checks at
the top of tests/)."""
from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "impls", "models")
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80
#: test modules that check the repository as a whole (docs, install, layout, notebook), not one package
TOP_LEVEL_TESTS = {"test_console_script.py", "test_install_docs.py", "test_layout.py", "test_notebook.py",
                   "test_repo_links.py", "test_scripts_folded.py"}


def library_files() -> list[Path]:
    return (sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")) + [ROOT / "ratbench" / "__init__.py"]
            + [ROOT / "run_bench.py"])


def module_name(path: Path) -> str:
    """The import name: every project module is ``ratbench.<package>...`` (ratbench/__init__.py)."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts if parts[:1] == ("ratbench",) else ("ratbench", *parts))


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
    assert len(graph) > 60 and "ratbench.bench.runner" in graph["ratbench.bench.profile"]
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


# ----- one import name: ratbench ---------------------------------------------------------------------------
#: where the project's code and its users in the repository live (every .py file under these, and notebooks)
CODE = ("ratbench", *PACKAGES, "tests", "scripts", "experiments", "run_bench.py", "notebooks")
#: calls whose first argument names a module (or "module.attr")
MODULE_ARG_CALLS = {"import_module", "__import__", "find_spec", "run_module", "getLogger", "patch", "setattr",
                    "delattr", "setitem", "delitem"}
_TOP = "|".join(PACKAGES)
_TARGET = re.compile(rf"(?:{_TOP})(?:\.\w+)*:\w+")  # a "module:attr" registry or cost target
_CODE_IMPORT = re.compile(rf"(?:^|[\n;])\s*(?:from|import)\s+(?:{_TOP})\b")  # python -c code, an example


def _top_level(name: str | None) -> bool:
    return bool(name) and name.split(".")[0] in PACKAGES


def top_level_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every place that reaches a project module by its top-level name (bench, impls,
    models) instead of ratbench.<name>: imports at any depth, "module:attr" strings, module-name arguments
    (importlib, monkeypatch, getLogger), ``-m bench...`` arguments and code in strings."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, f"import {a.name}") for a in node.names if _top_level(a.name)]
        elif isinstance(node, ast.ImportFrom) and not node.level and _top_level(node.module):
            out.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call) and node.args:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            a = node.args[0]
            if name in MODULE_ARG_CALLS and isinstance(a, ast.Constant) and isinstance(a.value, str) \
                    and _top_level(a.value):
                out.append((node.lineno, f"{name}({a.value!r})"))
        elif isinstance(node, ast.List | ast.Tuple):
            elts = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            out += [(node.lineno, f"-m {b}") for a, b in itertools.pairwise(elts) if a == "-m" and isinstance(b, str)
                    and _top_level(b)]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                _TARGET.fullmatch(node.value) or _CODE_IMPORT.search(node.value)):
            out.append((node.lineno, repr(node.value)[:80]))
    return out


def code_files() -> list[tuple[Path, str]]:
    """(path, Python source) of every file in CODE; a notebook's code cells joined."""
    out = []
    for name in CODE:
        p = ROOT / name
        for f in ([p] if p.is_file() else sorted(p.rglob("*.py")) + sorted(p.rglob("*.ipynb"))):
            if f.suffix == ".ipynb":
                cells = json.loads(f.read_text(encoding="utf-8"))["cells"]
                src = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
            else:
                src = f.read_text(encoding="utf-8")
            out.append((f, src))
    return out


def test_the_top_level_finder_finds_each_form():
    src = textwrap.dedent('''
        import @impls
        import os, @models.lm as L
        def f():
            from @bench.sweep import Case
            from . import sweep                      # relative: stays inside ratbench
            importlib.import_module("impls.rat.triton")
            monkeypatch.setattr("bench.runner.Runner.run", None)
            subprocess.run([sys.executable, "-m", "bench.readme_tables"])
            subprocess.run([sys.executable, "-c", "import sys; from @bench import api"])
        TARGET = "impls.rat.reference:RATReference"
        FINE = ["ratbench.impls.rat.reference:RATReference", "impls.rat.triton_kernels.fwd_kernel", "bench.json"]
        from ratbench import impls
        import ratbench.models.lm
    ''').replace("@", "")  # ("@": this file's own source is checked too)
    found = sorted(line for line, _ in top_level_uses(ast.parse(src)))
    assert found == [2, 3, 5, 7, 8, 9, 10, 11], top_level_uses(ast.parse(src))


def test_the_project_imports_itself_only_as_ratbench():
    """bench, impls and models are ratbench.bench, ratbench.impls, ratbench.models everywhere: a module reached
    by its top-level name too (a checkout has the root on sys.path) would load twice, with two registries."""
    files = code_files()
    assert len(files) > 150 and any(p.suffix == ".ipynb" for p, _ in files)
    bad = [f"{p.relative_to(ROOT)}:{line}: {what}" for p, src in files for line, what in top_level_uses(ast.parse(src))]
    assert bad == []


def test_no_top_level_package_is_loaded(tmp_path):
    """The command line and a tiny sweep, with the repository root on sys.path (where top-level bench,
    impls, models would import): every project module is loaded once, under ratbench."""
    code = textwrap.dedent('''
        import json, sys
        from ratbench.bench.cli import main
        rc = [main(["list", "--device", "cpu"]),
              main(["--impl", "full/reference,rat/reference", "--mode", "train,decode", "--seq-len", "32",
                    "--batch", "1", "--heads", "1", "--head-dim", "8", "--chunk-size", "8", "--device", "cpu",
                    "--threads", "1", "--repeats", "2", "--no-figures", "--no-progress", "--out", sys.argv[1]])]
        mods = {n: getattr(m, "__file__", None) or "" for n, m in list(sys.modules.items())}
        print(json.dumps({"rc": rc, "mods": mods}))
    ''')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rc"] == [0, 0], proc.stderr[-2000:]
    mods = out["mods"]
    assert not [n for n in mods if n.split(".")[0] in PACKAGES], sorted(n for n in mods if n.split(".")[0] in PACKAGES)
    ours = {n: f for n, f in mods.items() if f and Path(f).resolve().is_relative_to(ROOT)
            and Path(f).resolve().relative_to(ROOT).parts[0] in (*PACKAGES, "ratbench")}
    assert {"ratbench.bench.cli", "ratbench.impls.rat.reference", "ratbench.bench.runner"} <= set(ours)
    assert all(n.startswith("ratbench") for n in ours), ours
    assert len(set(ours.values())) == len(ours), "a file loaded under two names"
