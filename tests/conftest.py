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
for p in (ROOT, TESTS):
    if p not in sys.path:
        sys.path.insert(0, p)
