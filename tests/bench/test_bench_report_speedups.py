"""Speed-ups compare like with like (issue 14, item 3): a case is divided only by the baseline case that
differs from it in the implementation alone; one baseline row per table; a baseline case without a
number says so; an automatic baseline has timed rows. Noisy rows are marked (~) with a footnote."""
from __future__ import annotations

import json
import re

import pytest

from ratbench.bench import report, report_rows
from ratbench.bench.results import Row, append_row, write_meta
from ratbench.bench.sweep import Case
from ratbench.bench.tables import fmt_ms


def row(impl, mode, T, ms, status="ok", B=2, **kw):
    c = Case(impl=impl, mode=mode, batch=B, seq_len=T, heads=2, head_dim=16, dtype="float32", device="cpu", **kw)
    if status != "ok":
        return Row.for_case(c, status, reason=f"{status} here")
    return Row.for_case(c, "ok", ms_median=ms, ms_p20=ms * 0.98, ms_p80=ms * 1.03, n_samples=3,
                        samples_ms=[ms * 0.98, ms, ms * 1.03], timer="perf_counter", first_call_ms=ms * 5,
                        flops=1e9, bytes=1e6, tflops=1e9 / ms / 1e9, gbps=1e6 / ms / 1e6, max_abs_err=1e-6,
                        accuracy="pass")


def store(tmp_path, rows, extra: dict[int, dict] | None = None):
    """Write rows as a results file; ``extra`` adds fields to the JSON of row i (fields other helpers add to
    the schema, e.g. 'noisy')."""
    path = tmp_path / "results.jsonl"
    for i, r in enumerate(rows):
        if extra and i in extra:
            d = json.loads(r.to_json()) | extra[i]
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(d) + "\n")
        else:
            append_row(path, r)
    write_meta(tmp_path, {"command": "test", "device": {"name": "cpu", "device": "cpu"}})
    return tmp_path


def tables(md: str, mode_title: str) -> list[str]:
    """The Markdown tables (header to last row) of one mode's section."""
    sec = md.split(f"## {mode_title}")[1].split("\n## ")[0].split("### ")[0]
    return [t for t in re.findall(r"((?:^\|.*\|\n?)+)", sec, flags=re.MULTILINE) if "implementation" in t]


def cell(md: str, series: str, col: int, table: int | None = None, title: str = "train (forward + backward)") -> str:
    tabs = tables(md, title)
    found = []
    for t in (tabs if table is None else [tabs[table]]):
        for line in t.splitlines():
            if line.startswith(f"| `{series}`"):
                found.append(line.split(" | ")[col].strip(" |"))
    assert len(found) == 1, (series, found)
    return found[0]


def test_two_chunk_sizes_two_impls_give_same_L_ratios(tmp_path):
    rows = []
    for T in (64, 128):
        for L, ref_ms, tri_ms in ((16, 8.0, 2.0), (32, 4.0, 0.5)):
            rows.append(row("rat/reference", "train", T, ref_ms * T / 64, chunk_size=L))
            rows.append(row("rat/triton", "train", T, tri_ms * T / 64, chunk_size=L))
    md = report.write_report(store(tmp_path, rows), figures=False).read_text()
    # no preferred baseline: the implementation with the most timed rows, ties by name
    assert "speed-ups are over `rat/reference`" in md
    assert cell(md, "rat/triton (L=16)", 1) == "2 (4x)" and cell(md, "rat/triton (L=16)", 2) == "4 (4x)"
    assert cell(md, "rat/triton (L=32)", 1) == "0.5 (8x)" and cell(md, "rat/triton (L=32)", 2) == "1 (8x)"
    # one table per baseline row, each naming it
    tabs = tables(md, "train (forward + backward)")
    assert [t.count("(baseline)") for t in tabs] == [1, 1]
    assert "speed-up over `rat/reference (L=16)`, the baseline row of this table" in md
    assert "speed-up over `rat/reference (L=32)`, the baseline row of this table" in md
    assert "`rat/triton (L=32)`" in tabs[1] and "`rat/triton (L=16)`" not in tabs[1]


def test_windows_and_decay_compare_like_with_like(tmp_path):
    rows = []
    for T in (64, 128):
        for W, ref_ms, tri_ms in ((32, 6.0, 3.0), (64, 12.0, 2.0)):
            rows.append(row("swa/reference", "prefill", T, ref_ms, window=W))
            rows.append(row("swa/triton", "prefill", T, tri_ms, window=W))
        for decay, ref_ms, tri_ms in ((False, 5.0, 1.0), (True, 9.0, 1.0)):
            rows.append(row("linear/reference", "prefill", T, ref_ms, decay=decay))
            rows.append(row("linear/triton", "prefill", T, tri_ms, decay=decay))
    d = store(tmp_path, rows)
    md = report.write_report(d, baseline="swa/reference", figures=False).read_text()
    title = "prefill (forward, no grad)"
    assert cell(md, "swa/triton (W=32)", 1, title=title) == "3 (2x)"
    assert cell(md, "swa/triton (W=64)", 1, title=title) == "2 (6x)"
    # another family against a baseline with two windows: no single baseline case, and the cell says so
    assert cell(md, "linear/triton (decay)", 1, title=title) == "1 — (2 baseline cases)"
    assert all(t.count("(baseline)") <= 1 for t in tables(md, title))
    md = report.write_report(d, baseline="linear/reference", figures=False).read_text()
    assert cell(md, "linear/triton", 1, title=title) == "1 (5x)"
    assert cell(md, "linear/triton (decay)", 1, title=title) == "1 (9x)"
    assert [t.count("(baseline)") for t in tables(md, title)] == [1, 1, 0]  # swa rows: not compared


