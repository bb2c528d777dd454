"""Layer- and model-level harness cases (bench/levels.py) end to end on the CPU at tiny shapes, their cost
model, the max-batch search done by the harness, and the paper's side-by-side report (bench/paper.py)."""
from __future__ import annotations

import json
from pathlib import Path

import bench_fakes
import pandas as pd
import pytest
import torch

from ratbench.bench import cli as run_bench
from ratbench.bench import levels, paper, report, runner
from ratbench.bench.costs import cost
from ratbench.bench.presets import preset
from ratbench.bench.results import load
from ratbench.bench.sweep import Case, SweepError, SweepSpec, expand
from ratbench.models.costs import projection_flops

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data" / "paper-cpu-tiny"
TINY = ["--heads", "2", "--head-dim", "8", "--device", "cpu", "--repeats", "2", "--min-repeats", "1", "--budget", "0.01",
        "--no-progress", "--threads", "1"]


def test_layer_level_end_to_end(tmp_path):
    out = tmp_path / "run"
    argv = ["--level", "layer", "--impl", "full/reference,full/sdpa-math,rat/reference", "--kind", "attention,rat,rnn",
            "--layer-chunk-size", "8,32", "--seq-len", "32,64", "--tokens", "128", "--decode-batch", "2",
            "--no-figures", "--out", str(out), *TINY]
    assert run_bench.main(argv) == 0
    df = load(out)
    assert set(df.level) == {"layer"} and set(df.status) == {"ok"}, df[["label", "status", "reason"]]
    assert set(df.kind) == {"attention", "rat", "rnn"}
    assert set(df[df.kind == "rat"].chunk_size) == {8, 32} and df[df.kind == "rnn"].chunk_size.isna().all()
    # 3 modes x 2 T x (2 attention + 2 RAT chunk sizes + RNN)
    assert len(df) == 30
    dec = df[df["mode"] == "decode"]
    assert (dec.batch == 2).all() and (dec.tokens_per_s > 0).all() and (dec.cache_bytes > 0).all()
    assert set(dec.timed_call) == {"layer step"}
    # RAT's chunk cache is L times smaller than attention's KV cache (docs/rat-spec.md), plus the running float32 kt, vt
    kv = dec[(dec.impl == "full/reference") & (dec.seq_len == 64)].cache_bytes.iloc[0]
    rat8 = dec[(dec.kind == "rat") & (dec.chunk_size == 8) & (dec.seq_len == 64)].cache_bytes.iloc[0]
    assert rat8 == kv // 8 + 2 * (2 * 2 * 8) * 4
    # the non-reference implementation was checked against the reference layer before timing
    math_rows = df[df.impl == "full/sdpa-math"]
    assert set(math_rows.accuracy) == {"pass"}
    assert all(d["check"]["ok"] and d["check"]["rel_err"] < 1e-4 for d in math_rows.details)
    assert all(d["check"]["rel_err_grad"] is not None for d in math_rows[math_rows["mode"] == "train"].details)
    assert all(d["check"]["rel_err_decode"] is not None for d in math_rows[math_rows["mode"] == "decode"].details)
    assert set(df[df.impl.str.endswith("reference")].accuracy) == {"unchecked"}
    assert (df.flops > 0).all() and (df.peak_mem_bytes.isna()).all()
    md = (out / "report.md").read_text()
    assert "Figure 3, train" in md and "NOT COMPARABLE" in md and "layer rnn rat/reference (L=T)" in md


def test_layer_level_wrong_impl_is_never_timed(tmp_path):
    with bench_fakes.registered():
        spec = SweepSpec(impls=["full/test-wrong"], levels=["layer"], kinds=["attention"], modes=["prefill"],
                         seq_lens=[32], heads=[2], head_dims=[8], batches=[1], tokens=None, repeats=2, min_repeats=1)
        r, cases, _ = runner.start(spec, tmp_path, command="pytest", measure_ceilings=False)
        rows = r.run(cases)
    assert [x.status for x in rows] == ["wrong"] and rows[0].ms_median is None
    assert "reference layer" in rows[0].reason


def test_layer_level_unsupported_and_unavailable(tmp_path):
    spec = SweepSpec(impls=["full/sdpa-flash", "rat/reference"], levels=["layer"], kinds=["attention", "rat"],
                     modes=["train"], seq_lens=[24], layer_chunk_sizes=[16], heads=[2], head_dims=[8], batches=[1],
                     tokens=None, repeats=2, min_repeats=1)
    r, cases, _ = runner.start(spec, tmp_path, command="pytest", measure_ceilings=False)
    rows = {x.impl: x for x in r.run(cases)}
    assert rows["full/sdpa-flash"].status == "unavailable"
    assert rows["rat/reference"].status == "unsupported" and "multiple of chunk_size" in rows["rat/reference"].reason


