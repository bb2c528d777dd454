"""Device metadata and NVML degrade gracefully on a machine without a GPU driver."""
from __future__ import annotations

import torch

from ratbench.bench import device as D
from ratbench.bench import provenance as P


def test_describe_cpu_and_git():
    info = D.describe("cpu")
    assert info.device == "cpu" and info.torch == torch.__version__ and info.python.count(".") == 2
    assert info.nvml == {} and info.torch_threads >= 1
    rev = P.git_revision()
    assert len(rev.split("+")[0]) == 40 or rev.startswith("unknown (")


def test_git_revision_from_the_environment_only_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_GIT_REV", "0123abc")
    assert P.git_revision(str(tmp_path)) == "0123abc"  # a tree without .git (tests/bench/test_provenance.py: the rest)


def test_nvml_absent_is_not_an_error():
    nv = D.Nvml.open(0)  # no driver here: None (nvmlInit raises NVMLError_LibraryNotFound), never an exception
    if not torch.cuda.is_available():
        assert nv is None
    with D.NvmlSampler(None) as s:
        pass
    assert s.summary() == {}


def test_throttle_reason_names():
    assert D.throttle_names(0) == []
    assert D.throttle_names(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]


def test_cpu_ceilings_are_measured():
    c = D.measure_ceilings("cpu")
    assert c.matmul_tflops > 0 and c.copy_gbps > 0 and c.matmul_dtype == "float32"
