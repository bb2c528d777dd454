"""Our layer- and model-level numbers beside the RAT paper's Figure 3 and Table 1 (docs/rat-spec.md), with ratios.

    section(df, meta, fig_dir)  ->  Markdown (and figures/paper_figure3.png|pdf, paper_table1.png|pdf)

Used by bench.report.write_report when a results file has layer or model rows. Conventions:
- "ours" for attention is given twice: with SDPA's FlashAttention-2 backend (``full/sdpa-flash``, the
  paper's baseline) and with the fastest full attention timed at that shape (on Hopper usually cuDNN);
  RAT's speed-ups are given against both. Per series the faster of eager and torch.compile'd is taken.
- RAT (L=16) is the fastest RAT implementation at chunk 16 at each T (named in the table).
- gen = the layer's decode step at position T - 1 at the paper's batch 512 (the largest decode batch run
  when 512 was not).
- ratio = ours / paper for times (below 1: faster than published) and ours / paper for tokens/s (above 1:
  faster). The paper ran on a GH200 (an H100 with 96 GB) with PyTorch ~2.7; its values were read off the
  published plot (about +-5%).
- A run whose shapes or device differ from the paper's (CPU, tiny shapes) is labelled NOT COMPARABLE: its
  rows only show that the pipeline works.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ratbench.bench import figures as F
from ratbench.bench import style
from ratbench.bench.sweep import format_size

K = 1024
#: Figure 3, milliseconds, read off the published plot (docs/rat-spec.md); None = OOM in the paper
FIGURE3: dict[str, dict[str, dict[int, float | None]]] = {
    "train": {"attention": {4 * K: 124, 8 * K: 179, 16 * K: 279, 32 * K: 476, 64 * K: 879, 128 * K: 1714},
              "rat": {4 * K: 157, 8 * K: 146, 16 * K: 158, 32 * K: 172, 64 * K: 200, 128 * K: 248}},
    "prefill": {"attention": {4 * K: 37, 8 * K: 53, 16 * K: 80, 32 * K: 136, 64 * K: 245, 128 * K: 495},
                "rat": {4 * K: 46, 8 * K: 42, 16 * K: 45, 32 * K: 50, 64 * K: 56, 128 * K: 71}},
    "decode": {"attention": {4 * K: 6.6, 8 * K: 12.9, 16 * K: 25.8, 32 * K: None, 64 * K: None, 128 * K: None},
               "rat": {4 * K: 0.74, 8 * K: 1.21, 16 * K: 2.44, 32 * K: 3.49, 64 * K: 6.9, 128 * K: 12.9}},
}
#: Table 1, generated tokens per second of the 1.3B model (1024 tokens after a 3072-token prompt, max batch)
TABLE1 = {"attention": 3052.0, "rat": 31170.0, "attention-swa": 4605.0, "rat-swa": 13582.0}
PAPER_TOKENS = 262144
PAPER_GEN_BATCH = 512
FA2 = "full/sdpa-flash"
MODE_NAME = {"train": "train", "prefill": "prefill", "decode": "gen"}


def _fmt(x: float | None, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}g}" if abs(x) < 1000 else f"{x:,.0f}"


def _x(x: float | None) -> str:
    """A speed-up: '6.9x', or '-' when not measured."""
    return "-" if x is None else _fmt(x) + "x"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or (isinstance(a, float) and math.isnan(a)):
        return None
    return a / b


# ----- comparability ----------------------------------------------------------------------------------
def layer_problems(df) -> list[str]:  # type: ignore[no-untyped-def]
    """Why the layer rows are not the paper's protocol (empty list: comparable)."""
    lay = df[df.level == "layer"]
    out = []
    if lay.empty:
        return out
    if set(lay.device) != {"cuda"}:
        out.append(f"device {','.join(sorted(set(lay.device)))}, not a GPU")
    if set(lay.heads) != {16} or set(lay.head_dim) != {128}:
        out.append(f"H={sorted(set(lay.heads))}, D={sorted(set(lay.head_dim))} (paper: 16 x 128, Dm 2048)")
    if set(lay.dtype) != {"bfloat16"}:
        out.append(f"dtype {sorted(set(lay.dtype))} (paper: bf16 autocast)")
    tr = lay[lay["mode"] != "decode"]
    if not tr.empty and set(tr.batch * tr.seq_len) != {PAPER_TOKENS}:
        out.append(f"tokens per batch {sorted({int(x) for x in tr.batch * tr.seq_len})} (paper: 262144)")
    return out


