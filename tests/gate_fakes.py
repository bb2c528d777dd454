"""Test-only implementations for the regression gate (tests/bench/test_gate.py and .ci/run).

``WorkFull`` computes causal full attention once with the reference's math (so it is correct), then
sleeps ``REPEATS`` times 20 ms; ``SlowedWorkFull`` sleeps 1.5x as often: a known slowdown of the kind a
code change makes. The sleep makes up nearly all of a call on purpose: CI machines and shared boxes are
loaded by other processes, and a call that is mostly computation is slowed by them several-fold at
random (seen here: 1 ms calls taking 190 ms under a load of 4.6 on 2 cores), while a sleep ends on time.
The computation was once repeated with each sleep (2 x (compute + 10 ms)): CI's A/A check then failed
once, +15.4% at T 256 (27.5 -> 31.8 ms), its few milliseconds of compute 1.6x slower in the second run.
Registered under the same name in two runs (``--register full/test-gate=gate_fakes:WorkFull`` for the baseline, then
``...:SlowedWorkFull`` for the change), the gate sees one case whose code got 1.5x slower.
"""
from __future__ import annotations

import time

from ratbench.impls.full.reference import FullReference

SLEEP_S = 0.020


class WorkFull(FullReference):
    description = "test-only: the reference's full attention, then 2 sleeps of 20 ms"
    is_reference = False
    REPEATS = 2

    def _forward(self, q, k, v, *, causal, scale):
        out = super()._forward(q, k, v, causal=causal, scale=scale)
        for _ in range(self.REPEATS):
            time.sleep(SLEEP_S)
        return out


class SlowedWorkFull(WorkFull):
    description = "test-only: the same with 3 sleeps (1.5x the time)"
    REPEATS = 3


NAME = "full/test-gate"
