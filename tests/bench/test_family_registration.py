"""A family declared outside the package (tests/fake_family.py) runs through the harness like a built-in one:
registered with impls.register_family / --register, swept (its own parameter via --param), checked against
its own reference, costed by its own model, refused by its own rules, reported and resumed."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from ratbench import impls
from ratbench.bench import cli as run_bench
from ratbench.bench import exit_codes
from ratbench.bench.results import load
from ratbench.bench.sweep import Case, SweepSpec, expand

ROOT = Path(__file__).resolve().parents[2]
TOY_IMPLS = {"toy/reference": "fake_family:ToyReference", "toy/sdpa": "fake_family:ToySDPA",
             "toy/nosharp": "fake_family:ToyNoSharpness"}


def _forget_toy() -> None:
    for name in TOY_IMPLS:
        impls.unregister(name)
    from ratbench.impls.spec import unregister_family

    unregister_family("toy")
    sys.modules.pop("fake_family", None)


@pytest.fixture
def toy():
    """The toy family and its three implementations, registered through the public API only."""
    _forget_toy()
    import fake_family

    for name, target in TOY_IMPLS.items():
        impls.register(name, target)
    yield fake_family
    _forget_toy()


def _argv(out: Path, *extra: str) -> list[str]:
    return ["--impl", "toy/*,full/reference", "--param", "sharpness=0,1,2", "--seq-len", "32,64,128",
            "--mode", "train,prefill,decode", "--batch", "1", "--heads", "2", "--head-dim", "16", "--device", "cpu",
            "--threads", "1", "--repeats", "3", "--min-repeats", "2", "--budget", "0.02", "--no-progress",
            "--no-figures", "--out", str(out), *extra]


def test_a_family_from_outside_runs_a_cpu_sweep(toy, tmp_path):
    assert "toy" in impls.families() and impls.family("toy") is toy.SPEC
    out = tmp_path / "run"
    assert run_bench.main(_argv(out)) == exit_codes.FAILED  # toy/nosharp is wrong at sharpness 2 (below)
    df = load(out)
    rows = df[df.family == "toy"].set_index("key")
    want = {f"{impl}|{mode}|op|B1|T{T}|H2|D16|L-|W-|decay-|float32|cpu|sharpness={s}"
            for impl in TOY_IMPLS for mode in ("train", "prefill", "decode") for T in (32, 64, 128) for s in (0, 1, 2)}
    assert set(rows.index) == want
    assert len(df) == len(want) + 9  # + full/reference: 3 modes x 3 lengths
    # the family's own refusals, in its words
    for key, r in rows.iterrows():
        if "|decode|" in key:
            assert (r.status, r.reason) == ("unsupported", "the toy family has no decode mode (it has train, prefill)")
        elif key.endswith("sharpness=0"):
            assert (r.status, r.reason) == ("unsupported", "sharpness must be >= 1, got 0")
        elif "|T128|" in key:
            assert (r.status, r.reason) == ("unsupported", "the toy family stops at seq_len 96, got 128")
        elif key.startswith("toy/nosharp") and key.endswith("sharpness=2"):
            assert (r.status, r.accuracy) == ("wrong", "wrong"), key  # its reference and its parameter caught it
            assert "differs from toy/reference" in r.reason
        else:
            assert r.status == "ok", (key, r.reason)
            assert r.accuracy == ("unchecked" if key.startswith("toy/reference") else "pass")
            assert r.flops == toy.toy_cost(Case.from_dict(r.to_dict() | {"key": key})).flops > 0
            assert r.label.endswith(f"(sharpness={key[-1]})") and r.family_params == f"sharpness={key[-1]}"
    # rows give back their cases (gate and resume rebuild cases from rows)
    for key, r in rows.iterrows():
        assert Case.from_dict(r.to_dict()).key == key
    md = (out / "report.md").read_text()
    for label in ("toy/sdpa (sharpness=1)", "toy/sdpa (sharpness=2)", "toy/reference (sharpness=2)"):
        assert f"`{label}`" in md
    # resume finds every case done: keys are stable across the results file
    assert run_bench.main(["resume", str(out), "--no-progress", "--no-figures"]) == exit_codes.FAILED
    assert len(load(out)) == len(df)
    # the report regenerates from the results file, the toy family's reference as the baseline
    assert run_bench.main(["report", str(out / "results.jsonl"), "--baseline", "toy/reference",
                           "--out", str(tmp_path / "rep"), "--no-figures"]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "speed-ups are over `toy/reference`" in md and "`toy/sdpa (sharpness=2)`" in md


def test_register_on_the_command_line_imports_the_family(tmp_path, capsys):
    _forget_toy()
    try:
        argv = ["--register", "toy/sdpa=fake_family:ToySDPA", "--register", "toy/reference=fake_family:ToyReference",
                "--impl", "toy/sdpa", "--param", "sharpness=3", "--mode", "train", "--seq-len", "32", "--batch", "2",
                "--heads", "1", "--head-dim", "8", "--device", "cpu", "--dry-run"]
        assert run_bench.main(argv) == 0
        assert capsys.readouterr().out.splitlines()[-1] == "toy/sdpa|train|op|B2|T32|H1|D8|L-|W-|decay-|float32|cpu|sharpness=3"
    finally:
        _forget_toy()


def test_sweep_expands_the_family_parameter_from_its_declaration(toy):
    spec = SweepSpec(impls=["toy/sdpa"], modes=["train"], seq_lens=[32], heads=[1], head_dims=[8], batches=[1])
    assert [c.params for c in expand(spec)] == [{"sharpness": 1}]  # the declared default
    spec.family_params = {"sharpness": [2, 3]}
    assert [c.family_params for c in expand(spec)] == [(("sharpness", 2),), (("sharpness", 3),)]


def test_family_errors(toy, tmp_path, capsys):
    with pytest.raises(ValueError, match="registered twice"):
        impls.register_family(toy.SPEC)
    with pytest.raises(ValueError, match="registered family"):
        impls.register("nofamily/x", "fake_family:ToySDPA")
    with pytest.raises(impls.UnknownFamilyError):
        impls.family("nofamily")
    with pytest.raises(ValueError, match="module:function"):
        impls.FamilySpec(name="bad", forward=lambda impl, x, p: x["q"], cost="no_colon")
    assert run_bench.main(_argv(tmp_path / "x", "--param", "nosuch=1")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("run_bench.py: error: argument --param: no registered family")
    assert run_bench.main(_argv(tmp_path / "y", "--param", "sharpness=soft")) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_bench_does_not_branch_on_family_names():
    """Family knowledge lives in the declarations (impls/<family>/spec.py), not in if-chains in bench/ (but for
    bench/paper.py, whose tables are the paper's named mixers)."""
    pattern = re.compile(r"""family\s*(==|!=|in)\s*[("'\[]|\.family\s*==|kind\s*==\s*["'](rat|swa|linear)""")
    hits = [f"{p.name}:{i}: {line.strip()}" for p in sorted((ROOT / "bench").glob("*.py")) if p.name != "paper.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []
