"""The GPU scripts run end to end on the CPU with --dry-run (Triton interpreter, tiny shapes), so that a
script bug is found here and not after minutes of device time (one such crash lost the decode part of an
H200 run on 2026-11-29). Each runs in its own process: the scripts set TRITON_INTERPRET themselves."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["gpu_rat_triton.py", "gpu_rat_long_chunk.py", "gpu_full_swa_triton.py", "gpu_linear_triton.py",
           "gpu_linear_prefill.py", "gpu_rat_overlap.py", "gpu_rat_step_tune.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_gpu_script_dry_run(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path)}
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--dry-run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    assert any(tmp_path.iterdir()), "the script wrote nothing under $OUT"