def test_full_attention_baseline_serves_every_chunk_size(tmp_path):
    """Across families the family parameters do not take part: full attention has no chunk size."""
    rows = [row("full/reference", "train", 64, 8.0), row("rat/triton", "train", 64, 2.0, chunk_size=16),
            row("rat/triton", "train", 64, 1.0, chunk_size=32)]
    md = report.write_report(store(tmp_path, rows), figures=False).read_text()
    assert cell(md, "rat/triton (L=16)", 1) == "2 (4x)" and cell(md, "rat/triton (L=32)", 1) == "1 (8x)"
    assert [t.count("(baseline)") for t in tables(md, "train (forward + backward)")] == [1]


def test_compiled_layers_against_compiled_baseline_one_label_per_table(tmp_path):
    rows = []
    for compiled, full_ms, rat_ms in ((False, 10.0, 5.0), (True, 8.0, 1.0)):
        rows.append(row("full/reference", "train", 64, full_ms, level="layer", kind="attention", compiled=compiled))
        rows.append(row("rat/triton", "train", 64, rat_ms, level="layer", kind="rat", compiled=compiled,
                        chunk_size=16))
    md = report.write_report(store(tmp_path, rows), figures=False).read_text()
    assert cell(md, "layer rat rat/triton (L=16)", 1) == "5 (2x)"
    assert cell(md, "layer rat rat/triton (L=16, compiled)", 1) == "1 (8x)"
    assert [t.count("(baseline)") for t in tables(md, "train (forward + backward)")] == [1, 1]


def test_errored_baseline_case_gives_an_explicit_cell(tmp_path):
    rows = [row("rat/reference", "train", 64, 8.0, chunk_size=16), row("rat/triton", "train", 64, 2.0, chunk_size=16),
            row("rat/reference", "train", 64, 0, status="error", chunk_size=32),
            row("rat/triton", "train", 64, 1.0, chunk_size=32),
            row("rat/reference", "train", 128, 0, status="oom", chunk_size=16),
            row("rat/triton", "train", 128, 4.0, chunk_size=16)]
    d = store(tmp_path, rows)
    md = report.write_report(d, baseline="rat/reference", figures=False).read_text()
    assert cell(md, "rat/triton (L=32)", 1) == "1 — (baseline error)"  # not 1 (8x) over the L=16 case
    assert cell(md, "rat/triton (L=16)", 2) == "4 — (baseline OOM)"
    assert cell(md, "rat/triton (L=16)", 1) == "2 (4x)"
    for t in tables(md, "train (forward + backward)"):
        assert t.count("(baseline)") == 1


def test_automatic_baseline_has_the_most_timed_rows(tmp_path):
    """'rat/*': rat/flex (first by name) has one timed case and errors; the baseline is rat/triton."""
    rows = [row("rat/flex", "train", 64, 3.0, chunk_size=16)]
    rows += [row("rat/flex", "train", T, 0, status="error", chunk_size=16) for T in (128, 256)]
    rows += [row("rat/triton", "train", T, T / 32, chunk_size=16) for T in (64, 128, 256)]
    md = report.write_report(store(tmp_path, rows), figures=False).read_text()
    assert "speed-ups are over `rat/triton`" in md
    assert cell(md, "rat/flex (L=16)", 1) == "3 (0.667x)"
    assert report_rows.choose_baseline(report_rows.with_series(__import__("ratbench.bench.results").bench.results.load(tmp_path))) \
        == "rat/triton"


def test_comparison_key_is_every_case_field_but_the_implementation():
    import dataclasses

    fields = [f.name for f in dataclasses.fields(Case)]
    assert report_rows.comparison_key(True) == [f for f in fields if f != "impl"]
    assert set(report_rows.FAMILY_FIELDS) <= set(fields)  # a renamed field would leave the cross-family key
    assert set(report_rows.comparison_key(False)) == set(fields) - {"impl"} - set(report_rows.FAMILY_FIELDS)


