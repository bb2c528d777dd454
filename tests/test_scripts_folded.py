"""Issue 15 item 5 / issue 16 item 4: the per-kernel check-then-time scripts are folded into the harness
(``--accuracy fa-rule``, the presets), the profiling globals of rat/triton are gone (``run_bench.py profile``
replaces them), scripts/ keeps thin drivers, and the product never imports experiments/."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("impls", "bench", "models", "run_bench.py")


@pytest.mark.parametrize("name", ["STAGE_EVENTS", "LAUNCHES", "_stage", "_launch"])
def test_rat_triton_has_no_module_level_profiling_hooks(name):
    import ratbench.impls.rat.triton as RT

    assert not hasattr(RT, name)


def test_no_module_level_mutable_profiling_hooks_in_impls():
    for path in (ROOT / "impls").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            targets = [t.id for n in [node] if isinstance(n, (ast.Assign, ast.AnnAssign))
                       for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)]
            assert not {"STAGE_EVENTS", "LAUNCHES"} & set(targets), path


def test_scripts_are_thin():
    files = [p for p in (ROOT / "scripts").iterdir() if p.is_file()]
    total = sum(len(p.read_text().splitlines()) for p in files)
    assert total < 1000, total
    removed = ["_gpu_common.py", "gpu_rat_triton.py", "gpu_full_swa_triton.py", "gpu_linear_triton.py", "gpu_peers.py",
               "gpu_layers.py", "sass_rat_triton.py", "sass_full_swa_triton.py", "sass_linear_triton.py",
               "gpu_linear_prefill.py", "gpu_rat_long_chunk.py"]
    assert not [n for n in removed if (ROOT / "scripts" / n).exists()]


def test_the_product_never_imports_experiments():
    for top in PRODUCT:
        paths = [ROOT / top] if top.endswith(".py") else list((ROOT / top).rglob("*.py"))
        for path in paths:
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not [n for n in names if n.split(".")[0] in ("experiments", "rat_experiments")], path


def test_every_experiment_has_a_status_line():
    studies = [p for p in (ROOT / "experiments").iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    assert studies
    for d in studies:
        first = (d / "README.md").read_text().splitlines()[0]
        assert first.startswith("Status: "), d


def test_ab_helper_times_every_variant_once_per_round_and_takes_the_median(monkeypatch, tmp_path):
    """experiments/_ab.py, shared by the A/B study scripts: rounds interleave the variants (a drifting clock hits all
    alike), the median is the middle round, and each finished row is appended to the result file at once."""
    import json

    monkeypatch.syspath_prepend(str(ROOT))
    from experiments._ab import interleaved, median, record, time_into

    calls = []

    def bench(fn, **kw):
        calls.append((fn(), kw))
        return float(len(calls))

    ms = interleaved({"a": lambda: "a", "b": lambda: "b"}, rounds=3, bench=bench, rep=7)
    assert [c for c, _ in calls] == ["a", "b"] * 3 and all(kw == {"rep": 7} for _, kw in calls)
    assert ms == {"a": [1.0, 3.0, 5.0], "b": [2.0, 4.0, 6.0]}
    assert median([5.0, 1.0, 3.0]) == 3.0 and median([4.0, 1.0]) == 4.0
    calls.clear()
    row = {"T": 1}
    time_into(row, {"a": lambda: "a", "b": lambda: "b"}, 3, bench=bench, rep=5)
    assert row == {"T": 1, "a_ms": 3.0, "a_all": [1.0, 3.0, 5.0], "b_ms": 4.0, "b_all": [2.0, 4.0, 6.0]}
    assert all(kw == {"rep": 5} for _, kw in calls)
    res = {"rows": []}
    path = tmp_path / "ab.json"
    record(res, {"T": 1, "x_ms": 1.23456}, path)
    assert json.loads(path.read_text())["rows"] == [{"T": 1, "x_ms": 1.23456}]
    record(res, {"T": 2, "x_ms": 2.0, "k_kernels_ms": {}}, path, hide=("_kernels_ms",))
    assert json.loads(path.read_text())["rows"][1] == {"T": 2, "x_ms": 2.0, "k_kernels_ms": {}}


def test_ab_steps_reset_the_prefill_and_clear_the_gradients(monkeypatch):
    """experiments/_ab.py's prefill_step resets the state's position and runs without autograd; train_step clears the
    gradients before each step (so a timed step's gradients are its own, not accumulated)."""
    monkeypatch.syspath_prepend(str(ROOT))
    from experiments._ab import prefill_step, train_step

    class Impl:
        def prefill(self, state, *x):
            state.pos += x[0].shape[1]
            return x[0] * 2 if torch.is_grad_enabled() else x[0] * 3

        def forward(self, *xs, chunk_size):
            return sum(x * chunk_size for x in xs)

    class State:
        pos = 0

    state = State()
    fn = prefill_step(Impl(), state, [torch.ones(1, 5)])
    for _ in range(2):
        assert torch.equal(fn(), torch.full((1, 5), 3.0)) and state.pos == 5
    xs = [torch.ones(3, requires_grad=True) for _ in range(2)]
    step = train_step(Impl(), xs, torch.ones(3), 4)
    step()
    step()
    assert all(torch.equal(x.grad, torch.full((3,), 4.0)) for x in xs)


def test_ab_inputs_are_the_draws_the_committed_runs_used(monkeypatch):
    """experiments/_ab.py's rat_inputs draws q, k, v, f, dO in the order the A/B scripts drew them by hand before it
    (so their committed result files keep their inputs): bf16, f in (0, 1), the same seed the same tensors."""
    monkeypatch.syspath_prepend(str(ROOT))
    from experiments._ab import rat_inputs

    xs, do = rat_inputs(2, 8, 3, 4, device="cpu")
    g = torch.Generator().manual_seed(0)
    want = [torch.randn(2, 8, 3, 4, generator=g).bfloat16() for _ in range(3)]
    want.append(torch.sigmoid(torch.randn(2, 8, 3, 4, generator=g) + 2.0).bfloat16())
    want.append(torch.randn(2, 8, 3, 4, generator=g).bfloat16())
    assert all(torch.equal(a, b) for a, b in zip([*xs, do], want)) and len(xs) == 4
    assert all(x.dtype == torch.bfloat16 for x in xs) and bool(((xs[3] > 0) & (xs[3] < 1)).all())
    assert not torch.equal(rat_inputs(2, 8, 3, 4, seed=1, device="cpu")[1], do)


@pytest.mark.parametrize("path", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "experiments").glob("rat-gluon-*/*.py")))
def test_gpu_study_scripts_import_on_the_cpu(path, monkeypatch):
    """The GPU study scripts cannot run here, but each must import (its main is not run): a helper or module they
    name that moved shows up on the CPU, not on the next device call."""
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT))
    spec = importlib.util.spec_from_file_location("study_" + Path(path).stem, ROOT / path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert callable(getattr(mod, "main", None)), path


def test_sass_loop_model_follows_dependencies_and_the_mufu(monkeypatch):
    """experiments/rat-gluon-next/sass_loops.py's in-order issue model: a result is used once its latency has passed,
    MUFU instructions wait for the unit (MUFU_CLOCKS apart); the loop is found from its backward branch."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("sass_loops", ROOT / "experiments/rat-gluon-next/sass_loops.py")
    sl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sl)
    sass = """
        /*0000*/                   FFMA R1, R2, R3, R4 ;          /* 0x0 */
        /*0010*/                   FADD R5, R1, R6 ;              /* 0x0 */
        /*0020*/                   MUFU.EX2 R7, R8 ;              /* 0x0 */
        /*0030*/                   MUFU.EX2 R9, R5 ;              /* 0x0 */
        /*0040*/              @P0 BRA 0x0 ;                       /* 0x0 */
        /*0050*/                   EXIT ;                         /* 0x0 */
"""
    body = [t for _, t in sl.instructions(sass)][:5]
    # FFMA at 0 (R1 at 5), FADD at 5 (R5 at 10), MUFU at 6 (unit busy to 14), MUFU at 14 (R9 at 32), BRA at 15
    assert sl.issue_clocks(body) == 14 + sl.LATENCY["MUFU"] == 32
    assert sl.issue_clocks(body[:2]) == 10
    loops = sl.softmax_loops(sass, min_mufu=2)
    assert loops == [{"instructions": 5, "MUFU": 2, "FSEL": 0, "spill_ops": 0, "issue_clocks": 32}]
    assert sl.softmax_loops(sass, min_mufu=3) == []