def model_problems(df) -> list[str]:  # type: ignore[no-untyped-def]
    mod = df[df.level == "model"]
    out = []
    if mod.empty:
        return out
    if set(mod.device) != {"cuda"}:
        out.append(f"device {','.join(sorted(set(mod.device)))}, not a GPU")
    if set(mod.heads * mod.head_dim) != {2048} or set(mod.n_layers) != {24}:
        out.append(f"d_model {sorted({int(x) for x in mod.heads * mod.head_dim})}, layers "
                   f"{sorted({int(x) for x in mod.n_layers})} (paper: 2048, 24)")
    if set(mod.seq_len) != {3072} or set(mod.new_tokens) != {1024}:
        out.append(f"prompt {sorted({int(x) for x in mod.seq_len})} + {sorted({int(x) for x in mod.new_tokens})}"
                   " new tokens "
                   f"(paper: 3072 + 1024)")
    if set(mod.dtype) != {"bfloat16"}:
        out.append(f"dtype {sorted(set(mod.dtype))} (paper: bf16)")
    return out


# ----- picking our numbers ----------------------------------------------------------------------------
def _ok_layer(df, mode: str):  # type: ignore[no-untyped-def]
    sub = df[(df.level == "layer") & (df["mode"] == mode) & (df.status == "ok")]
    if mode == "decode" and not sub.empty:  # the paper's batch, else the largest run
        keep = []
        for T, g in sub.groupby("seq_len"):
            b = PAPER_GEN_BATCH if (g.batch == PAPER_GEN_BATCH).any() else g.batch.max()
            keep.append(g[g.batch == b])
        import pandas as pd

        sub = pd.concat(keep)
    return sub


def _best(rows):  # type: ignore[no-untyped-def]
    """(ms, series name) of the fastest row, or (None, None)."""
    if rows is None or rows.empty:
        return None, None
    r = rows.loc[rows.ms_median.idxmin()]
    name = r.impl + (" (compiled)" if r.get("compiled") is True else "")
    return float(r.ms_median), name


def _failed(df, mode: str, T: int, kind: str, impl: str | None = None) -> str | None:  # type: ignore[no-untyped-def]
    sub = df[(df.level == "layer") & (df["mode"] == mode) & (df.seq_len == T) & (df.kind == kind)
             & (df.status != "ok")]
    if impl is not None:
        sub = sub[sub.impl == impl]
    if sub.empty:
        return None
    return "OOM" if (sub.status == "oom").any() else str(sub.status.iloc[0])


def figure3_rows(df) -> dict[str, list[dict]]:  # type: ignore[no-untyped-def]
    """Per mode, one dict per T: paper and our attention (FA2, fastest) and RAT (L=16), speed-ups."""
    out: dict[str, list[dict]] = {}
    for mode in ("train", "prefill", "decode"):
        ok = _ok_layer(df, mode)
        ours_T = {int(t) for t in df[(df.level == "layer") & (df["mode"] == mode)].seq_len}
        Ts = sorted(ours_T | set(FIGURE3[mode]["attention"]))
        rows = []
        for T in Ts:
            att = ok[(ok.kind == "attention") & (ok.seq_len == T)]
            fa2_ms, _ = _best(att[att.impl == FA2])
            fast_ms, fast_name = _best(att)
            rat_ms, rat_name = _best(ok[(ok.kind == "rat") & (ok.chunk_size == 16) & (ok.seq_len == T)])
            p_att, p_rat = FIGURE3[mode]["attention"].get(T), FIGURE3[mode]["rat"].get(T)
            rows.append({
                "T": T, "paper_attention_ms": p_att, "paper_rat_ms": p_rat,
                "paper_attention_oom": T in FIGURE3[mode]["attention"] and p_att is None,
                "fa2_ms": fa2_ms, "fa2_fail": None if fa2_ms else _failed(df, mode, T, "attention", FA2),
                "fastest_attention_ms": fast_ms, "fastest_attention": fast_name,
                "attention_fail": None if fast_ms else _failed(df, mode, T, "attention"),
                "rat_ms": rat_ms, "rat": rat_name, "rat_fail": None if rat_ms else _failed(df, mode, T, "rat"),
                "ratio_attention": _ratio(fa2_ms, p_att), "ratio_rat": _ratio(rat_ms, p_rat),
                "paper_speedup": _ratio(p_att, p_rat), "speedup_vs_fa2": _ratio(fa2_ms, rat_ms),
                "speedup_vs_fastest": _ratio(fast_ms, rat_ms),
            })
        if any(r["fa2_ms"] or r["rat_ms"] or r["fastest_attention_ms"] for r in rows):
            out[mode] = rows
    return out


