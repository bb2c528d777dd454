"""Argument types and checks shared by the commands of ``run_bench.py`` (run, gate_cli, static).

Every check raises ``bench.exit_codes.UsageError`` (or argparse's ``ArgumentTypeError`` inside
argparse): the command prints one line and exits 2 before writing anything.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from ratbench.bench.exit_codes import UsageError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``<prog>: error: <message>``, no usage block), raised as
    UsageError so that the caller prints it and returns 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, prog=self.prog)


def _number(text: str, kind: type, low: float, strict: bool) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} is needed, "
                                         f"got {text!r}") from None
    if math.isnan(value) or (value <= low if strict else value < low):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(text, int, 1, strict=False))


def nonneg_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(text, int, 0, strict=False))


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return float(_number(text, float, 0, strict=True))


def nonneg_float(text: str) -> float:
    """argparse type: a number >= 0."""
    return float(_number(text, float, 0, strict=False))


def prepare_out_dir(path: str | Path, *, flag: str = "--out", prog: str = "run_bench.py") -> Path:
    """Create directory ``path`` (and its missing parents) and check that a file can be written in it.
    On failure remove the directories it created and raise UsageError: call it after every other check,
    right before the command writes."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise UsageError(f"{flag} {path}: {p} exists and is not a directory", prog=prog)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        for d in missing:  # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        raise UsageError(f"{flag} {path}: cannot write there: {exc.strerror or exc}", prog=prog) from None
    return path


def has_rows(path: Path) -> bool:
    """Whether a results file exists and is not empty."""
    return path.is_file() and os.path.getsize(path) > 0
