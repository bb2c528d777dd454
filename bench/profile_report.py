"""The report section of ``run_bench.py profile`` (profile.jsonl beside results.jsonl), called by
bench.report.write_report: per-case coverage and stage split, per-stage rates (and Nsight Compute / SASS
columns when measured), the top kernels, a stacked stage-time figure against T per implementation and mode,
and a roofline of the stages that have a cost model. Regenerated from the files alone, like the rest."""
from __future__ import annotations

import logging
import math
from pathlib import Path

from ratbench.bench.results import PROFILE, read_meta, read_rows
from ratbench.bench.stages import OTHER, kernel_base_name
from ratbench.bench.sweep import MODES, format_size

log = logging.getLogger(__name__)

#: kernels listed per case in the report
TOP = 8


def load_profile_rows(run_dir: str | Path) -> list[dict]:
    """The profile rows of a run directory (last row per case key), [] when it has none."""
    p = Path(run_dir)
    path = p / PROFILE if p.is_dir() else p.parent / PROFILE
    if not path.exists():
        return []
    last: dict[str, dict] = {}
    for r in read_rows(path):
        if r.get("row_type") == "profile":
            last[r["key"]] = r
    return list(last.values())


def _f(x: object, fmt: str = "{:.3g}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return fmt.format(x)


def _pct(x: object) -> str:
    return _f(None if x is None else 100 * float(x), "{:.0f}%")  # type: ignore[arg-type]


def _case(r: dict) -> str:
    extra = f", L={r['chunk_size']}" if r.get("chunk_size") else (f", W={r['window']}" if r.get("window") else "")
    return f"`{r['impl']}` {r['mode']} T={format_size(int(r['seq_len']))} B={r['batch']}{extra}"


def _order(rows: list[dict]) -> list[dict]:
    mode = {m: i for i, m in enumerate(MODES)}
    return sorted(rows, key=lambda r: (r["impl"], mode.get(r["mode"], 9), r["seq_len"], r["batch"]))


def _md(s: str) -> str:
    return s.replace("|", "\\|")


#: coverage further than this from 1 gets a reason in the report
COVERAGE_TOLERANCE = 0.10


def coverage_reason(kernel_ms: float, median_ms: float, samples_ms: list[float]) -> str:
    """Why one profiled call's kernel time is off the harness median by more than COVERAGE_TOLERANCE,
    from the harness's own samples of the same case."""
    cov = kernel_ms / median_ms
    if cov < 1:
        return (f"{100 * (1 - cov):.0f}% of the median is not kernel time: launch gaps and host work between "
                f"kernels (the call is launch- or host-bound)")
    if not samples_ms:
        return "the harness kept no samples to compare the one profiled call with"
    lo, hi = min(samples_ms), max(samples_ms)
    near = sum(x >= 0.98 * kernel_ms for x in samples_ms)
    if near:
        return (f"the harness's own calls vary: {near} of {len(samples_ms)} took >= 98% of the profiled call's "
                f"{kernel_ms:.3g} ms (range {lo:.3g}-{hi:.3g} ms), the median sits in the faster mode; one "
                f"profiled call is one sample")
    return (f"the profiled call ({kernel_ms:.3g} ms of kernels) was slower than every timed call ({lo:.3g}-"
            f"{hi:.3g} ms): profiler overhead or a clock change during that one call")


def _coverage_notes(ok: list[dict], run_dir: str | Path) -> list[str]:
    from ratbench.bench.results import RESULTS, read_rows

    path = Path(run_dir) / RESULTS
    timing = {r["key"]: r for r in read_rows(path) if r.get("row_type") in (None, "timing")} if path.exists() else {}
    notes = []
    for r in ok:
        d, med = r["details"], r.get("ms_median")
        cov = d.get("coverage")
        if cov is None or not med or abs(cov - 1) <= COVERAGE_TOLERANCE:
            continue
        samples = (timing.get(r["key"]) or {}).get("samples_ms") or []
        notes.append(f"- {_case(r)}: coverage {cov:.2f}: {coverage_reason(d['kernel_ms'], med, samples)}")
    if not notes:
        return [f"Coverage is within {100 * COVERAGE_TOLERANCE:.0f}% of the harness median for every case.", ""]
    return [f"Coverage further than {100 * COVERAGE_TOLERANCE:.0f}% from the harness median:", "", *notes, ""]


def section(run_dir: str | Path, meta: dict | None = None, fig_dir: Path | None = None) -> str:
    """Markdown of the profile section ("" when the run has no profile rows); figures into ``fig_dir``."""
    rows = load_profile_rows(run_dir)
    if not rows:
        return ""
    meta = meta if meta is not None else read_meta(run_dir)
    ok = [r for r in _order(rows) if r["status"] == "ok" and r.get("details")]
    prof = meta.get("profile") or {}
    out = ["## Kernel profile (`run_bench.py profile`)", "",
           ("One call per case after the harness's timing of the same case (warm, outside compilation), under "
           "torch.profiler: GPU kernels on CUDA, operators' self time on the CPU (Triton kernels run by the "
           "interpreter count whole). Coverage = the call's kernel time / the harness median (launch gaps and "
           "host work make it < 1). Stages are the implementation's kernel-name patterns (`profile_stages`); "
           "`other` holds what matches none. Rates use ratbench.bench.costs.stage_costs where a stage has a cost model "
           "(stage FLOPs count what the kernels execute) and the run's measured ceilings. Traces: `traces/*.json.gz` "
           "(open in https://ui.perfetto.dev)."), ""]
    if prof.get("ncu") and prof.get("ncu_unavailable"):
        out += [f"Nsight Compute: unavailable: {prof['ncu_unavailable']}.", ""]
    if ok:
        out += ["| case | harness median ms | kernel ms | coverage | stages: ms (share) |",
                "| --- | --- | --- | --- | --- |"]
        for r in ok:
            d = r["details"]
            st = ", ".join(f"{s['stage']} {_f(s['ms'])} ({_pct(s['share'])})" for s in d["stages"])
            out.append(f"| {_case(r)} | {_f(r.get('ms_median'))} | {_f(d['kernel_ms'])} | "
                       f"{_f(d.get('coverage'), '{:.2f}')} | {_md(st)} |")
        out.append("")
        out += _coverage_notes(ok, run_dir)
        out += _stage_table(ok) + _kernel_tables(ok)
    bad = [r for r in _order(rows) if r["status"] != "ok"]
    if bad:
        out += ["Not profiled:", ""] + [f"- {_case(r)}: {r['status']}: {_md(str(r.get('reason') or ''))[:300]}"
                                        for r in bad] + [""]
    if fig_dir is not None and ok:
        written = plot_stages(ok, fig_dir) + plot_stage_roofline(ok, meta, fig_dir)
        out += [f"![{Path(f).stem}](figures/{Path(f).name})" for f in written if f.endswith(".png")] + [""]
    return "\n".join(out)


def _stage_table(ok: list[dict]) -> list[str]:
    has_ncu = any((r["details"].get("ncu") or {}).get("status") == "ok" for r in ok)
    has_sass = any((r["details"].get("sass") or {}).get("status") == "ok" for r in ok)
    head = "| case | stage | ms | share | calls | TFLOP/s | % peak FLOP/s | GB/s | % peak BW |"
    sep = "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    if has_ncu:
        head += " tensor pipe % | SM % | DRAM % | occupancy % | regs (ncu) | local ld/st |"
        sep += " --- | --- | --- | --- | --- | --- |"
    if has_sass:
        head += " regs (sm_90) | spills | smem B | HGMMA |"
        sep += " --- | --- | --- | --- |"
    lines = ["### Stages", "", head, sep]
    for r in ok:
        d = r["details"]
        ncu = (d.get("ncu") or {}).get("kernels") or {}
        sass = (d.get("sass") or {}).get("kernels") or {}
        for s in d["stages"]:
            line = (f"| {_case(r)} | {s['stage']} | {_f(s['ms'])} | {_pct(s['share'])} | {s['calls']} | "
                    f"{_f(s.get('tflops'))} | {_f(s.get('pct_peak_flops'), '{:.0f}')} | {_f(s.get('gbps'), '{:.4g}')} | "
                    f"{_f(s.get('pct_peak_bw'), '{:.0f}')} |")
            if has_ncu:
                line += " " + _stage_ncu(s, d, ncu) + " |"
            if has_sass:
                line += " " + _stage_sass(s, sass) + " |"
            lines.append(line)
    return lines + [""]


def _stage_kernels(s: dict, d: dict) -> list[str]:
    return [k["name"] for k in d["kernels"] if k["stage"] == s["stage"]]


#: columns that rows written before a rename keep under their old name (same ncu metric)
_OLD_NCU_COLS = {"tensor_pct": "tensor_mma_pct"}


def _metric(m: dict, col: str) -> float | None:
    v = m.get(col)
    return m.get(_OLD_NCU_COLS[col]) if v is None and col in _OLD_NCU_COLS else v


def _stage_ncu(s: dict, d: dict, ncu: dict) -> str:
    """The stage's kernels' ncu metrics, weighted by ncu's own kernel durations."""
    ms = [ncu[b] for b in dict.fromkeys(kernel_base_name(n) for n in _stage_kernels(s, d)) if b in ncu]
    if not ms:
        return " | ".join([""] * 6)

    def wmean(col: str) -> float | None:
        pairs = [(_metric(m, col), m.get("ncu_ns") or 1.0) for m in ms if _metric(m, col) is not None]
        tot = sum(w for _, w in pairs)
        return sum(v * w for v, w in pairs) / tot if pairs and tot else None

    regs = [m["registers"] for m in ms if m.get("registers") is not None]
    ld = sum(m.get("local_ld") or 0 for m in ms)
    st = sum(m.get("local_st") or 0 for m in ms)
    return " | ".join([_f(wmean("tensor_pct"), "{:.0f}"), _f(wmean("sm_pct"), "{:.0f}"), _f(wmean("dram_pct"), "{:.0f}"),
                       _f(wmean("occupancy_pct"), "{:.0f}"), _f(max(regs) if regs else None, "{:.0f}"),
                       f"{ld:.0f}/{st:.0f}"])


def _stage_sass(s: dict, sass: dict) -> str:
    fs = [sass[n] for n in s["kernels"] if n in sass]
    if not fs:
        return " |  |  | "
    return " | ".join([str(max(f["regs"] for f in fs)), str(max(f["spills"] for f in fs)),
                       str(max(f["shared"] for f in fs)), str(sum(f.get("HGMMA") or 0 for f in fs))])


def _kernel_tables(ok: list[dict]) -> list[str]:
    lines = ["### Top kernels per case", ""]
    for r in ok:
        d = r["details"]
        lines += [f"{_case(r)} ({d['activity']}, {len(d['kernels']) + d.get('kernels_left_out', 0)} distinct):", "",
                  "| kernel | stage | calls | total ms | per call ms | share |", "| --- | --- | --- | --- | --- | --- |"]
        for k in d["kernels"][:TOP]:
            name = k["name"] if len(k["name"]) <= 90 else k["name"][:87] + "..."
            lines.append(f"| `{_md(name)}` | {k['stage']} | {k['calls']} | {_f(k['total_ms'])} | "
                         f"{_f(k['per_call_ms'])} | {_pct(k['share'])} |")
        lines.append("")
    return lines


# ----- figures ------------------------------------------------------------------------------------
def _plt():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, fig_dir: Path, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    fig_dir.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        path = fig_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=150 if ext == "png" else None, bbox_inches="tight")
        out.append(str(path))
    _plt().close(fig)
    return out


