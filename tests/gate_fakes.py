"""Test-only implementations for the regression gate (tests/bench/test_gate.py and .ci/run).

``WorkFull`` computes causal full attention with the reference's math ``REPEATS`` times per call (the
last result is returned, so it is correct), each repetition followed by a 10 ms sleep;
``SlowedWorkFull`` does all of it 1.5x as often: a known slowdown of the kind a code change makes.
The sleep makes up most of a call on purpose: CI machines and shared boxes are loaded by other
processes, and a call that is mostly computation is slowed by them several-fold at random (seen here:
1 ms calls taking 190 ms under a load of 4.6 on 2 cores), while a sleep ends on time. Registered under the
same name in two runs (``--register full/test-gate=gate_fakes:WorkFull`` for the baseline, then
``...:SlowedWorkFull`` for the change), the gate sees one case whose code got 1.5x slower.
"""
from __future__ import annotations

import time

from ratbench.impls.full.reference import FullReference

SLEEP_S = 0.010


class WorkFull(FullReference):
    description = "test-only: the reference's full attention + a 10 ms sleep, 2 times per call"
    is_reference = False
    REPEATS = 2

    def _forward(self, q, k, v, *, causal, scale):
        out = None
        for _ in range(self.REPEATS):
            out = super()._forward(q, k, v, causal=causal, scale=scale)
            time.sleep(SLEEP_S)
        return out


class SlowedWorkFull(WorkFull):
    description = "test-only: the same, computed 3 times per call (1.5x the work)"
    REPEATS = 3


NAME = "full/test-gate"