def test_model_level_end_to_end_with_max_batch_search(tmp_path, monkeypatch):
    """The harness searches the largest batch: here memory 'runs out' above 20 sequences (a stand-in for
    the GPU's OOM in models.lm.memory_probe), and the search (multiples of 8 from 64 down, then bisection)
    must find 16: 64, 32 run out, 16 fits, 24 runs out."""
    import ratbench.models.lm

    real_probe = ratbench.models.lm.memory_probe

    def probe(model, b, *a, **kw):
        if b > 20:
            raise torch.OutOfMemoryError("CUDA out of memory (test stand-in)")
        return real_probe(model, b, *a, **kw)

    monkeypatch.setattr(ratbench.models.lm, "memory_probe", probe)
    out = tmp_path / "run"
    argv = ["--level", "model", "--model", "rat,rat-swa", "--impl", "rat/reference,swa/reference", "--window", "8",
            "--chunk-size", "4", "--prompt-len", "12", "--new-tokens", "6", "--layers", "2", "--max-batch", "64",
            "--out", str(out), *TINY]
    assert run_bench.main(argv) == 0
    df = load(out)
    assert set(df.level) == {"model"} and set(df.status) == {"ok"}, df[["label", "status", "reason"]]
    assert sorted(df.kind) == ["rat", "rat-swa"] and set(df.impl) == {"rat/reference", "rat/reference+swa/reference"}
    for _, r in df.iterrows():
        assert r.batch == 16 and r.details["max_batch"] == 16 and r.details["max_batch_tried"] == [
            [64, False], [32, False], [16, True], [24, False]]
        assert r.tokens_per_s == pytest.approx(16 * 6 / (r.ms_median * 1e-3))
        assert r.cache_bytes > 0 and r.new_tokens == 6 and r.n_layers == 2
    assert "Table 1" in (out / "report.md").read_text()


def test_model_cases_compile_the_glue_when_asked(monkeypatch):
    """--compile no,yes gives an eager and a compiled model case; the compiled one reaches measure_generation
    as compile_glue=True and its row and label say so."""
    import ratbench.models.throughput
    from ratbench.bench.levels import run_case
    from ratbench.bench.runner import Runner

    spec = SweepSpec(impls=["rat/reference"], levels=["model"], models=["rat"], compile=[False, True], heads=[2],
                     head_dims=[8], chunk_sizes=[4], prompt_len=8, new_tokens=3, n_layers=1, model_batch=2,
                     vocab_size=50, check_accuracy=False, device="cpu", dtype="float32")
    cases = expand(spec)
    assert [c.compiled for c in cases] == [False, True]
    assert "compiled" in cases[1].label and "compiled" not in cases[0].label
    seen = []

    def fake(cfg, **kw):
        seen.append(kw["compile_glue"])
        return ratbench.models.throughput.Generation("rat", {}, 1, 2, 8, 3, tokens_per_s=1.0,
                                                     decode_tokens_per_s=1.0, prefill_s=0.5, decode_s=0.5,
                                                     cache_bytes=8, compiled=kw["compile_glue"])

    monkeypatch.setattr(ratbench.models.throughput, "measure_generation", fake)
    rows = [run_case(Runner(Path("unused.jsonl"), spec), c) for c in cases]
    assert seen == [False, True] and [r.compiled for r in rows] == [False, True]
    assert rows[1].details["compiled"] is True


def test_half_precision_model_case_with_triton_kernels(tmp_path):
    """The GPU runs bf16; the CPU tests mostly fp32. fp16 (which the Triton interpreter computes correctly)
    exercises the low-precision path end to end: autocast in the layer check, the decode cache's dtype,
    generation in half precision. On the H200 every rat/triton layer-decode and model case once failed its
    check there ('decode state holds torch.float32; the inputs are torch.bfloat16')."""
    out = tmp_path / "run"
    argv = ["--level", "model", "--model", "rat", "--impl", "rat/triton",
            "--dtype", "fp16", "--chunk-size", "4", "--seq-len", "16", "--prompt-len", "12", "--new-tokens", "4",
            "--layers", "1", "--model-batch", "2", "--out", str(out), *TINY, "--head-dim", "32"]
    assert run_bench.main(argv) == 0
    df = load(out)
    assert set(df.level) == {"model"} and set(df.status) == {"ok"}, df[["label", "status", "reason"]]
    assert df.details.iloc[0]["checks"]["rat rat/triton"]["rel_err_decode"] is not None


