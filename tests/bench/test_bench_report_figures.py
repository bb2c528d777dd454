"""Figures a reader does not trip on (issue 14, item 6): every log panel has labelled y ticks, eager and
compiled (or any two cases that differ in one more field) are never joined into one line, legends sit
outside the axes and list only marks that are drawn, noisy points are hollow."""
from __future__ import annotations

import json

import pytest

from ratbench.bench import figures, report_rows
from ratbench.bench.results import Row, append_row, load, write_meta
from ratbench.bench.sweep import Case


def row(impl, mode, T, ms, status="ok", B=2, H=2, **kw):
    c = Case(impl=impl, mode=mode, batch=B, seq_len=T, heads=H, head_dim=16, dtype="float32", device="cpu", **kw)
    if status != "ok":
        return Row.for_case(c, status, reason=f"{status} here")
    return Row.for_case(c, "ok", ms_median=ms, ms_p20=ms * 0.98, ms_p80=ms * 1.03, n_samples=3,
                        samples_ms=[ms * 0.98, ms, ms * 1.03], timer="perf_counter", first_call_ms=ms * 5,
                        flops=1e9 * ms, bytes=1e6, tflops=1.0, gbps=1.0, max_abs_err=1e-6, accuracy="pass")


@pytest.fixture()
def figs(monkeypatch):
    """Figures by name, drawn, instead of written and closed."""
    out = {}

    def keep(fig, fig_dir, name, written):
        fig.canvas.draw()
        out[name] = fig
        written.append(name)

    monkeypatch.setattr(figures, "save", keep)
    yield out
    import matplotlib.pyplot as plt

    for f in out.values():
        plt.close(f)


def frame(tmp_path, rows, extra=None):
    path = tmp_path / "results.jsonl"
    for i, r in enumerate(rows):
        if extra and i in extra:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(json.loads(r.to_json()) | extra[i]) + "\n")
        else:
            append_row(path, r)
    write_meta(tmp_path, {"ceilings": {"matmul_tflops": 10.0, "matmul_dtype": "float32", "matmul_shape": 512,
                                       "copy_gbps": 20.0}})
    df = report_rows.with_series(load(tmp_path))
    base = report_rows.choose_baseline(df)
    return report_rows.speedups(df, base), base


def layer_chunk_rows():
    """A layer sweep like reports/h200-paper: L = 16, 64, 128 eager and L = 16 compiled, three T; the
    prefill latency of RAT stays within one decade."""
    rows = []
    for T, B in ((64, 8), (128, 4), (256, 2)):
        for L, ms in ((16, 40.0), (64, 36.0), (128, 34.0)):
            for mode in ("train", "prefill"):
                rows.append(row("rat/triton", mode, T, ms * (1 + T / 1024) * (3 if mode == "train" else 1), B=B,
                                level="layer", kind="rat", compiled=False, chunk_size=L))
        for mode in ("train", "prefill"):
            rows.append(row("rat/triton", mode, T, 25.0 * (1 + T / 1024) * (3 if mode == "train" else 1), B=B,
                            level="layer", kind="rat", compiled=True, chunk_size=16))
    return rows


def visible_tick_labels(ax) -> list[str]:
    lo, hi = sorted(ax.get_ylim())
    return [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks())
            if t.get_text() and lo <= v <= hi]


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def check_legends_outside(fig):
    assert all(ax.get_legend() is None for ax in fig.axes), "a legend inside the axes"
    r = fig.canvas.get_renderer()
    for leg in fig.legends:
        box = leg.get_window_extent(r)
        for ax in fig.axes:
            assert not overlaps(box, ax.get_window_extent(r)), "the legend covers a panel"


