"""bench/exit_codes.py: the verdict of a sweep, the console reasons, and the one table (README, --help)."""
from __future__ import annotations

from pathlib import Path

import pytest

from ratbench.bench import exit_codes as E
from ratbench.bench.results import Row
from ratbench.bench.sweep import Case

ROOT = Path(__file__).resolve().parents[2]


def _rows(*statuses: str) -> list[dict]:
    return [{"status": s, "impl": "rat/x", "label": "rat/x (L=16)", "mode": "train", "reason": f"why {s}"}
            for s in statuses]


@pytest.mark.parametrize("statuses,left,code", [
    (("ok", "ok"), 0, E.OK),
    (("ok", "oom", "unsupported", "unavailable", "skipped"), 0, E.OK),  # results, not failures
    (("oom",), 0, E.OK),  # out of memory is a measurement
    (("ok", "error"), 0, E.FAILED),
    (("ok", "wrong"), 0, E.FAILED),
    (("unsupported", "wrong"), 0, E.FAILED),
    (("ok",), 2, E.UNFINISHED),
    (("error",), 1, E.UNFINISHED),  # unfinished wins: the resume loop goes on, the final resume says 3
    (("unsupported", "unavailable", "skipped"), 0, E.NOTHING_RUNNABLE),
    (("unsupported",), 1, E.UNFINISHED),
    ((), 0, E.NOTHING_RUNNABLE),
])
def test_verdict(statuses, left, code):
    assert E.verdict(_rows(*statuses), left) == code


def test_verdict_takes_row_objects():
    c = Case(impl="full/reference", mode="train", batch=1, seq_len=16, heads=1, head_dim=8, dtype="float32",
             device="cpu")
    assert E.verdict([Row.for_case(c, "ok"), Row.for_case(c, "error", reason="boom")], 0) == E.FAILED
    assert E.reasons([Row.for_case(c, "error", reason="boom")], E.FAILED_STATUSES) == \
        ["  full/reference train: error: boom (1 case)"]


def test_codes_are_distinct_and_keep_the_gate_and_usage_codes():
    codes = [c for c, _ in E.TABLE]
    assert len(set(codes)) == len(codes)
    assert (E.OK, E.REGRESSION, E.USAGE, E.INTERRUPTED) == (0, 1, 2, 130)
    from ratbench.bench.compare import EXIT_CODES

    assert EXIT_CODES == {"pass": E.OK, "fail": E.REGRESSION, "unusable": E.USAGE}


def test_reasons_group_by_implementation_status_and_reason():
    rows = _rows("unsupported", "unsupported", "unavailable") + [
        {"status": "unsupported", "label": "rat/x (L=16)", "mode": "prefill", "reason": "why unsupported"},
        {"status": "ok", "label": "rat/x (L=16)", "mode": "train"}]
    assert E.reasons(rows, E.NOT_RUN_STATUSES) == [
        "  rat/x (L=16) train,prefill: unsupported: why unsupported (3 cases)",
        "  rat/x (L=16) train: unavailable: why unavailable (1 case)"]
    many = [{"status": "error", "label": f"full/x{i}", "mode": "train", "reason": "x" * 500} for i in range(20)]
    out = E.reasons(many, E.FAILED_STATUSES, limit=5)
    assert len(out) == 6 and out[-1].startswith("  ... and 15 more") and all(len(x) < 220 for x in out)


def test_readme_has_the_table():
    """README.md's "Exit codes" table is the one the code uses (bench/exit_codes.py)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert E.table_markdown() in readme


def test_help_epilog_has_the_table():
    text = E.table_text()
    for code, _ in E.TABLE:
        assert f"\n  {code:<5}" in text
