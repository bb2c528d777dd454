"""The FlashAttention error rule (bench/fa_rule.py, ``--accuracy fa-rule``): the rule itself, Triton kernels
under the interpreter (fp32 and fp16; bf16 is not meaningful there), wrong implementations recorded 'wrong'
with per-tensor errors, the CLI flag and the presets that replaced the per-kernel GPU scripts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bench_fakes
import pytest
import torch

from ratbench.bench import fa_rule, runner
from ratbench.bench.presets import PRESETS, preset
from ratbench.bench.results import load, read_rows
from ratbench.bench.sweep import Case, SweepSpec, expand
from ratbench.impls.full.reference import FullReference

ROOT = Path(__file__).resolve().parents[2]


# ----- the rule -----------------------------------------------------------------------------------
def _pair(err: float, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    ref = torch.linspace(-1, 1, n, dtype=torch.float64)
    x = ref.clone()
    x[3] += err
    return x, ref


def test_low_precision_rule_is_twice_the_reference_error_plus_slack():
    x, ref = _pair(0.0)
    low = ref.clone()
    low[5] += 1e-3  # the same math in bf16 is off by 1e-3
    at = fa_rule.judge("o", _pair(2e-3 + 0.5e-6)[0], ref, low, "bfloat16")
    assert at.ok and at.measure == "max_abs" and at.bound == pytest.approx(2e-3 + 1e-6)
    over = fa_rule.judge("o", _pair(2e-3 + 3e-6)[0], ref, low, "bfloat16")
    assert not over.ok and over.err == pytest.approx(2e-3 + 3e-6)
    assert fa_rule.judge("o", x, ref, low, "float16").ok
    with pytest.raises(ValueError, match="needs the bfloat16 reference"):
        fa_rule.judge("o", x, ref, None, "bfloat16")


def test_fp32_rule_is_relative_l2():
    _x, ref = _pair(0.0)
    rnorm = ref.norm().item()
    assert fa_rule.judge("dq", _pair(0.9e-4 * rnorm)[0], ref, None, "float32").ok
    bad = fa_rule.judge("dq", _pair(1.1e-4 * rnorm)[0], ref, None, "float32")
    assert not bad.ok and bad.measure == "rel_l2" and bad.bound == 1e-4
    assert not fa_rule.judge("dq", _pair(1e-9 * rnorm)[0], ref, None, "float64").ok


def test_zero_reference_uses_an_absolute_bar():
    """RAT with one chunk: dq and dk are exactly 0 in the float64 reference (gpu_rat_long_chunk.py's case)."""
    ref = torch.zeros(8, dtype=torch.float64)
    low = torch.zeros(8, dtype=torch.float64)
    assert fa_rule.judge("dk", torch.full((8,), 5e-5), ref, low, "bfloat16").ok
    v = fa_rule.judge("dk", torch.full((8,), 2e-4), ref, low, "bfloat16")
    assert not v.ok and v.bound == fa_rule.ZERO_REF_ATOL


def test_rat_one_chunk_dq_dk_are_judged_against_zero():
    """chunk_size = T (the RNN): the float64 reference's dq and dk are exactly 0 (a softmax over one logit)."""
    from ratbench import impls

    res = fa_rule.check(impls.get("rat/triton"), _case("rat/triton", "train", "float32", chunk_size=32))
    by = {t.name: t for t in res.tensors}
    assert res.ok, res.tensors
    assert by["dq"].bound == by["dk"].bound == fa_rule.ZERO_REF_ATOL and by["dv"].measure == "rel_l2"


def test_not_finite_fails_even_within_the_bound():
    x, ref = _pair(0.0)
    x[0] = float("nan")
    v = fa_rule.judge("o", x, ref, ref + 1.0, "bfloat16")
    assert not v.finite and not v.ok
    assert not fa_rule.judge("o", x, ref, None, "float32").ok


# ----- real kernels (TRITON_INTERPRET=1, tests/conftest.py) ------------------------------------------
def _case(impl: str, mode: str, dtype: str, **kw) -> Case:
    base = {"impl": impl, "mode": mode, "batch": 1, "seq_len": 32, "heads": 1, "head_dim": 32, "dtype": dtype,
            "device": "cpu"}
    if impl.startswith("rat/"):
        base["chunk_size"] = 16
    base.update(kw)
    return Case(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_rat_triton_passes_in_train(dtype):
    from ratbench import impls

    res = fa_rule.check(impls.get("rat/triton"), _case("rat/triton", "train", dtype))
    assert [t.name for t in res.tensors] == ["o", "dq", "dk", "dv", "df"]
    assert res.ok, res.tensors
    if dtype == "float16":  # judged against the fp16 reference's own error, which is not zero
        assert all(t.measure == "max_abs" and t.low_err > 0 for t in res.tensors)


@pytest.mark.parametrize("impl,mode,kw", [("full/triton", "train", {}), ("swa/triton", "prefill", {"window": 8}),
                                          ("rat/triton", "decode", {}), ("linear/triton", "train", {"decay": True, "head_dim": 64})])
def test_triton_kernels_pass_fp32(impl, mode, kw):
    from ratbench import impls

    res = fa_rule.check(impls.get(impl), _case(impl, mode, "float32", **kw))
    assert res.ok, res.tensors
    assert res.tensors[0].name == "o" and res.tensors[0].measure == "rel_l2"


class GradWrongFull(FullReference):
    """test-only: the right output, a gradient of k scaled by 1.01 (the output alone would pass)."""

    description = "test-only: dk off by 1%"
    is_reference = False

    def _forward(self, q, k, v, *, causal, scale):
        return super()._forward(q, _ScaleGrad.apply(k), v, causal=causal, scale=scale)


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * 1.01


def test_a_wrong_gradient_alone_is_caught_and_named():
    c = _case("full/test-gradwrong", "train", "float32")
    res = fa_rule.check(GradWrongFull(), c)
    assert not res.ok
    assert {t.name: t.ok for t in res.tensors} == {"o": True, "dq": True, "dk": False, "dv": True}
    assert "dk: rel_l2" in res.detail(c)


@pytest.fixture
def fakes():
    with bench_fakes.registered() as names:
        yield names


def test_runner_records_wrong_with_per_tensor_errors(tmp_path, fakes):
    spec = SweepSpec(impls=["full/test-wrong", "full/triton", "full/reference"], modes=["train", "prefill"],
                     seq_lens=[32], heads=[1], head_dims=[32], batches=[1], tokens=None, dtype="float32",
                     device="cpu", repeats=2, min_repeats=1, warmup=1, case_budget_s=0.01,
                     accuracy_rule="fa-rule")
    r, cases, done = runner.start(spec, tmp_path, command="pytest", measure_ceilings=False)
    rows = {(x.impl, x.mode): x for x in r.run(cases, skip=done)}
    w = rows["full/test-wrong", "train"]
    assert w.status == "wrong" and w.ms_median is None and w.accuracy == "wrong"
    t = w.details["tensors"]
    assert w.details["accuracy_rule"] == "fa-rule" and list(t) == ["o", "dq", "dk", "dv"]
    assert not t["o"]["ok"] and t["o"]["measure"] == "rel_l2" and t["o"]["err"] == pytest.approx(0.1, rel=1e-3)
    assert "FlashAttention rule" in w.reason
    assert rows["full/test-wrong", "prefill"].status == "wrong"
    ok = rows["full/triton", "train"]
    assert ok.status == "ok" and ok.accuracy == "pass" and all(v["ok"] for v in ok.details["tensors"].values())
    assert ok.ms_median is not None
    assert rows["full/reference", "train"].accuracy == "unchecked"
    # the row schema on disk: details survive the results file
    on_disk = {x["key"]: x for x in read_rows(tmp_path)}
    assert on_disk[w.key]["details"]["tensors"]["o"]["ok"] is False
    assert json.loads((tmp_path / "run.json").read_text())["spec"]["accuracy_rule"] == "fa-rule"


# ----- the CLI and the presets ----------------------------------------------------------------------
def _cli(args, **kw):
    return subprocess.run([sys.executable, str(ROOT / "run_bench.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, check=False, **kw)


def test_cli_fa_rule_wrong_exits_3_with_details(tmp_path):
    out = tmp_path / "run"
    p = _cli(["--register", "full/test-wrong=bench_fakes:WrongFull", "--impl", "full/test-wrong", "--mode", "train",
              "--seq-len", "32", "--batch", "1", "--heads", "1", "--head-dim", "16", "--device", "cpu",
              "--threads", "1", "--accuracy", "fa-rule", "--no-figures", "--no-progress", "--out", str(out)],
             env={**__import__("os").environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"})
    assert p.returncode == 3, p.stderr
    df = load(out)
    assert list(df.status) == ["wrong"]
    assert df.details.iloc[0]["tensors"]["o"]["ok"] is False


@pytest.mark.parametrize("args,msg", [
    (["--accuracy", "exact"], "invalid choice: 'exact'"),
    (["--accuracy", "fa-rule", "--no-check"], "--accuracy fa-rule and --no-check exclude each other"),
])
def test_cli_bad_accuracy_is_one_line_exit_2(tmp_path, args, msg):
    p = _cli([*args, "--impl", "full/reference", "--seq-len", "32", "--device", "cpu", "--out", str(tmp_path / "x")])
    assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "x").exists()


def test_cli_preset_names_match_the_table():
    from ratbench.bench import cli as run_bench

    assert tuple(run_bench.PRESET_NAMES) == PRESETS


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_check_triton_preset_checks_every_triton_kernel_by_the_fa_rule(device):
    from ratbench import impls

    spec = preset("check-triton", device)
    assert spec.accuracy_rule == "fa-rule" and spec.check_accuracy
    cases = expand(spec)
    assert {c.impl for c in cases} == set(impls.match("*/triton")) and len(impls.match("*/triton")) >= 4
    assert {c.mode for c in cases} == {"train", "prefill", "decode"}
    if device == "cuda":  # the shapes the scripts checked: B = 1, H = 4, T up to 4k, D 64 and 128, bf16
        assert {c.batch for c in cases} == {1} and {c.heads for c in cases} == {4}
        assert {c.seq_len for c in cases} == {1000, 2048, 4096} and {c.head_dim for c in cases} == {64, 128}
        assert {c.dtype for c in cases} == {"bfloat16"}
        assert {c.chunk_size for c in cases if c.family == "rat"} == {1, 16, 64}
        assert {c.window for c in cases if c.family == "swa"} == {100, 1024}


@pytest.mark.parametrize("name", ["rat-triton", "full-swa-triton", "linear-triton", "peers", "layers"])
def test_script_presets_expand(name):
    for device in ("cpu", "cuda"):
        spec = preset(name, device)
        assert spec.accuracy_rule == "tolerance"
        assert expand(spec)