def test_layer_cost_is_projections_plus_op():
    kw = {"batch": 2, "seq_len": 64, "heads": 4, "head_dim": 16, "dtype": "float32", "device": "cpu"}
    for kind, impl, L in (("attention", "full/reference", None), ("rat", "rat/reference", 16),
                          ("rnn", "rat/reference", None)):
        for mode in ("train", "prefill", "decode"):
            c = Case(impl=impl, mode=mode, chunk_size=L, level="layer", kind=kind, **kw)
            op = cost(Case(impl=impl, mode=mode, chunk_size=64 if kind == "rnn" else L, **kw))
            tokens = 2 if mode == "decode" else 128
            proj = projection_flops(kind, tokens, 64, 4, 16)
            assert cost(c).flops == pytest.approx((3 if mode == "train" else 1) * proj + op.flops)
            assert cost(c).bytes > op.bytes
    # the paper's attention layer: fused QKV (3 x 2048) and out_proj (2048): 8 * Dm^2 multiply-adds per token
    assert projection_flops("attention", 1, 2048, 16, 128) == 2 * 4 * 2048 * 2048
    # RAT: in_proj to z, v, g (3 Dm) and q, k (2 groups x 128 each), out_proj
    assert projection_flops("rat", 1, 2048, 16, 128) == 2 * 2048 * (3 * 2048 + 512 + 2048)


def test_expansion_and_keys():
    spec = preset("paper", "cuda")
    assert spec.levels == ["layer", "model"] and spec.layer_chunk_sizes == [16, 64, 128]
    spec.impls = ["full/sdpa-flash", "full/sdpa-cudnn", "rat/triton", "swa/flex"]
    cases = expand(spec)
    layer = [c for c in cases if c.level == "layer"]
    model = [c for c in cases if c.level == "model"]
    # 6 T x [train, prefill] x (2 attention + 3 RAT + RNN) + 6 T x decode x 6 series
    assert len(layer) == 6 * 3 * 6
    assert {c.batch for c in layer if c.mode == "decode"} == {512}
    assert {c.batch * c.seq_len for c in layer if c.mode != "decode"} == {262144}
    assert sorted((c.kind, c.impl) for c in model) == [
        ("attention", "full/sdpa-cudnn"), ("attention", "full/sdpa-flash"),
        ("attention-swa", next(c.impl for c in model if c.kind == "attention-swa")),
        ("rat", "rat/triton"), ("rat-swa", "rat/triton+swa/flex")]
    m = next(c for c in model if c.kind == "rat")
    assert (m.seq_len, m.new_tokens, m.n_layers, m.batch) == (3072, 1024, 24, 0)
    assert len({c.key for c in cases}) == len(cases)
    assert Case(impl="rat/triton", mode="train", batch=1, seq_len=8, heads=1, head_dim=8, dtype="float32",
                device="cpu").key.count("|") == 11  # op keys unchanged
    with pytest.raises(SweepError, match="unknown level"):
        expand(SweepSpec(levels=["kernel"]))
    with pytest.raises(SweepError, match="mixer"):
        expand(SweepSpec(impls=["rat/reference"], levels=["model"], models=["rat-gru"]))


def test_compile_only_for_train_and_prefill():
    spec = SweepSpec(impls=["rat/reference"], levels=["layer"], kinds=["rat"], compile=[False, True], seq_lens=[32],
                     heads=[2], head_dims=[8])
    cases = expand(spec)
    assert {(c.mode, c.compiled) for c in cases} == {("train", False), ("train", True), ("prefill", False),
                                                      ("prefill", True), ("decode", False)}
    assert "compiled" in next(c for c in cases if c.compiled).label


