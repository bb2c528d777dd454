"""The README's "Benchmark your own attention" snippet, run verbatim (bench/api.py), and the API's refusals."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ratbench.bench import api
from ratbench.bench.sweep import SweepError

ROOT = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Benchmark your own attention", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_snippet_runs_verbatim(tmp_path):
    code = readme_snippet()
    assert len(code.strip().splitlines()) <= 14, "the snippet is meant to be about ten lines"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "mine"
    from ratbench.bench.results import load

    df = load(run)
    assert set(df.impl) == {"full/mine", "full/sdpa-math", "full/reference"}
    assert len(df) == 3 * 3 * 2 and set(df.status) == {"ok"}, df[["impl", "mode", "status", "reason"]]
    mine = df[df.impl == "full/mine"]
    assert (mine.ms_median > 0).all() and mine.max_abs_err.notna().all()
    report = (run / "report.md").read_text()
    assert "full/mine" in report and "runs/mine/report.md" in proc.stdout


def test_a_wrong_callable_is_reported_wrong_not_timed(tmp_path):
    def off_by_a_bit(q, k, v, *, causal, scale):
        import torch.nn.functional as F

        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=causal, scale=scale)
        return o.transpose(1, 2) * 1.01

    api.register_callable("full/test-api-wrong", off_by_a_bit)
    try:
        res = api.sweep(impls="full/test-api-wrong", modes="prefill", seq_lens=64, batches=1, heads=1,
                        head_dims=16, device="cpu", out=tmp_path / "w", report=False)
    finally:
        from ratbench import impls

        impls.unregister("full/test-api-wrong")
    assert list(res.df.status) == ["wrong"] and res.exit_code == 3 and res.report is None


def test_refusals():
    with pytest.raises(ValueError, match="declares no wrapper"):
        api.register_callable("rat/mine", lambda q, k, v, **kw: q)
    with pytest.raises(SweepError, match="unknown sweep field.*seq_len\\b"):
        api.make_spec(device="cpu", seq_len=128)
    spec = api.make_spec(device="cpu", seq_lens="1k..4k", batches=2, modes="train")
    assert spec.seq_lens == [1024, 2048, 4096] and spec.batches == [2] and spec.tokens is None