def legend_texts(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()] + [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_chunk_size_figure_ticks_groups_and_legend(tmp_path, figs):
    df, _ = frame(tmp_path, layer_chunk_rows())
    figures.plot_chunk_size(df, tmp_path, [])
    fig = figs["latency_vs_chunk_size"]
    for ax in fig.axes:
        labels = visible_tick_labels(ax)
        assert len(labels) >= 2, (ax.get_title(), labels, ax.get_ylim())
        for line in ax.get_lines():
            xs = list(line.get_xdata())
            assert len(xs) == len(set(xs)), f"{ax.get_title()}: a line joins two cases at one chunk size: {xs}"
    check_legends_outside(fig)
    texts = legend_texts(fig)
    assert "OOM" not in texts and not any("error" in t for t in texts)
    assert any("compiled" in t for t in texts) and any("eager" in t for t in texts)


def test_latency_legend_lists_only_marks_drawn(tmp_path, figs):
    rows = [row("full/reference", "train", T, T / 16) for T in (64, 128)]
    rows += [row("rat/triton", "train", T, T / 64, chunk_size=16) for T in (64, 128)]
    (tmp_path / "a").mkdir()
    df, base = frame(tmp_path / "a", rows)
    figures.plot_latency(df, tmp_path, [], base)
    texts = legend_texts(figs["latency_vs_seq_len"])
    assert "OOM" not in texts and not any("error" in t for t in texts) and not any("noisy" in t for t in texts)
    check_legends_outside(figs["latency_vs_seq_len"])
    # with an OOM case the OOM mark is listed, still no other failure mark
    (tmp_path / "b").mkdir()
    df, base = frame(tmp_path / "b", rows + [row("full/reference", "train", 256, 0, status="oom")])
    figures.plot_latency(df, tmp_path, [], base)
    texts = legend_texts(figs["latency_vs_seq_len"])
    assert "OOM" in texts and not any("error" in t for t in texts)


def test_every_figure_has_labelled_ticks_and_legends_outside(tmp_path, figs):
    rows = layer_chunk_rows()
    for T in (64, 128, 256):  # decode over two batches and two head counts: lines differ in H
        for B in (2, 8):
            for H in (2, 4):
                rows.append(row("full/reference", "decode", T, 0.1 * T / 64 * B * H, B=B, H=H))
                rows.append(row("rat/triton", "decode", T, 0.05 * B * H, B=B, H=H, chunk_size=16))
                rows.append(row("rat/flex", "decode", T, 0.08 * B * H, B=B, H=H, chunk_size=16))  # a peer
    df, base = frame(tmp_path, rows)
    meta = {"ceilings": {"matmul_tflops": 10.0, "matmul_dtype": "float32", "matmul_shape": 512, "copy_gbps": 20.0}}
    figures.plot_latency(df, tmp_path, [], base)
    figures.plot_speedup(df, tmp_path, [], base)
    figures.plot_chunk_size(df, tmp_path, [])
    figures.plot_decode_batch(df, tmp_path, [])
    figures.plot_roofline(df, meta, tmp_path, [])
    assert set(figs) == {"latency_vs_seq_len", "speedup_vs_seq_len", "latency_vs_chunk_size", "decode_vs_batch",
                         "roofline"}
    for name, fig in figs.items():
        for ax in fig.axes:
            assert len(visible_tick_labels(ax)) >= 2, (name, ax.get_title())
        if name == "roofline":  # one legend outside the axes: one entry per implementation (= colour)
            texts = legend_texts(fig)
            assert texts.count("rat/triton") == 1 and not any("(L=16)" in t for t in texts)
        check_legends_outside(fig)
    ax = figs["decode_vs_batch"].axes[0]
    for line in ax.get_lines():
        xs = list(line.get_xdata())
        assert len(xs) == len(set(xs)), f"decode vs batch joins two cases at one batch: {xs}"
    assert len([ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2]) == 3 * 2 * 3  # impl x H x T


def test_noisy_points_are_hollow(tmp_path, figs):
    rows = [row("full/reference", "train", T, T / 16) for T in (64, 128, 256)]
    rows += [row("rat/triton", "train", T, T / 64, chunk_size=16) for T in (64, 128, 256)]
    df, base = frame(tmp_path, rows, extra={4: {"noisy": True, "ms_rel_spread": 0.5}})
    figures.plot_latency(df, tmp_path, [], base)
    fig = figs["latency_vs_seq_len"]
    hollow = [ln for ln in fig.axes[0].get_lines()
              if ln.get_marker() not in (None, "None", "") and ln.get_markerfacecolor() in ("white", "none", (1, 1, 1, 1))]
    pts = [(x, y) for ln in hollow for x, y in zip(ln.get_xdata(), ln.get_ydata())]
    assert pts == [(128, 2.0)]
    assert any("noisy" in t for t in legend_texts(fig))


def test_log_ticks_under_one_decade():
    assert len([t for t in figures.log_ticks(33, 52) if 33 <= t <= 52]) >= 3
    assert len([t for t in figures.log_ticks(93, 101) if 93 <= t <= 101]) >= 2
    assert [t for t in figures.log_ticks(0.9, 120) if 0.9 <= t <= 120] == [1, 2, 5, 10, 20, 50, 100]


# ----- issue 17 item 5: figures fit for a paper ----------------------------------------------------------
def line_color(fig, label):
    from matplotlib.colors import to_hex

    for ax in fig.axes:
        for ln in ax.get_lines():
            if ln.get_label() == label:
                return to_hex(ln.get_color()), ln.get_linestyle()
    raise AssertionError(f"no line {label!r}")


def test_colour_fixed_per_implementation_across_runs(tmp_path, figs):
    """rat/triton is the same colour whichever other implementations a run has (not its alphabetical place),
    ours solid, peers dashed, and the colour has its family's hue."""
    from matplotlib.colors import to_rgb

    runs = {"a": ["full/reference", "rat/triton"],
            "b": ["full/flash-attn", "full/sdpa-flash", "linear/fla", "rat/flex", "rat/reference", "rat/triton",
                  "swa/flex"]}
    seen = {}
    for name, impls in runs.items():
        (tmp_path / name).mkdir()
        rows = [row(i, "train", T, T / 16, chunk_size=16 if i.startswith("rat") else None) for i in impls
                for T in (64, 128)]
        df, base = frame(tmp_path / name, rows)
        figures.plot_latency(df, tmp_path, [], base)
        seen[name] = {i: line_color(figs["latency_vs_seq_len"], df[df.impl == i].series.iloc[0]) for i in impls}
    assert seen["a"]["rat/triton"] == seen["b"]["rat/triton"]
    assert seen["a"]["rat/triton"][1] == "-" and seen["b"]["rat/flex"][1] == "--"
    assert seen["b"]["full/flash-attn"][1] == "--" and seen["b"]["rat/reference"][1] == "-"
    r, g, b = to_rgb(seen["a"]["rat/triton"][0])
    assert r > g and r > b  # rat: reds
    r, g, b = to_rgb(seen["b"]["full/flash-attn"][0])
    assert b > r and b > g  # full: blues
    r, g, b = to_rgb(seen["b"]["swa/flex"][0])
    assert g > r and g > b  # swa: greens
    colours = [c for c, _ in seen["b"].values()]
    assert len(set(colours)) == len(colours)


def test_latency_has_p20_p80_error_bars(tmp_path, figs):
    from matplotlib.container import ErrorbarContainer

    rows = [row("full/reference", "train", T, T / 16) for T in (64, 128, 256)]
    rows += [row("rat/triton", "train", T, T / 64, chunk_size=16) for T in (64, 128, 256)]
    df, base = frame(tmp_path, rows)
    figures.plot_latency(df, tmp_path, [], base)
    fig = figs["latency_vs_seq_len"]
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    spans = sorted(tuple(round(v, 6) for v in seg[:, 1]) for c in bars for coll in c.lines[2]
                   for seg in coll.get_segments())
    assert (round(4.0 * 0.98, 6), round(4.0 * 1.03, 6)) in spans  # full/reference at T=64: median 4 ms
    assert any("p20-p80" in t for t in legend_texts(fig))


def marks_at(fig, marker):
    from matplotlib.colors import to_hex

    return [(float(ln.get_xdata()[0]), to_hex(ln.get_markeredgecolor())) for ax in fig.axes for ln in ax.get_lines()
            if ln.get_marker() == marker and len(ln.get_xdata()) == 1]


def test_speedup_within_family_over_best_peer_keeps_points_where_peer_oom(tmp_path, figs):
    """RAT over its peer (rat/flex), SWA over its own peers, never over full attention; where the peer is OOM
    and RAT ran, RAT's point is kept as a mark in RAT's colour, and the peer's OOM is drawn in the peer's
    colour (not a red cross any line could own)."""
    rows = [row("full/flash-attn", "decode", T, T / 8) for T in (64, 128, 256)]
    rows += [row("rat/triton", "decode", T, 1.0, chunk_size=16) for T in (64, 128, 256)]
    rows += [row("rat/flex", "decode", T, 2.0, chunk_size=16) for T in (64, 128)]
    rows += [row("rat/flex", "decode", 256, 0, status="oom", chunk_size=16)]
    rows += [row("swa/triton", "decode", T, 1.0, window=32) for T in (64, 128, 256)]
    rows += [row("swa/flex", "decode", T, 1.5, window=32) for T in (64, 128, 256)]
    rows += [row("swa/flash-attn", "decode", T, 4.0, window=32) for T in (64, 128, 256)]
    df, base = frame(tmp_path, rows)
    figures.plot_speedup(df, tmp_path, [], base)
    fig = figs["speedup_vs_seq_len"]
    ax = fig.axes[0]
    assert "peer" in ax.get_ylabel()
    from ratbench.bench import style

    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    rat = df[df.impl == "rat/triton"].series.iloc[0]
    assert list(lines[rat].get_ydata()) == [2.0, 2.0]  # over rat/flex, not over full/flash-attn (T/8 / 1)
    swa = df[df.impl == "swa/triton"].series.iloc[0]
    assert list(lines[swa].get_ydata()) == [1.5, 1.5, 1.5]  # over the fastest SWA peer (flex, not flash-attn)
    assert (256.0, style.impl_color("rat/triton")) in marks_at(fig, "^")  # kept: ran, peer OOM
    assert marks_at(fig, "x") == [(256.0, style.impl_color("rat/flex"))]  # the peer's OOM, in its colour
    texts = legend_texts(fig)
    assert "OOM" in texts and any("every peer OOM" in t for t in texts)


def test_roofline_ceilings_in_human_units_and_points_labelled_by_T(tmp_path, figs):
    rows = [row("rat/triton", "train", T, T / 64, chunk_size=16) for T in (64, 4096)]
    df, _ = frame(tmp_path, rows)
    meta = {"ceilings": {"matmul_tflops": 787.3, "matmul_dtype": "bfloat16", "matmul_shape": 8192,
                         "copy_gbps": 4230.0}}
    figures.plot_roofline(df, meta, tmp_path, [])
    fig = figs["roofline"]
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts] + [ax.get_title()] + legend_texts(fig)
    assert any("4.2 TB/s" in t for t in texts) and any("787 TFLOP/s" in t for t in texts)
    assert not any("e+" in t or "GB/s" in t for t in texts)
    assert {"64", "4k"} <= {t.get_text() for t in ax.texts}
    check_legends_outside(fig)
    r = fig.canvas.get_renderer()
    assert ax.get_window_extent(r).width > 0.6 * fig.get_window_extent(r).width  # the plot is most of the figure
    assert figures.human_rate(4230.0, "GB/s") == "4.2 TB/s" and figures.human_rate(787.3, "TFLOP/s") == "787 TFLOP/s"
    assert figures.human_rate(850.0, "GB/s") == "850 GB/s" and figures.human_rate(9.96, "TFLOP/s") == "10 TFLOP/s"