# ----- the paper report -----------------------------------------------------------------------------
def _h200_like_rows() -> pd.DataFrame:
    """Layer rows at the paper's shapes with the anchors' H200 numbers (docs/h200-anchors.md) as input."""
    rows = []
    for T, B, fa2, cudnn, rat in ((4096, 64, 102.1, 78.4, 130.6), (131072, 2, 1559.5, 940.2, 204.3)):
        for impl, kind, ms in (("full/sdpa-flash", "attention", fa2), ("full/sdpa-cudnn", "attention", cudnn),
                               ("rat/flex", "rat", rat)):
            c = Case(impl=impl, mode="train", batch=B, seq_len=T, heads=16, head_dim=128, dtype="bfloat16",
                     device="cuda", chunk_size=16 if kind == "rat" else None, level="layer", kind=kind,
                     compiled=True)
            rows.append({**c.to_dict(), "key": c.key, "label": c.label, "family": c.family, "status": "ok",
                         "ms_median": ms})
    for impl, kind, tps in (("full/sdpa-flash", "attention", 3000.0), ("full/sdpa-cudnn", "attention", 4000.0),
                            ("rat/triton", "rat", 60000.0)):
        rows.append({"impl": impl, "kind": kind, "level": "model", "mode": "generate", "status": "ok", "batch": 256,
                     "seq_len": 3072, "new_tokens": 1024, "n_layers": 24, "heads": 16, "head_dim": 128,
                     "dtype": "bfloat16", "device": "cuda", "tokens_per_s": tps, "cache_bytes": 2**30,
                     "label": f"model {kind} {impl}", "details": {"decode_mode": "eager"}, "reason": None})
    return pd.DataFrame(rows)


def test_paper_ratios_and_speedups():
    df = _h200_like_rows()
    assert paper.layer_problems(df) == [] and paper.model_problems(df) == []
    f3 = {r["T"]: r for r in paper.figure3_rows(df)["train"]}
    r = f3[131072]
    assert r["speedup_vs_fa2"] == pytest.approx(1559.5 / 204.3) and r["speedup_vs_fastest"] == pytest.approx(940.2 / 204.3)
    assert r["fastest_attention"] == "full/sdpa-cudnn (compiled)" and r["ratio_rat"] == pytest.approx(204.3 / 248)
    assert r["paper_speedup"] == pytest.approx(1714 / 248)
    assert f3[8192]["fa2_ms"] is None and f3[8192]["paper_attention_ms"] == 179  # the paper's T, not run here
    t1 = {x["impl"]: x for x in paper.table1_rows(df)}
    assert t1["rat/triton"]["speedup_vs_attention_fa2"] == pytest.approx(20.0)
    assert t1["rat/triton"]["speedup_vs_fastest_attention"] == pytest.approx(15.0)
    assert t1["rat/triton"]["ratio"] == pytest.approx(60000 / 31170)
    md = paper.section(df)
    assert "NOT COMPARABLE" not in md and "7.63x" in md and "4.6x" in md and "20x" in md


def test_paper_report_from_stored_tiny_results(tmp_path):
    """The committed tiny CPU run of the paper preset (tests/data/paper-cpu-tiny) regenerates its report with
    the side-by-side section, labelled not comparable, and the paper figures."""
    path = report.write_report(DATA / "results.jsonl", out_dir=tmp_path)
    md = path.read_text()
    assert "The RAT paper's Figure 3 and Table 1" in md and "NOT COMPARABLE" in md
    assert "| 128k | 1,714 |" in md  # the published train column, beside our (absent) numbers
    assert "### Table 1" in md and "rat-swa" in md
    assert (tmp_path / "figures" / "paper_figure3.png").exists() and (tmp_path / "figures" / "paper_table1.png").exists()
    df = load(DATA / "results.jsonl")
    assert {"layer", "model"} <= set(df.level)


def test_report_when_every_row_of_a_mode_failed(tmp_path):
    """A mode whose rows all failed (the H200 paper run's first RAT model and layer-decode rows) still gets a
    report and figures: no empty log-scaled axis (matplotlib raised 'Data cannot be log-scaled')."""
    rows = [json.loads(line) for line in (DATA / "results.jsonl").read_text().splitlines() if line.strip()]
    for r in rows:
        if r["mode"] in ("decode", "generate") and r["family"] == "rat":
            r.update(status="error", reason="RuntimeError: broken on purpose", ms_median=None, ms_p20=None,
                     ms_p80=None, samples_ms=None, tokens_per_s=None)
    src = tmp_path / "results.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = report.write_report(src, out_dir=tmp_path / "out")
    assert "broken on purpose" in path.read_text()
    assert (tmp_path / "out" / "figures" / "latency_vs_chunk_size.png").exists()