def test_noisy_cells_are_marked_and_explained(tmp_path):
    rows = [row("full/reference", "train", 64, 8.0), row("rat/triton", "train", 64, 2.0, chunk_size=16),
            row("rat/triton", "train", 128, 4.0, chunk_size=16), row("full/reference", "train", 128, 16.0)]
    d = store(tmp_path, rows, extra={1: {"noisy": True, "ms_rel_spread": 0.4}, 2: {"noisy": False}})
    md = report.write_report(d, figures=False).read_text()
    assert cell(md, "rat/triton (L=16)", 1) == "2~ (4x)"
    assert cell(md, "rat/triton (L=16)", 2) == "4 (4x)"
    assert "~ noisy: p20-p80 spread" in md and "machine loaded" in md and "re-run with more repeats or on an idle machine" in md
    assert (tmp_path / "figures").exists() is False
    report.write_report(d)  # figures draw the noisy point hollow
    assert (tmp_path / "figures" / "latency_vs_seq_len.png").exists()


def test_rows_without_the_noisy_field_render_as_before(tmp_path):
    rows = [row("full/reference", "train", 64, 8.0), row("rat/triton", "train", 64, 2.0, chunk_size=16)]
    md = report.write_report(store(tmp_path, rows), figures=False).read_text()
    assert "~" not in md.split("### Details")[0].split("## train")[1]
    assert "noisy" not in md


@pytest.mark.parametrize("value", [None, float("nan"), False, 0])
def test_missing_noisy_values_are_not_noisy(value):
    assert report_rows.is_noisy({"noisy": value}) is False
    assert report_rows.is_noisy({}) is False
    assert report_rows.is_noisy({"noisy": True}) is True


def test_end_to_end_two_impls_two_chunk_sizes_on_the_cpu(tmp_path, capsys):
    """run_bench.py with rat/reference and rat/triton (Triton's interpreter) at two chunk sizes: each
    speed-up is the reference's time over triton's at the same L, read back from the results file."""
    from ratbench.bench import cli as run_bench
    from ratbench.bench.results import load

    out = tmp_path / "run"
    argv = ["--impl", "rat/reference,rat/triton", "--mode", "prefill", "--seq-len", "32", "--chunk-size", "8,16",
            "--batch", "1", "--heads", "1", "--head-dim", "32", "--device", "cpu", "--repeats", "3",
            "--min-repeats", "3", "--budget", "0.05", "--threads", "1", "--no-progress", "--out", str(out)]
    assert run_bench.main(argv) == 0
    capsys.readouterr()
    df = load(out)
    assert len(df) == 4 and set(df.status) == {"ok"}
    ms = {(r.impl, int(r.chunk_size)): r.ms_median for r in df.itertuples()}
    mark = {(r.impl, int(r.chunk_size)): "~" if report_rows.is_noisy(r._asdict()) else "" for r in df.itertuples()}
    md = (out / "report.md").read_text()
    title = "prefill (forward, no grad)"
    for L in (8, 16):
        want = ms[("rat/reference", L)] / ms[("rat/triton", L)]
        got = cell(md, f"rat/triton (L={L})", 1, title=title)
        # a loaded machine (the test suite on 2 cores) can flag the row noisy: its cell then ends in ~
        assert got == f"{fmt_ms(ms[('rat/triton', L)])}{mark[('rat/triton', L)]} ({want:.3g}x)", (L, got)
    assert [t.count("(baseline)") for t in tables(md, title)] == [1, 1]
    assert (out / "figures" / "latency_vs_chunk_size.png").exists()


def _clocked(tmp_path, clocks, started=("2026-12-06T18:00:00", "2026-12-06T18:00:09")):
    tmp_path.mkdir()
    rows = [row("rat/a", "train", 64, 2.0, chunk_size=16), row("rat/b", "train", 64, 2.1, chunk_size=16)]
    return store(tmp_path, rows, {i: {"sm_clock_mhz_mean": c, "started_at": s}
                                  for i, (c, s) in enumerate(zip(clocks, started)) if c is not None})


def test_report_names_a_case_whose_rows_ran_at_different_clocks(tmp_path):
    """A sweep's later rows of a power-capped case run at lower clocks (bench/README.md): the report says which
    case, at what clocks in the order the rows ran, and how to re-measure; rows within 2% or without clocks do not
    warn."""
    md = report.markdown(*_compared(_clocked(tmp_path / "far", (1693.0, 1485.0))))
    line = next(x for x in md.splitlines() if "SM clocks differ" in x)
    assert "within 1 case(s)" in line and "train T=64 B=2" in line
    assert "rat/a 1693 MHz, rat/b 1485 MHz, 12.3% apart" in line and "run_bench.py gate" in line
    spreads = report_rows.clock_spreads(report.load_compared(tmp_path / "far")[0])
    assert [(s.case, [i for i, _ in s.clocks]) for s in spreads] == [("train T=64 B=2", ["rat/a", "rat/b"])]
    later_first = _clocked(tmp_path / "swap", (1693.0, 1485.0), started=("2026-12-06T18:00:09", "2026-12-06T18:00:00"))
    assert "rat/b 1485 MHz, rat/a 1693 MHz" in report.markdown(*_compared(later_first))
    for name, clocks in (("near", (1980.0, 1960.0)), ("none", (None, None)), ("one", (1980.0, None))):
        assert "SM clocks differ" not in report.markdown(*_compared(_clocked(tmp_path / name, clocks))), name


def _compared(path):
    df, meta, base, second = report.load_compared(path)
    return df, meta, base, [], second