def test_tflops_bars_grouped_by_T_with_values_error_bars_and_oom(tmp_path, figs):
    from matplotlib.container import BarContainer, ErrorbarContainer

    from ratbench.bench import style

    rows = [row("full/flash-attn", "train", T, T / 16) for T in (64, 128)]
    rows += [row("full/flash-attn", "train", 256, 0, status="oom")]
    rows += [row("rat/triton", "train", T, T / 64, chunk_size=16) for T in (64, 128, 256)]
    df, _ = frame(tmp_path, rows)
    figures.plot_tflops_bars(df, tmp_path, [])
    fig = figs["tflops_bars"]
    ax = fig.axes[0]
    bars = [p for c in ax.containers if isinstance(c, BarContainer) for p in c.patches]
    assert len(bars) == 5  # 3 T x 2 implementations, less the OOM
    assert {round(p.get_x() + p.get_width() / 2) for p in bars} == {0, 1, 2}  # one group per T
    assert len([c for c in ax.containers if isinstance(c, ErrorbarContainer)]) == 5
    assert len([t for t in ax.texts if t.get_text()]) == 5  # each bar's value
    assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "128", "256"]
    assert marks_at(fig, "x") == [(2 - 0.4 + 0.4 * 0.5, style.impl_color("full/flash-attn"))]
    assert "OOM" in legend_texts(fig)
    check_legends_outside(fig)