def test_rows_from_gpu_layers_json():
    df = paper.rows_from_gpu_layers(ROOT / "reports" / "layers-2026-11-29" / "gpu_layers.json")
    raw = json.loads((ROOT / "reports" / "layers-2026-11-29" / "gpu_layers.json").read_text())
    lay = next(x for x in raw["layer"] if x["impl"] == "rat/triton" and x["T"] == 131072)
    fa2 = next(x for x in raw["layer"] if x["impl"] == "full/sdpa-flash" and x["T"] == 131072)
    r = next(x for x in paper.figure3_rows(df)["train"] if x["T"] == 131072)
    assert r["speedup_vs_fa2"] == pytest.approx(fa2["train_ms"] / lay["train_ms"])
    assert paper.layer_problems(df) == []
    gen = paper.figure3_rows(df)["decode"]
    assert next(x for x in gen if x["T"] == 16384)["rat_ms"] == pytest.approx(
        next(x for x in raw["gen"] if x["impl"] == "rat/triton" and x["T"] == 16384)["graph_ms"])


def test_cpu_paper_preset_is_tiny_and_labelled():
    spec = preset("paper", "cpu")
    assert spec.levels == ["layer", "model"] and spec.n_layers == 2 and spec.max_batch_limit <= 8
    cases = expand(spec)
    assert max(c.heads * c.head_dim for c in cases) <= 256 and {c.level for c in cases} == {"layer", "model"}


def test_levels_label():
    c = Case(impl="rat/triton", mode="train", batch=1, seq_len=64, heads=1, head_dim=8, dtype="float32",
             device="cpu", level="layer", kind="rnn", compiled=True)
    assert c.label == "layer rnn rat/triton (L=T, compiled)"
    assert levels.mixer_kinds("rat-swa") == ["rat", "swa"]


def test_generation_lowers_the_batch_when_the_timed_generate_runs_out_of_memory(monkeypatch):
    from ratbench.models.lm import LanguageModel, LMConfig
    from ratbench.models.throughput import measure_generation

    real = LanguageModel.generate

    def generate(self, ids, n_new, **kw):
        if ids.shape[0] > 12:
            raise torch.OutOfMemoryError("CUDA out of memory (test stand-in)")
        return real(self, ids, n_new, **kw)

    monkeypatch.setattr(LanguageModel, "generate", generate)
    cfg = LMConfig(vocab_size=64, d_model=16, n_layers=2, heads=2, head_dim=8, mixer="rat", chunk_size=4,
                   impls={"rat": "rat/reference"})
    g = measure_generation(cfg, device="cpu", dtype=torch.float32, prompt_len=8, n_new=3, batch=16)
    assert (g.batch, g.oom_retries, g.check_batch) == (8, 1, 8)  # 16 * 7/8 rounded down to a multiple of 8
    assert g.tokens_per_s > 0 and g.cache_bytes > 0
    with pytest.raises(torch.OutOfMemoryError):
        measure_generation(cfg, device="cpu", dtype=torch.float32, prompt_len=8, n_new=3, batch=16, oom_retries=0)


def test_cpu_paper_preset_end_to_end(tmp_path):
    """--preset paper on the CPU (one length, a few implementations): layer and model rows, the side-by-side
    section labelled not comparable."""
    out = tmp_path / "paper"
    argv = ["--preset", "paper", "--device", "cpu", "--seq-len", "128", "--impl", "full/sdpa-math,rat/reference",
            "--model", "attention,rat", "--layer-chunk-size", "16,128", "--new-tokens", "4", "--prompt-len", "16",
            "--no-progress", "--threads", "1", "--repeats", "2", "--min-repeats", "1", "--budget", "0.01",
            "--out", str(out)]
    assert run_bench.main(argv) == 0
    df = load(out)
    assert set(df.level) == {"layer", "model"} and set(df.status) == {"ok"}, df[["label", "status", "reason"]]
    assert set(df[df.level == "layer"].kind) == {"attention", "rat", "rnn"}
    assert (df[(df.level == "layer") & (df["mode"] == "decode")].batch == 8).all()  # the CPU preset's gen batch
    md = (out / "report.md").read_text()
    assert "NOT COMPARABLE" in md and "### Table 1" in md and "Figure 3, gen" in md
    assert (out / "figures" / "paper_figure3.png").exists()


@pytest.mark.parametrize("argv,msg", [(["--level", "kernel"], "unknown level"), (["--level", "layer", "--kind", "gru"],
                                                                                  "unknown layer kind"),
                                      (["--level", "model", "--model", "rat-gru"], "mixer must be")])
def test_bad_level_arguments_are_clear_errors(tmp_path, capsys, argv, msg):
    assert run_bench.main(argv + ["--impl", "rat/reference", "--device", "cpu", "--out", str(tmp_path / "x"),
                                  "--no-progress"]) == 2
    assert msg in capsys.readouterr().err
