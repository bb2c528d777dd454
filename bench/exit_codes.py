"""Exit codes of ``run_bench.py``, one table for every subcommand, and the verdict of a sweep.

``TABLE`` is printed by ``run_bench.py --help`` and copied into README.md (a test keeps them equal).
``verdict(rows, left)`` turns the rows of a sweep into its exit code; ``UsageError`` is bad user input:
one line on stderr (``<prog>: error: <message>``), exit 2, nothing written.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

OK = 0
REGRESSION = 1
USAGE = 2
FAILED = 3
UNFINISHED = 4
NOTHING_RUNNABLE = 5
INTERRUPTED = 130

#: statuses that are results: the case was measured, or the configuration is declared out of reach
RESULT_STATUSES = ("ok", "oom", "unsupported", "unavailable", "skipped")
#: statuses of a case that should have run and did not work
FAILED_STATUSES = ("error", "wrong")
#: statuses of a case that did not run at all (nothing measured, nothing failed)
NOT_RUN_STATUSES = ("unsupported", "unavailable", "skipped")

#: (code, meaning): the one table of README.md ("Exit codes") and of ``--help``
TABLE: tuple[tuple[int, str], ...] = (
    (OK, ("success. run/resume: every case of the sweep has a result (ok, oom, unsupported, unavailable and "
          "skipped are results); compare/gate/static: pass; calibrate: some threshold had no false alarm")),
    (REGRESSION, ("compare/gate: a regression or a broken case (error, oom, wrong), or an improvement with "
                  "--fail-on-improvement; static: a new spill, lost HGMMA, serialized wgmma, a helper left "
                  "un-inlined, too much shared memory, a kernel that no longer compiles; calibrate: false alarms "
                  "at every threshold; any "
                  "command: a crash (Python's code for an uncaught exception: a bug)")),
    (USAGE, ("every command: bad arguments or unusable input (one line on stderr, nothing written); "
             "compare/gate: no verdict possible after measuring (cases that cannot run or be compared: "
             "compare.md / gate.md say why)")),
    (FAILED, "run/resume: some case ended error or wrong (listed on stderr and in report.md)"),
    (UNFINISHED, ("run/resume: cases left without a row (the time limit, a rank that died, a device lost to a "
                  "kernel's fault); the resume command is printed (4 wins over 3)")),
    (NOTHING_RUNNABLE, ("run/resume: nothing runnable: every case unsupported, unavailable or skipped; the "
                        "reasons are printed and no figures drawn")),
    (INTERRUPTED, "interrupted (Ctrl-C); run/resume keep the finished cases and print the resume command"),
)
#: under torchrun: what the ranks and torchrun itself return
TORCHRUN_NOTE = ("under torchrun rank 0 returns the sweep's code, the other ranks 0 (4 when a rank died), and "
                 "torchrun itself exits 1 when any rank exits non-zero")


class UsageError(Exception):
    """Bad user input. ``prog`` names the command in the one line printed (``run_bench.py gate: error: ...``)."""

    def __init__(self, message: str, prog: str = "run_bench.py") -> None:
        super().__init__(message)
        self.prog = prog


def table_text(width: int = 100) -> str:
    """The table as plain text for an argparse epilog."""
    import textwrap

    lines = ["exit codes (bench/exit_codes.py):"]
    for code, what in TABLE:
        lines += textwrap.wrap(what, width, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
    lines += textwrap.wrap(TORCHRUN_NOTE, width, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)


def table_markdown() -> str:
    """The table as README.md has it."""
    lines = ["| code | meaning |", "| --- | --- |"]
    lines += [f"| {code} | {what} |" for code, what in TABLE]
    return "\n".join(lines + ["", TORCHRUN_NOTE[0].upper() + TORCHRUN_NOTE[1:] + "."])


def _status(row: object) -> str:
    return str(row.get("status") if isinstance(row, Mapping) else row.status)


def verdict(rows: Iterable[object], left: int) -> int:
    """Exit code of a sweep from the last row of each of its cases (``Row`` objects or dicts) and the
    number of its cases that have no row (``left``): UNFINISHED if any case has no row, else FAILED if
    any ended error or wrong, else NOTHING_RUNNABLE if none ran (every row unsupported, unavailable or
    skipped, or no row at all), else OK."""
    statuses = [_status(r) for r in rows]
    if left > 0:
        return UNFINISHED
    if any(s in FAILED_STATUSES for s in statuses):
        return FAILED
    if all(s in NOT_RUN_STATUSES for s in statuses):
        return NOTHING_RUNNABLE
    return OK


def reasons(rows: Iterable[object], statuses: Iterable[str], limit: int = 12, width: int = 160) -> list[str]:
    """One console line per (implementation, status, reason) among the rows with one of ``statuses``,
    with its number of cases, the most frequent first; at most ``limit`` lines (then a count of the rest)."""
    want = set(statuses)
    groups: dict[tuple[str, str, str], list] = {}
    for r in rows:
        d = r if isinstance(r, Mapping) else vars(r)
        if d.get("status") not in want:
            continue
        reason = " ".join(str(d.get("reason") or "no reason recorded").split())
        if len(reason) > width:
            reason = reason[:width - 3] + "..."
        g = groups.setdefault((str(d.get("label") or d.get("impl")), str(d.get("status")), reason), [0, {}])
        g[0] += 1
        g[1][str(d.get("mode"))] = None
    items = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    out = [f"  {label} {','.join(modes)}: {status}: {reason} ({n} case{'s' if n != 1 else ''})"
           for (label, status, reason), (n, modes) in items[:limit]]
    if len(items) > limit:
        out.append(f"  ... and {len(items) - limit} more (report.md lists every case)")
    return out