def table1_rows(df) -> list[dict]:  # type: ignore[no-untyped-def]
    """One dict per model row (ok or not), with the paper's number and speed-ups over our attention."""
    mod = df[df.level == "model"]
    ok = mod[mod.status == "ok"]
    att = ok[ok.kind == "attention"]
    att_fa2 = att[att.impl == FA2].tokens_per_s.max() if (att.impl == FA2).any() else None
    att_best = att.tokens_per_s.max() if not att.empty else None
    out = []
    order = mod.assign(_compiled=[v is True for v in mod.get("compiled", [None] * len(mod))])
    for _, r in order.sort_values(["kind", "impl", "_compiled"]).iterrows():
        tps = float(r.tokens_per_s) if r.status == "ok" and r.tokens_per_s is not None else None
        det = r.details if isinstance(r.details, dict) else {}
        out.append({
            "mixer": r.kind, "impl": r.impl, "compiled": r.get("compiled") is True, "status": r.status, "reason": r.reason, "batch": int(r.batch),
            "tokens_per_s": tps, "decode_tokens_per_s": det.get("decode_tokens_per_s"),
            "cache_gib": None if r.cache_bytes is None or (isinstance(r.cache_bytes, float) and math.isnan(r.cache_bytes))
            else float(r.cache_bytes) / 2**30,
            "decode_mode": det.get("decode_mode"), "paper_tokens_per_s": TABLE1.get(r.kind),
            "ratio": _ratio(tps, TABLE1.get(r.kind)),
            "speedup_vs_attention_fa2": _ratio(tps, att_fa2), "speedup_vs_fastest_attention": _ratio(tps, att_best),
            "paper_speedup": _ratio(TABLE1.get(r.kind), TABLE1["attention"]),
            "max_batch_limit_reached": det.get("max_batch_limit_reached"),
        })
    return out


# ----- Markdown -----------------------------------------------------------------------------------
def _cell(ms: float | None, fail: str | None) -> str:
    return _fmt(ms) if ms is not None else (fail or "-")


