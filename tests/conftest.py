"""Tests run on the CPU. With no CUDA GPU visible, Triton kernels run in Triton's interpreter:
TRITON_INTERPRET must be set before any kernel is defined, so it is set here, before the test modules
import anything. With a GPU visible it is left alone, so that tests/benchmarks (the pytest-benchmark
adapter) times the compiled kernels, not the interpreter; run the CPU suite on such a machine with
CUDA_VISIBLE_DEVICES= (no GPU visible), and tests/benchmarks in a pytest process of its own."""
import os
import sys


def gpu_visible() -> bool:
    """torch sees a CUDA GPU (without one, or without torch: False)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


if not gpu_visible():
    os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
# tests/ mirrors the code (tests/bench, tests/impls/<family>, tests/models); test modules import shared helpers
# from tests/ (loops, bench_fakes, ...) and from each other by basename (basenames are unique across folders)
_TEST_DIRS = [TESTS] + sorted(d for d, _, files in os.walk(TESTS)
                              if d != TESTS and "__pycache__" not in d and "data" not in d.split(os.sep)
                              and any(f.startswith("test_") for f in files))
for p in (ROOT, *_TEST_DIRS):
    if p not in sys.path:
        sys.path.insert(0, p)
