"""``run_bench.py report --format md,csv,json,parquet --metrics ...`` (issue 17, item 4): the report's tables
as data, equal to the Markdown's numbers; a metric selection picks the tables' columns; bad input is one line,
exit 2, nothing written."""
from __future__ import annotations

import csv
import json
import math
import re

import pandas as pd
import pytest
from test_bench_report_speedups import row, store

from ratbench.bench import cli as run_bench
from ratbench.bench import report
from ratbench.bench.sweep import format_size
from ratbench.bench.tables import ID_COLUMNS, METRICS, fmt_ms


@pytest.fixture()
def run_dir(tmp_path):
    rows = []
    for mode in ("train", "prefill", "decode"):
        for T, ref_ms, rat_ms in ((64, 8.0, 2.0), (128, 16.0, 3.0)):
            rows.append(row("full/reference", mode, T, ref_ms))
            rows.append(row("rat/reference", mode, T, rat_ms, chunk_size=16))
    rows.append(row("rat/reference", "train", 256, None, status="oom", chunk_size=16))
    (tmp_path / "run").mkdir()
    return store(tmp_path / "run", rows)


def cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = run_bench.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def md_tables(md: str) -> dict[str, list[list[str]]]:
    """Every Markdown table under a heading, as rows of cells (header first), by the heading's text."""
    out: dict[str, list[list[str]]] = {}
    for sec in re.split(r"^#+ ", md, flags=re.MULTILINE)[1:]:
        title = sec.splitlines()[0]
        lines = [ln for ln in sec.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
        if lines:
            out[title] = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return out


def num(x: str) -> float | None:
    return None if x in ("", None) else float(x)


def test_csv_and_json_hold_the_numbers_of_the_md_tables(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = cli(["report", str(run_dir), "--out", str(out), "--no-figures", "--format", "md,csv,json"],
                          capsys)
    assert rc == 0, err
    assert f"tables: {out / 'report_tables.csv'}" in stdout and f"tables: {out / 'report_tables.json'}" in stdout
    md = md_tables((out / "report.md").read_text())
    recs = list(csv.DictReader((out / "report_tables.csv").open()))
    js = json.loads((out / "report_tables.json").read_text())
    assert list(recs[0]) == [*ID_COLUMNS, *(c for m in METRICS.values() for c in m.columns), "reason"]
    # JSON: the same records, null where the CSV cell is empty
    assert len(js) == len(recs)
    for c, j in zip(recs, js):
        for k, v in c.items():
            assert (j[k] is None) == (v == ""), (k, v, j[k])
            if v != "" and isinstance(j[k], (int, float)):
                assert math.isclose(float(v), j[k]), (k, v, j[k])
            elif v != "":
                assert str(j[k]) == v
    for mode in ("train", "prefill", "decode"):
        table = md[f"Details: {mode}"]
        head, body = table[0], table[1:]
        mine = [r for r in recs if r["table"] == f"details: {mode}"]
        assert len(mine) == len(body) == 4
        for cells, r in zip(body, mine):
            got = dict(zip(head, cells))
            assert got["implementation"] == f"`{r['implementation']}`"
            assert got["B"] == r["batch"] and got["T"] == format_size(int(r["seq_len"]))
            ms, p20, p80 = (float(r[c]) for c in ("ms_median", "ms_p20", "ms_p80"))
            assert got["ms median [p20, p80]"] == f"{fmt_ms(ms)} [{fmt_ms(p20)}, {fmt_ms(p80)}]"
            assert got["TFLOP/s"] == f"{float(r['tflops']):.3g}" and got["GB/s"] == f"{float(r['gbps']):.3g}"
            assert got["n"] == r["n_samples"] and got["first call ms"] == f"{float(r['first_call_ms']):.0f}"
            assert got["max abs err"] == f"{float(r['max_abs_err']):.2g}"
            if mode == "decode":
                assert got["tokens/s"] == f"{float(r['tokens_per_s']):.4g}"
                assert math.isclose(float(r["tokens_per_s"]), int(r["batch"]) / (ms * 1e-3))
            else:
                assert r["tokens_per_s"] == ""
        # the per-mode table: median ms (speed-up over the baseline case) of the same records
        title = next(t for t in md if t.startswith(mode) and not t.startswith("Details"))
        summary = {cells[0]: cells[1:] for cells in md[title][1:]}
        for r in mine:
            col = md[title][0].index(next(h for h in md[title][0] if h.startswith(f"T={format_size(int(r['seq_len']))}")))
            if r["impl"] == "full/reference":
                assert summary[f"`{r['implementation']}` (baseline)"][col - 1] == fmt_ms(float(r["ms_median"]))
                assert r["speedup"] and math.isclose(float(r["speedup"]), 1.0)
            else:
                want = f"{fmt_ms(float(r['ms_median']))} ({float(r['speedup']):.3g}x)"
                assert summary[f"`{r['implementation']}`"][col - 1] == want
                assert r["base_series"] == "full/reference"
    bad = [r for r in recs if r["table"] == "not timed"]
    assert [(r["implementation"], r["mode"], r["status"], r["seq_len"]) for r in bad] == \
        [("rat/reference (L=16)", "train", "oom", "256")]
    assert bad[0]["reason"] == "oom here" and bad[0]["ms_median"] == "" and bad[0]["speedup"] == ""
    assert "oom here" in md["Cases not timed"][1][-1]


def test_tables_only_write_no_report_md(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, err = cli(["report", str(run_dir), "--out", str(out), "--format", "json"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["report_tables.json"]
    assert "report:" not in stdout


def test_metrics_pick_the_columns(run_dir, tmp_path, capsys):
    out = tmp_path / "a"
    rc, _, err = cli(["report", str(run_dir), "--out", str(out), "--no-figures", "--format", "md,csv",
                      "--metrics", "tflops,ms,peak_mem"], capsys)
    assert rc == 0, err
    text = (out / "report.md").read_text()
    md = md_tables(text)
    assert md["Details: decode"][0] == ["implementation", "B", "T", "ms median [p20, p80]", "TFLOP/s", "peak mem"]
    assert "x)" not in text and "Median milliseconds." in text  # no speed-ups without 'speedup'
    assert list(pd.read_csv(out / "report_tables.csv").columns) == \
        [*ID_COLUMNS, "ms_median", "ms_p20", "ms_p80", "tflops", "peak_mem_bytes", "reason"]

    out = tmp_path / "b"
    rc, stdout, err = cli(["report", str(run_dir), "--out", str(out), "--no-figures", "--metrics", "speedup,gbps"],
                          capsys)
    assert rc == 0, err
    md = md_tables((out / "report.md").read_text())
    assert md["Details: train"][0] == ["implementation", "B", "T", "GB/s"]
    train = md["train (forward + backward)"]
    assert train[0] == ["implementation", "T=64", "T=128", "T=256"]  # speed-ups alone: no ms, no baseline row
    assert {c[0]: c[1:] for c in train[1:]} == {"`rat/reference (L=16)`": ["4x", "5.33x", "OOM"]}
    assert "4x" in stdout  # the tables printed at the end follow the selection too


def test_default_report_is_every_metric(run_dir, tmp_path):
    a = report.write_report(run_dir, out_dir=tmp_path / "a", figures=False).read_text()
    b = report.write_report(run_dir, out_dir=tmp_path / "b", figures=False, metrics=tuple(METRICS)).read_text()
    assert a == b and "| implementation | B | T | ms median [p20, p80] | tokens/s | n | timer / call |" in a


@pytest.mark.parametrize("argv, msg", [
    (["--format", "md,xls"], "argument --format: unknown format 'xls'; valid: md, csv, json, parquet"),
    (["--format", ","], "argument --format: unknown format"),
    (["--metrics", "ms,bogus"], ("argument --metrics: unknown metric 'bogus'; valid: ms, tokens_per_s, n, timer, "
                                 "tflops, pct_peak, gbps, pct_bw, peak_mem, state_mem, max_err, first_call_ms, speedup")),
    (["--metrics", ""], "argument --metrics: no metric given; valid: ms,"),
])
def test_bad_format_or_metric_is_one_line_exit_2(run_dir, tmp_path, capsys, argv, msg):
    out = tmp_path / "out"
    rc, stdout, err = cli(["report", str(run_dir), "--out", str(out), *argv], capsys)
    assert rc == 2 and err.startswith("run_bench.py report: error: ") and len(err.splitlines()) == 1, err
    assert msg in err and "Traceback" not in err + stdout
    assert not out.exists()


def test_parquet_needs_an_engine(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(report, "parquet_engine", lambda: None)
    out = tmp_path / "out"
    rc, _, err = cli(["report", str(run_dir), "--out", str(out), "--format", "md,parquet"], capsys)
    assert rc == 2 and len(err.splitlines()) == 1
    assert "argument --format: parquet needs pyarrow or fastparquet" in err and not out.exists()

    written = {}

    def to_parquet(self, path, index=True, engine=None):  # stands in for pyarrow, not installed here
        written.update(path=path, index=index, engine=engine, columns=list(self.columns), n=len(self))
        path.write_bytes(b"PAR1")

    monkeypatch.setattr(report, "parquet_engine", lambda: "pyarrow")
    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    rc, stdout, err = cli(["report", str(run_dir), "--out", str(out), "--format", "parquet"], capsys)
    assert rc == 0, err
    assert written["path"] == out / "report_tables.parquet" and written["engine"] == "pyarrow"
    assert written["index"] is False and written["n"] == 13 and written["columns"][0] == "table"
    assert f"tables: {out / 'report_tables.parquet'}" in stdout