def figure3_markdown(df) -> str:  # type: ignore[no-untyped-def]
    rows = figure3_rows(df)
    out = []
    for mode, rs in rows.items():
        out += [f"### Figure 3, {MODE_NAME[mode]} (one layer, ms)", "",
                ("| T | paper attention | ours attention FA2 | ratio | ours fastest attention | paper RAT L=16 | "
                 "ours RAT L=16 | ratio | paper speed-up | ours vs FA2 | ours vs fastest |"),
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rs:
            p_att = "OOM" if r["paper_attention_oom"] else _fmt(r["paper_attention_ms"])
            fast = _cell(r["fastest_attention_ms"], r["attention_fail"])
            if r["fastest_attention"]:
                fast += f" ({r['fastest_attention']})"
            rat = _cell(r["rat_ms"], r["rat_fail"]) + (f" ({r['rat']})" if r["rat"] else "")
            sp = [_x(r[k]) for k in ("paper_speedup", "speedup_vs_fa2", "speedup_vs_fastest")]
            out.append(f"| {format_size(r['T'])} | {p_att} | {_cell(r['fa2_ms'], r['fa2_fail'])} | "
                       f"{_fmt(r['ratio_attention'])} | {fast} | {_fmt(r['paper_rat_ms'])} | {rat} | "
                       f"{_fmt(r['ratio_rat'])} | " + " | ".join(sp) + " |")
        out.append("")
    return "\n".join(out)


def layer_series_markdown(df) -> str:  # type: ignore[no-untyped-def]
    """Every layer series (RAT at every chunk size, the RNN, every attention): ms per T, per mode."""
    out = []
    for mode in ("train", "prefill", "decode"):
        sub = df[(df.level == "layer") & (df["mode"] == mode)]
        if sub.empty:
            continue
        Ts = sorted({int(t) for t in sub.seq_len})
        out += [f"#### every layer series, {MODE_NAME[mode]} (ms; B per T as run)", "",
                "| series | " + " | ".join(format_size(T) for T in Ts) + " |", "|---|" + "---|" * len(Ts)]
        for series, g in sub.groupby("label", sort=True):
            cells = []
            for T in Ts:
                r = g[g.seq_len == T]
                if r.empty:
                    cells.append("")
                elif (r.status == "ok").any():
                    cells.append(_fmt(float(r[r.status == "ok"].ms_median.min())))
                else:
                    cells.append("OOM" if (r.status == "oom").any() else str(r.status.iloc[0]))
            out.append(f"| `{series}` | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def table1_markdown(df) -> str:  # type: ignore[no-untyped-def]
    rows = table1_rows(df)
    if not rows:
        return ""
    out = ["### Table 1 (1.3B model, generated tokens/s)", "",
           ("| mixer | implementations | batch | paper tok/s | ours tok/s | ratio | paper vs attention | "
            "ours vs attention FA2 | ours vs fastest attention | decode-only tok/s | cache GiB | decode |"),
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ours = _fmt(r["tokens_per_s"]) if r["status"] == "ok" else r["status"]
        batch = str(r["batch"]) + (" (search limit)" if r["max_batch_limit_reached"] else "")
        sp = [_x(r[k]) for k in ("paper_speedup", "speedup_vs_attention_fa2", "speedup_vs_fastest_attention")]
        impl = f"`{r['impl']}`" + (" (compiled)" if r["compiled"] else "")
        out.append(f"| {r['mixer']} | {impl} | {batch} | {_fmt(r['paper_tokens_per_s'])} | {ours} | "
                   f"{_fmt(r['ratio'])} | " + " | ".join(sp) + f" | {_fmt(r['decode_tokens_per_s'])} | "
                   f"{_fmt(r['cache_gib'])} | {r['decode_mode'] or '-'} |")
    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad:
        out.append(f"\n- {r['mixer']} `{r['impl']}`" + (" (compiled)" if r["compiled"] else "") + f": {r['status']}: {str(r['reason'])[:300]}")
    out.append("")
    return "\n".join(out)


def headlines(df) -> list[str]:  # type: ignore[no-untyped-def]
    """The paper's headline ratios beside ours: train at 128K (6.9x), gen at 4K (8.9x), Table 1 (10.2x)."""
    out = []
    f3 = figure3_rows(df)
    for mode, T, paper in (("train", 128 * K, 6.9), ("decode", 4 * K, 8.9)):
        r = next((x for x in f3.get(mode, []) if x["T"] == T), None)
        if r and (r["speedup_vs_fa2"] or r["speedup_vs_fastest"]):
            out.append(f"- {MODE_NAME[mode]} at {format_size(T)}: RAT (L=16) {_x(r['speedup_vs_fa2'])} faster than "
                       f"attention with FA2 (paper: {paper}x), {_x(r['speedup_vs_fastest'])} faster than the "
                       f"fastest attention ({r['fastest_attention']})")
    t1 = [r for r in table1_rows(df) if r["mixer"] == "rat" and r["tokens_per_s"]]
    if t1:
        r = max(t1, key=lambda x: x["tokens_per_s"])
        out.append(f"- model: RAT (L=16) {_fmt(r['tokens_per_s'])} tok/s, {_x(r['speedup_vs_attention_fa2'])} "
                   f"attention with FA2 and {_x(r['speedup_vs_fastest_attention'])} the fastest attention "
                   f"(paper: 31,170 tok/s, 10.2x)")
    return out


def section(df, meta: dict | None = None, fig_dir: Path | None = None) -> str:  # type: ignore[no-untyped-def]
    """The whole side-by-side section (Markdown); figures into ``fig_dir`` when given."""
    out = ["## The RAT paper's Figure 3 and Table 1, side by side", ""]
    lp, mp = layer_problems(df), model_problems(df)
    if lp or mp:
        out += ["**NOT COMPARABLE with the published numbers**: "
                + "; ".join([f"layer rows: {p}" for p in lp] + [f"model rows: {p}" for p in mp])
                + ". These rows check the pipeline, not the paper's claims.", ""]
    out += [("The paper: GH200 (H100 96 GB), PyTorch ~2.7, torch.compile, values read off its plot (+-5%). "
             "Ratio = ours / paper (times: below 1 is faster than published; tokens/s: above 1 is faster). "
             "Speed-ups are attention ms / RAT ms on our machine, against SDPA's FlashAttention-2 backend (the "
             "paper's baseline) and against the fastest full attention we timed."), ""]
    notes = []
    dec = df[(df.level == "layer") & (df["mode"] == "decode") & (df.status == "ok")]
    fills = sorted({d.get("decode_fill") for d in dec.details if isinstance(d, dict) and d.get("decode_fill")})
    if fills:
        notes.append("gen: the layer's cache at T - 1 was " + " / ".join(
            {"prefill": "filled by real prefills of T - 1 random tokens",
             "none": "left at zeros with the position set (the same kernels and bytes as a filled one)"}.get(f, f)
            for f in fills) + f"; timer {', '.join(sorted(set(dec.timer.dropna())))}")
    mod = df[(df.level == "model") & df.window.notna()]
    if not mod.empty:
        notes.append(f"SWA layers attend W = {', '.join(str(int(w)) for w in sorted(set(mod.window)))} keys including "
                     "the query (the authors' hybrid mask q - kv <= 1024 keeps 1025)")
    if notes:
        out += [f"- {n}" for n in notes] + [""]
    hl = headlines(df)
    if hl:
        out += ["Headlines:", ""] + hl + [""]
    out.append(figure3_markdown(df))
    out.append(layer_series_markdown(df))
    out.append(table1_markdown(df))
    if fig_dir is not None:
        written: list[str] = []
        plot_figure3(df, Path(fig_dir), written, not_comparable=bool(lp))
        plot_table1(df, Path(fig_dir), written, not_comparable=bool(mp))
        out += [f"![{Path(f).stem}](figures/{Path(f).name})" for f in written if f.endswith(".png")]
        out.append("")
    return "\n".join(out)


# ----- figures ----------------------------------------------------------------------------------------
def plot_figure3(df, fig_dir: Path, written: list[str], *, not_comparable: bool = False,  # type: ignore[no-untyped-def]
                 name: str = "paper_figure3") -> None:
    """The paper's Figure 3 layout: train, prefill, gen ms vs T, our layer series (fixed colour per
    implementation, bench.style; ours solid, peers dashed) and the published attention and RAT L=16 (grey,
    dashed; its OOM as a grey x at the top, ours below it in the line's colour). The paper's train and prefill are torch.compile'd: where the run has
    compiled layer rows of a mode, that panel shows our compiled series only (compiled beside compiled); where
    it has none, our eager series without the paper's curves (eager beside compiled would mislead). gen is
    our decode step as measured (CUDA graph replay where recorded) beside the paper's gen."""
    lay = df[df.level == "layer"]
    modes = [m for m in ("train", "prefill", "decode") if (lay["mode"] == m).any()]
    if not modes:
        return
    plt = F.pyplot()
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(modes), figsize=(4.4 * len(modes), 3.8), squeeze=False)
    impl_of = dict(zip(lay.label, lay.impl))
    color = {s: style.impl_color(impl_of[s]) for s in impl_of}  # one fixed colour per implementation
    compiled_of = lay.get("compiled", [None] * len(lay))
    lay = lay.assign(_compiled=[v is True for v in compiled_of])
    notes = []
    for ax, mode in zip(axes[0], modes):
        sub = _ok_layer(df, mode)
        sub = sub.assign(_compiled=[v is True for v in sub.get("compiled", [None] * len(sub))])
        lay_m = lay[lay["mode"] == mode]
        has_compiled = mode != "decode" and bool(lay_m._compiled.any())
        paper_here = not not_comparable and (mode == "decode" or has_compiled)
        if mode != "decode":
            sub = sub[sub._compiled == has_compiled]
            lay_m = lay_m[lay_m._compiled == has_compiled]
        series = sorted(set(lay_m.label))
        variant: dict[str, int] = {}
        for slot, s in enumerate(series):
            i = variant[impl_of[s]] = variant.get(impl_of[s], -1) + 1  # variants of one implementation: marker, dashes
            g = sub[sub.label == s].sort_values("seq_len")
            if not g.empty:
                ax.plot(g.seq_len, g.ms_median, marker=style.impl_marker(impl_of[s], i), ms=3.5, color=color[s],
                        label=s, lw=1.4, ls=style.impl_linestyle(impl_of[s], i))
            fails = lay_m[(lay_m.label == s) & (lay_m.status == "oom")]
            for T in fails.seq_len:
                ax.plot(T, 0.935 - 0.035 * (slot % 8), marker="x", color=color[s], ms=7, mew=2, clip_on=False,
                        transform=ax.get_xaxis_transform())
        if paper_here:
            for kind, mk in (("attention", "s"), ("rat", "^")):
                pts = sorted((T, v) for T, v in FIGURE3[mode][kind].items() if v is not None)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], ls="--", marker=mk, ms=4, color="0.45",
                        label=f"paper {'attention (FA2)' if kind == 'attention' else 'RAT L=16'} (compiled)")
                for T in (T for T, v in FIGURE3[mode][kind].items() if v is None):  # the paper's OOM
                    ax.plot(T, 0.97, marker="x", color="0.45", ms=7, mew=2, clip_on=False,
                            transform=ax.get_xaxis_transform())
        elif not not_comparable:
            notes.append(f"{MODE_NAME[mode]}: no compiled rows, the paper's (compiled) curves not drawn")
        ax.set_xscale("log", base=2)
        F.log_y(ax)
        F.size_ticks(ax, list(lay[lay["mode"] == mode].seq_len) + (list(FIGURE3[mode]["rat"]) if paper_here else []))
        ax.set_xlabel("sequence length T")
        ax.set_ylabel("ms per layer call")
        how = "" if mode == "decode" else (" - compiled" if has_compiled else " - eager")
        ax.set_title({"train": "train (fwd + bwd)", "prefill": "prefill", "decode": "gen (one step at T-1)"}[mode]
                     + how)
    handles, labels = [], []
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if any(ln.get_marker() == "x" for ax in axes[0] for ln in ax.get_lines()):
        handles.append(F.mark_handle("oom"))
        labels.append(F.MARKS["oom"])
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, -0.03 - 0.04 * math.ceil(len(labels) / 3)))
    fig.suptitle("layer level, the RAT paper's Figure 3 protocol" +
                 (" - NOT COMPARABLE (tiny shapes / CPU)" if not_comparable else "") +
                 ("\n" + "; ".join(notes) if notes else ""), fontsize=9)
    F.save(fig, fig_dir, name, written)


