"""Compiled layer cases on the CPU (`--level layer --compile yes --device cpu`): torch.compile there is inductor's
C++ code, which depends on the CPU and the shape (issue 14), and the layer check at a small shape runs the
layer eagerly. So before such a case is timed, its compiled layer is compared with the same layer run eagerly
at the case's own shape: a miscompiled layer is recorded `wrong` and never timed."""
from __future__ import annotations

import pytest
import torch

from ratbench.bench import runner
from ratbench.bench.results import load
from ratbench.bench.sweep import SweepSpec

_BASE = {"impls": ["full/sdpa-math"], "levels": ["layer"], "kinds": ["attention"], "modes": ["prefill"],
         "compile": [True], "seq_lens": [40], "heads": [2], "head_dims": [8], "batches": [2], "tokens": None,
         "dtype": "float32", "device": "cpu", "repeats": 2, "min_repeats": 2, "warmup": 1, "case_budget_s": 0.01,
         "max_call_s": 60.0}


def _spec(**kw):
    return SweepSpec(**{**_BASE, **kw})


def _run(tmp_path, **kw):
    r, cases, done = runner.start(_spec(**kw), tmp_path, command="pytest", measure_ceilings=False)
    r.run(cases, skip=done)
    return load(tmp_path)


def _miscompiling(fn, *args, **kwargs):
    """A torch.compile whose code computes something else (what a bad CPU's inductor code did to flex)."""
    def wrong(*a, **k):
        out = fn(*a, **k)
        return out * 1.5 if isinstance(out, torch.Tensor) else out

    return wrong


@pytest.mark.parametrize("mode", ["train", "prefill"])
def test_miscompiled_cpu_layer_is_wrong_not_timed(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(torch, "compile", _miscompiling)
    df = _run(tmp_path, modes=[mode])
    assert len(df) == 1
    row = df.iloc[0]
    assert row.status == "wrong" and row.accuracy == "wrong", (row.status, row.reason)
    assert "compiled layer vs the same layer eager" in row.reason
    assert row.ms_median is None or row.ms_median != row.ms_median  # never timed (None / NaN)


def test_compiled_cpu_layer_passes_its_check(tmp_path):
    """Real inductor on this CPU: the compiled layer matches the eager one at the timed shape, and the row
    carries that check."""
    df = _run(tmp_path)
    row = df.iloc[0]
    assert row.status == "ok" and row.accuracy == "pass", row.reason
    chk = row.details["compiled_check"]
    assert chk["rel_err"] <= chk["tol"] and chk["rel_err_grad"] is None