def _stage_colors(ok: list[dict]) -> dict[str, object]:
    plt = _plt()
    names: list[str] = []
    for r in ok:
        for s in r["details"]["stages"]:
            if s["stage"] not in names and s["stage"] != OTHER:
                names.append(s["stage"])
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colors = {n: cmap(i % cmap.N) for i, n in enumerate(names)}
    colors[OTHER] = (0.75, 0.75, 0.75, 1.0)
    return colors


def plot_stages(ok: list[dict], fig_dir: Path) -> list[str]:
    """Per mode: one panel per implementation, stacked kernel time per stage against T (bars), with the
    harness median as a marker (the gap is what the kernels do not cover)."""
    plt = _plt()
    colors = _stage_colors(ok)
    written: list[str] = []
    for mode in MODES:
        rs = [r for r in ok if r["mode"] == mode]
        if not rs:
            continue
        impls = sorted({r["label"] for r in rs})
        fig, axes = plt.subplots(1, len(impls), figsize=(3.6 * len(impls), 3.4), squeeze=False)
        for ax, impl in zip(axes[0], impls):
            g = sorted([r for r in rs if r["label"] == impl], key=lambda r: (r["seq_len"], r["batch"]))
            xs = list(range(len(g)))
            bottom = [0.0] * len(g)
            for stage in colors:
                h = [next((s["ms"] for s in r["details"]["stages"] if s["stage"] == stage), 0.0) for r in g]
                if any(h):
                    ax.bar(xs, h, bottom=bottom, color=colors[stage], label=stage, width=0.7)
                    bottom = [b + v for b, v in zip(bottom, h)]
            med = [r.get("ms_median") for r in g]
            ax.scatter([x for x, m in zip(xs, med) if m], [m for m in med if m], marker="_", s=300, color="black",
                       zorder=3, label="harness median")
            ax.set_xticks(xs, [f"{format_size(int(r['seq_len']))}\nB={r['batch']}" for r in g])
            ax.set_title(impl, fontsize=9)
        axes[0][0].set_ylabel(f"{mode}: kernel time of one call (ms)")
        handles, labels = {}, []
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in handles:
                    handles[lab] = h
                    labels.append(lab)
        # the legend gets a margin of its own below the two-line tick labels (T, B), so nothing overlaps
        rows_of_legend = -(-len(labels) // 6)
        fig.subplots_adjust(bottom=0.2 + 0.07 * rows_of_legend, top=0.84, wspace=0.3)
        fig.legend([handles[lab] for lab in labels], labels, loc="lower center", ncol=min(6, len(labels)),
                   bbox_to_anchor=(0.5, 0.0), frameon=False)
        fig.suptitle(f"where the time goes: {mode} (stacked per stage against T and B, one profiled call)")
        written += _save(fig, fig_dir, f"profile_stages_{mode}")
    return written


def plot_stage_roofline(ok: list[dict], meta: dict, fig_dir: Path) -> list[str]:
    """Stages with a cost model on the run's measured roofline: intensity (stage FLOPs / stage minimum bytes)
    against achieved TFLOP/s; colour = stage, marker = implementation."""
    pts = [(r, s) for r in ok for s in r["details"]["stages"] if s.get("tflops") and s.get("bytes")]
    ceil = meta.get("ceilings")
    if not pts or not ceil:
        return []
    import numpy as np

    from ratbench.bench.figures import human_rate

    plt = _plt()
    colors = _stage_colors(ok)
    impls = sorted({r["label"] for r, _ in pts})
    markers = dict(zip(impls, "os^Dv<>ph*"))
    fig, ax = plt.subplots(figsize=(6.2, 4.3))
    inten = [s["flops"] / s["bytes"] for _, s in pts]
    xs = np.logspace(math.log10(max(min(inten) / 4, 1e-2)), math.log10(max(inten) * 4), 200)
    peak, bw = ceil["matmul_tflops"], ceil["copy_gbps"]
    ax.plot(xs, np.minimum(peak, bw * xs / 1e3), color="black", lw=1.2,
            label=f"ceiling: {human_rate(peak, 'TFLOP/s')}, {human_rate(bw, 'GB/s')}")
    for r, s in pts:
        ax.scatter(s["flops"] / s["bytes"], s["tflops"], color=colors.get(s["stage"], "gray"),
                   marker=markers.get(r["label"], "o"), s=22)
    for stage, c in colors.items():
        if any(s["stage"] == stage for _, s in pts):
            ax.scatter([], [], color=c, marker="s", label=stage)
    for impl in impls:
        ax.scatter([], [], color="gray", marker=markers[impl], label=impl)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("stage intensity (FLOP / minimum byte)")
    ax.set_ylabel("stage TFLOP/s (kernel time of one call)")
    ax.set_title("per-stage roofline")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    return _save(fig, fig_dir, "profile_roofline")


def summary(run_dir: str | Path) -> str:
    """A few lines for the terminal: per case, coverage and the stage split."""
    lines = []
    for r in _order(load_profile_rows(run_dir)):
        if r["status"] != "ok" or not r.get("details"):
            lines.append(f"{_case(r)}: {r['status']}: {str(r.get('reason') or '')[:160]}")
            continue
        d = r["details"]
        st = ", ".join(f"{s['stage']} {_f(s['ms'])} ms" for s in d["stages"])
        lines.append(f"{_case(r)}: median {_f(r.get('ms_median'))} ms, kernels {_f(d['kernel_ms'])} ms "
                     f"(coverage {_f(d.get('coverage'), '{:.2f}')}): {st}")
    return "\n".join(lines).replace("`", "")
