"""scripts/gpu_layers.py --smoke: every code path of the GPU layer script (now a thin caller of models.checks,
bench.levels' layer cost and models.throughput) at toy sizes on the CPU."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_layers_smoke(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "scripts/gpu_layers.py", "--smoke", "--budget-s", "300"], check=False,
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_layers.json").read_text())
    assert res["checks"] and all(c["ok"] for c in res["checks"])
    assert {r["kind"] for r in res["layer"]} == {"attention", "rat"}
    assert all(r["train_ms"] and r["train_tflops"] > 0 for r in res["layer"])
    models = {r["mixer"]: r for r in res["model"]}
    assert set(models) == {"attention", "rat", "rat-swa", "attention-swa"}
    assert all(r["tokens_per_s"] > 0 and r["cache_gib"] > 0 for r in models.values())
    assert "layer speed-up" in p.stdout
