"""Every path the repository's files point a reader to exists in the repository.

- Markdown links with a relative target (``[text](reports/x/report.md)``, images too) in every tracked
  ``.md`` file resolve from that file's folder.
- Paths under docs/ (``docs/rat-spec.md``) named anywhere in code, comments or docs exist.
- Nothing points into ``shared/``: that folder belongs to the project's working area, not to the
  repository, so a user of a clone never has it.
- The file and folder paths named in the prose of README.md and bench/README.md (``reports/...``,
  ``scripts/...``, ``impls/...``; not the example commands' output folders) exist.
Recorded outputs under reports/ (logs, JSON) are left alone: they record what a run printed.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEXT_SUFFIXES = (".md", ".py", ".sh", ".toml", ".yml", ".yaml", ".ipynb", ".txt", ".cfg")
PROSE_FILES = ("README.md", "bench/README.md")
REPO_DIRS = ("docs", "reports", "scripts", "impls", "bench", "models", "tests", "notebooks")

#: dangling links known and left to another change: the early 4k run's report.md links figures that were
#: never committed (issue 14's figures item regenerates them). Listed here so that nothing else can dangle.
KNOWN_MISSING = {f"reports/h200-early-4k-2026-11-29/report.md: link to figures/{name}.png (no such file)"
                 for name in ("latency_vs_seq_len", "speedup_vs_seq_len", "roofline")}

MD_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SHARED = re.compile(r"(?<![\w/.-])(?:\.\./)*shared/[\w./-]+")
DOCS_PATH = re.compile(r"(?<![\w/.-])docs/[\w.-]+\.\w+")
PROSE_PATH = re.compile(r"(?<![\w/.<>$-])(?:" + "|".join(REPO_DIRS) + r")/[\w./*<>{}-]*")


def tracked_files() -> list[Path]:
    """git's tracked files; a copy without .git (a GPU machine's) walks the tree instead."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return [ROOT / f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".benchmarks", "build", "dist"}
        return [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]


def text_files() -> list[Path]:
    files = []
    for p in tracked_files():
        rel = p.relative_to(ROOT).as_posix()
        if not p.exists() or not (p.suffix in TEXT_SUFFIXES or rel == ".ci/run"):
            continue
        if rel.startswith("reports/") and p.suffix != ".md":  # recorded outputs
            continue
        if rel == "tests/test_repo_links.py":  # this file's examples dangle on purpose
            continue
        files.append(p)
    return files


def _strip_code_blocks(text: str) -> str:
    """Markdown without its fenced code blocks (example commands name output folders still to be made)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)


def md_link_problems(md: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for target in MD_LINK.findall(_strip_code_blocks(md.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):  # http:, mailto:, in-page
            continue
        if not (md.parent / target.split("#", 1)[0]).exists():
            problems.append(f"{md.relative_to(root)}: link to {target} (no such file)")
    return problems


def path_mention_problems(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    rel = path.relative_to(root)
    problems = [f"{rel}: refers to {m.rstrip('.,;:')} (shared/ is not part of the repository)"
                for m in SHARED.findall(text)]
    problems += [f"{rel}: refers to {m} (no such file)" for m in DOCS_PATH.findall(text) if not (root / m).exists()]
    return problems


def prose_path_problems(md: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for line in _strip_code_blocks(md.read_text(encoding="utf-8")).splitlines():
        for m in PROSE_PATH.findall(line):
            m = m.rstrip(".,;:)")
            if any(c in m for c in "*<>{}"):  # a pattern or a placeholder, not a path
                continue
            if re.search(r"--out\s+" + re.escape(m), line):  # an output folder of an example command
                continue
            if not (root / m).exists():
                problems.append(f"{md.relative_to(root)}: names {m} (no such file or folder)")
    return problems


def test_markdown_links_resolve():
    mds = [p for p in text_files() if p.suffix == ".md"]
    assert any(p.name == "README.md" for p in mds)
    problems = [x for md in mds for x in md_link_problems(md) if x not in KNOWN_MISSING]
    assert not problems, "\n".join(problems)


def test_no_file_points_into_shared_or_to_missing_docs():
    files = text_files()
    assert len(files) > 50
    problems = [x for p in files for x in path_mention_problems(p)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", PROSE_FILES)
def test_paths_named_in_the_readmes_exist(name):
    problems = prose_path_problems(ROOT / name)
    assert not problems, "\n".join(problems)


def test_the_checks_flag_dangling_references(tmp_path):
    """The checkers, on a small tree with one good and one dangling reference of each kind."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "spec.md").write_text("# spec\n")
    (tmp_path / "reports" / "run1").mkdir(parents=True)
    md = tmp_path / "README.md"
    md.write_text("[spec](docs/spec.md) [gone](reports/run2/report.md) [web](https://example.org) [here](#x)\n"
                  "![fig](docs/fig.png) results in reports/run1, reports/run3 and reports/runs/<run>.\n"
                  "```\npython run_bench.py --out reports/new-run\n[in code](docs/none.md)\n```\n"
                  "`run_bench.py --out reports/new2` writes there.\n")
    assert md_link_problems(md, tmp_path) == ["README.md: link to reports/run2/report.md (no such file)",
                                              "README.md: link to docs/fig.png (no such file)"]
    assert prose_path_problems(md, tmp_path) == [
        "README.md: names reports/run2/report.md (no such file or folder)",
        "README.md: names docs/fig.png (no such file or folder)",
        "README.md: names reports/run3 (no such file or folder)"]
    code = tmp_path / "x.py"
    code.write_text('"""Follows ../shared/spec/rat.md; see docs/spec.md, docs/rat-spec.md and mydocs/y.md."""\n')
    assert path_mention_problems(code, tmp_path) == [
        "x.py: refers to ../shared/spec/rat.md (shared/ is not part of the repository)",
        "x.py: refers to docs/rat-spec.md (no such file)"]
