"""The per-rank results files of a torchrun launch (bench/distributed.py): ``results.rank<k>.jsonl`` beside
``results.jsonl``, and merging them into it. A results-file concern, apart from the launch itself, so that
``bench.runner`` (a resumed run merges first) and ``run_bench.py report`` use it without importing the
launcher (which imports the runner)."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RANK_FILE = "results.rank{rank}.jsonl"


def rank_path(run_dir: str | Path, rank: int) -> Path:
    return Path(run_dir) / RANK_FILE.format(rank=rank)


def rank_files(run_dir: str | Path) -> list[Path]:
    """The rank files of a run directory, by rank."""
    def rank_of(p: Path) -> int:
        try:
            return int(p.name.removeprefix("results.rank").removesuffix(".jsonl"))
        except ValueError:
            return -1
    return sorted((p for p in Path(run_dir).glob("results.rank*.jsonl") if rank_of(p) >= 0), key=rank_of)


def _complete_lines(path: Path) -> list[str]:
    """The complete JSON rows of a file (a partial last line, from a rank killed while writing, is left out)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s:%d is not a complete JSON row; not merged", path, i)
                continue
            out.append(line)
    return out


def merge_rank_files(run_dir: str | Path) -> int:
    """Copy the rows of every ``results.rank<k>.jsonl`` that ``results.jsonl`` lacks into it (new rows in
    the order they started). Atomic (written aside, then renamed) and idempotent. Returns the rows added."""
    from ratbench.bench.results import RESULTS

    run_dir = Path(run_dir)
    files = rank_files(run_dir)
    if not files:
        return 0
    main = run_dir / RESULTS
    have = _complete_lines(main) if main.exists() else []
    seen = set(have)
    new: list[str] = []
    for f in files:
        for line in _complete_lines(f):
            if line not in seen:
                seen.add(line)
                new.append(line)
    if not new:
        return 0
    new.sort(key=lambda s: json.loads(s).get("started_at") or "")  # stable: rank order within one instant
    tmp = main.with_name(main.name + ".merging")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in have + new))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, main)
    log.info("merged %d rows from %d rank files into %s", len(new), len(files), main)
    return len(new)
