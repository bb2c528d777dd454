"""Test-only implementations for the regression gate (tests/test_gate.py and .ci/run).

``WorkFull`` computes causal full attention with the reference's math ``REPEATS`` times per call (the
last result is returned, so it is correct); ``SlowedWorkFull`` does the same work 1.5x as often: a
real, known slowdown of the kind a code change makes (more work, not a sleep). Registered under the
same name in two runs (``--register full/test-gate=gate_fakes:WorkFull`` for the baseline, then
``...:SlowedWorkFull`` for the change), the gate sees one case whose code got 1.5x slower.
"""
from __future__ import annotations

from impls.full.reference import FullReference


class WorkFull(FullReference):
    description = "test-only: the reference's full attention, computed 2 times per call"
    is_reference = False
    REPEATS = 2

    def _forward(self, q, k, v, *, causal, scale):
        out = None
        for _ in range(self.REPEATS):
            out = super()._forward(q, k, v, causal=causal, scale=scale)
        return out


class SlowedWorkFull(WorkFull):
    description = "test-only: the same, computed 3 times per call (1.5x the work)"
    REPEATS = 3


NAME = "full/test-gate"