def plot_table1(df, fig_dir: Path, written: list[str], *, not_comparable: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Generated tokens/s per model row: ours (colour of the mixer's implementation; eager hatched, compiled
    solid, each bar labelled eager / compiled) beside the paper's (grey), every bar with its value, on a
    linear axis from zero."""
    rows = [r for r in table1_rows(df) if r["tokens_per_s"]]
    if not rows:
        return
    plt = F.pyplot()
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.3 * len(rows) + 2), 4.2))
    xs = list(range(len(rows)))
    paper = not not_comparable
    w = 0.38 if paper else 0.6
    ours_x = [x - w / 2 for x in xs] if paper else xs
    top = max([r["tokens_per_s"] for r in rows] + [r["paper_tokens_per_s"] or 0 for r in rows] if paper else
              [r["tokens_per_s"] for r in rows])
    for x, r in zip(ours_x, rows):
        c = style.impl_color(r["impl"].split("+")[0])
        ax.bar(x, r["tokens_per_s"], width=w, color=c, edgecolor=c, alpha=1.0 if r["compiled"] else 0.55,
               hatch=None if r["compiled"] else "////")
        ax.text(x, r["tokens_per_s"] + 0.01 * top, f"{r['tokens_per_s']:,.0f}", ha="center", va="bottom",
                fontsize=6, rotation=90)
    if paper:
        for x, r in zip(xs, rows):
            if r["paper_tokens_per_s"]:
                ax.bar(x + w / 2, r["paper_tokens_per_s"], width=w, color="0.7", edgecolor="0.5")
                ax.text(x + w / 2, r["paper_tokens_per_s"] + 0.01 * top, f"{r['paper_tokens_per_s']:,.0f}",
                        ha="center", va="bottom", fontsize=6, rotation=90, color="0.35")
    ax.set_xticks(xs)
    ax.set_xticklabels(["\n".join([r["mixer"], *r["impl"].split("+"), f"B={r['batch']}",
                                    "compiled" if r["compiled"] else "eager"]) for r in rows], fontsize=6)
    ax.set_ylim(0, top * 1.25)
    ax.grid(axis="x", visible=False)
    ax.set_ylabel("generated tokens / s")
    ax.set_title("model level, Table 1" + (" - NOT COMPARABLE (tiny model / CPU)" if not_comparable else ""))
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="0.4", label="ours, compiled"),
               Patch(facecolor="0.4", alpha=0.55, hatch="////", label="ours, eager")]
    if paper:
        handles.append(Patch(facecolor="0.7", edgecolor="0.5", label="paper (H100)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars
    F.save(fig, fig_dir, "paper_table1", written)


# ----- rows from scripts/gpu_layers.py's JSON ---------------------------------------------------------------
def rows_from_gpu_layers(path: str | Path):  # -> pandas.DataFrame
    """The layer (train, prefill), gen (decode; graph replay when measured, else eager) and model rows of a
    gpu_layers.json as harness rows (level, kind, impl, mode, seq_len, batch, ms_median, ...), so that the
    report and figure functions read it like a results file. Dm 2048, H 16, D 128, bf16, chunk 16."""
    import pandas as pd

    from ratbench.bench.results import ROW_COLUMNS

    d = json.loads(Path(path).read_text())
    machine = d.get("machine", {})
    dev = "cuda" if "cpu" not in str(machine.get("gpu", "")) else "cpu"
    rows = []

    def base(kind: str, impl: str, mode: str, T: int, B: int, compiled: bool = False) -> dict:
        L = 16 if kind == "rat" else None
        lab = f"layer {kind} {impl}" + (f" (L={L})" if L else "") + (" (compiled)" if compiled else "")
        return {"key": f"{impl}|{mode}|layer|B{B}|T{T}|K{kind}|compiled{int(compiled)}", "family": impl.split("/")[0],
                "impl": impl, "label": lab, "mode": mode, "level": "layer", "batch": B, "seq_len": T, "heads": 16,
                "head_dim": 128, "chunk_size": L, "window": None, "decay": None, "dtype": "bfloat16", "device": dev,
                "kind": kind, "compiled": compiled}

    for r in d.get("layer", []):
        for mode in ("train", "prefill"):
            row = base(r["kind"], r["impl"], mode, r["T"], r["B"], bool(r.get("compiled")))
            ms = r.get(f"{mode}_ms")
            note = r.get(f"{mode}_note")
            row.update(status="ok" if ms else ("oom" if note == "OOM" else "error"), ms_median=ms, reason=note,
                       timer="triton do_bench median")
            rows.append(row)
    for r in d.get("gen", []):
        row = base(r["kind"], r["impl"], "decode", r["T"], r["B"])
        ms = r.get("graph_ms") or r.get("eager_ms")
        row.update(status="ok" if ms else ("oom" if r.get("note") == "OOM" else "error"), ms_median=ms,
                   reason=r.get("note"), timer="cuda-graph" if r.get("graph_ms") else "eager",
                   cache_bytes=None if r.get("cache_gib") is None else int(r["cache_gib"] * 2**30),
                   tokens_per_s=None if not ms else r["B"] / (ms * 1e-3))
        rows.append(row)
    for r in d.get("model", []):
        impl = "+".join(r["impls"].values())
        row = {"key": f"{impl}|generate|model|{r['mixer']}", "family": impl.split("/")[0], "impl": impl,
               "label": f"model {r['mixer']} {impl}", "mode": "generate", "level": "model", "batch": r["batch"],
               "seq_len": r["prompt"], "heads": 16, "head_dim": 128, "chunk_size": 16, "window": None, "decay": None,
               "dtype": "bfloat16", "device": dev, "kind": r["mixer"], "compiled": False, "new_tokens": r["new"],
               "n_layers": 24, "status": "ok" if r.get("tokens_per_s") else ("oom" if r.get("note") == "OOM" else "error"),
               "reason": r.get("note"), "tokens_per_s": r.get("tokens_per_s"),
               "cache_bytes": None if r.get("cache_gib") is None else int(r["cache_gib"] * 2**30),
               "details": {k: r.get(k) for k in ("decode_tokens_per_s", "decode_mode", "graph_note")}}
        if r.get("tokens_per_s"):
            row["ms_median"] = (r["prefill_s"] + r["decode_s"]) * 1e3
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in ROW_COLUMNS:
        if col not in df.columns:
            df[col] = None
    return df


# ----- merging the phases of scripts/gpu_paper.sh ---------------------------------------------------------------
#: the phase directories, in merge order: a later phase's row of the same case wins (report: last row wins)
PHASES = ("layer", "layer-rnn", "compiled", "model", "model-compiled")


def merge_phases(stage: str | Path, phases: tuple[str, ...] = PHASES, out: str = "all") -> Path:
    """Concatenate every phase's results.jsonl into ``stage/out`` and write a run.json that keeps every phase's
    sessions (bench/provenance.py), so each row still names the command, git revision, versions and machine that
    measured it. Rows without a ``run_id`` (runs made before sessions were recorded) get the id of the session
    they belong to by time (``provenance.session_of``); those ids are prefixed with the phase. A phase's
    ``run-*.json`` files (the run.json of an earlier command whose rows were appended to that phase's results,
    kept beside it) count as sessions of that phase too. The device,
    ceilings and spec are the first phase's (all phases run on one machine type; the sessions say which).
    Raises FileNotFoundError when no phase has results."""
    from ratbench.bench import provenance as P
    from ratbench.bench import results as R

    stage = Path(stage)
    rows: list[dict] = []
    sessions: list[dict] = []
    merged_from: list[dict] = []
    first_meta: dict | None = None
    finished: list[str] = []
    for phase in phases:
        if not (stage / phase / R.RESULTS).exists():
            continue
        meta = R.read_meta(stage / phase)
        finished += [str(meta["finished_at"])] if meta.get("finished_at") else []
        first_meta = first_meta if first_meta is not None else meta
        sess = [dict(s, phase=phase) for s in P.sessions(meta, prefix=f"{phase}:")]
        for extra in sorted((stage / phase).glob("run-*.json")):  # run.json of earlier commands, kept beside
            sess += [dict(s, phase=phase) for s in P.sessions(json.loads(extra.read_text(encoding="utf-8")),
                                                              prefix=f"{phase}:{extra.stem}:")
                     if not any(s.get("run_id") == t.get("run_id") for t in sess)]
        sess.sort(key=lambda s: str(s.get("started_at") or ""))
        prow = R.read_rows(stage / phase)
        for r in prow:
            if not r.get("run_id"):
                s = P.session_of(r, sess)
                r["run_id"] = s["run_id"] if s else None
        keys = {r.get("key") for r in prow}
        merged_from.append({"phase": phase, "command": meta.get("command"), "n_rows": len(prow),
                            "n_cases": meta.get("n_cases"), "missing": max(0, (meta.get("n_cases") or 0) - len(keys)),
                            "run_ids": [s["run_id"] for s in sess]})
        sessions += sess
        rows += prow
    if first_meta is None:
        raise FileNotFoundError(f"no phase results under {stage} ({', '.join(phases)})")
    dest = stage / out
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / (R.RESULTS + ".tmp")
    tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(dest / R.RESULTS)
    revs = list(dict.fromkeys(P.git_label(s.get("git_rev"), s.get("git_dirty")).removesuffix(" (dirty unknown)")
                              for s in sessions))
    all_keys = {r.get("key") for r in rows}
    R.write_meta(dest, {
        "command": "merge of " + ", ".join(m["phase"] for m in merged_from) + " (bench/paper.py merge_phases)",
        "preset": first_meta.get("preset"), "started_at": min(str(s.get("started_at") or "") for s in sessions),
        "finished_at": max(finished, default=None),        "git": ", ".join(revs), "device": first_meta.get("device"), "ceilings": first_meta.get("ceilings"),
        "spec": first_meta.get("spec"), "n_cases": len(all_keys) + sum(m["missing"] for m in merged_from),
        "merged_from": merged_from, "sessions": sessions,
    })
    return dest
