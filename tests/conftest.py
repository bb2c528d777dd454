"""Tests run on the CPU. Triton kernels run in Triton's interpreter: TRITON_INTERPRET must be set
before any kernel is defined, so it is set here, before the test modules import anything."""
import os
import sys

os.environ.setdefault("TRITON_INTERPRET", "1")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.dirname(os.path.abspath(__file__))
for p in (ROOT, TESTS):
    if p not in sys.path:
        sys.path.insert(0, p)