def test_paper_figure3_compiled_beside_compiled(tmp_path, figs):
    """The paper's curves (compiled) sit beside our compiled series only; without compiled rows, our eager
    series are drawn without them."""
    from ratbench.bench import paper

    rows = []
    for T in (4096, 8192):
        for compiled in (False, True):
            for mode in ("train", "prefill"):
                rows.append(row("full/sdpa-flash", mode, T, T / 100, B=262144 // T, H=16, level="layer",
                                kind="attention", compiled=compiled))
                rows.append(row("rat/triton", mode, T, 40.0, B=262144 // T, H=16, level="layer", kind="rat",
                                compiled=compiled, chunk_size=16))
    df, _ = frame(tmp_path, rows)
    paper.plot_figure3(df, tmp_path, [], not_comparable=False)
    fig = figs["paper_figure3"]
    for ax in fig.axes:
        labels = [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert any(lab.startswith("paper") for lab in labels)
        ours = [lab for lab in labels if not lab.startswith("paper")]
        assert ours and all("compiled" in lab for lab in ours), labels
        assert "compiled" in ax.get_title()
    eager = df[df.compiled != True]
    paper.plot_figure3(eager, tmp_path, [], not_comparable=False)
    for ax in figs["paper_figure3"].axes:
        labels = [ln.get_label() for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert labels and not any(lab.startswith("paper") for lab in labels)
        assert "eager" in ax.get_title()


def test_paper_table1_bars_labelled_with_values_on_linear_axis(tmp_path, figs):
    import pandas as pd

    from ratbench.bench import paper

    base = {"level": "model", "mode": "generate", "status": "ok", "reason": None, "batch": 64, "seq_len": 3072,
            "details": {}, "cache_bytes": None, "label": "m"}
    df = pd.DataFrame([dict(base, kind="attention", impl="full/sdpa-flash", compiled=False, tokens_per_s=3000.0),
                       dict(base, kind="rat", impl="rat/triton", compiled=False, tokens_per_s=20000.0),
                       dict(base, kind="rat", impl="rat/triton", compiled=True, tokens_per_s=40000.0)])
    paper.plot_table1(df, tmp_path, [], not_comparable=False)
    ax = figs["paper_table1"].axes[0]
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    texts = {t.get_text() for t in ax.texts}
    assert {"3,000", "20,000", "40,000", "3,052", "31,170"} <= texts
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks[1].endswith("eager") and ticks[2].endswith("compiled")


def test_profile_roofline_ceiling_in_human_units(tmp_path, monkeypatch):
    from ratbench.bench import profile_report

    kept = {}

    def keep(fig, fig_dir, name):
        kept[name] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        import matplotlib.pyplot as plt

        plt.close(fig)
        return [name]

    monkeypatch.setattr(profile_report, "_save", keep)
    ok = [{"label": "rat/triton", "details": {"stages": [
        {"stage": "scan", "ms": 1.0, "flops": 1e12, "bytes": 1e10, "tflops": 100.0}]}}]
    meta = {"ceilings": {"matmul_tflops": 787.3, "copy_gbps": 4230.0}}
    profile_report.plot_stage_roofline(ok, meta, tmp_path)
    assert any("787 TFLOP/s" in t and "4.2 TB/s" in t for t in kept["profile_roofline"]), kept


def test_gluon_kernels_are_ours():
    """rat/gluon (our Hopper kernels) is drawn solid in its own red like rat/triton, not dashed like a peer."""
    from ratbench.bench import style

    assert style.is_ours("rat/gluon") and style.impl_linestyle("rat/gluon") == "-"
    assert style.impl_color("rat/gluon") != style.impl_color("rat/triton")
    assert not style.is_ours("rat/flex")
