"""The CUDA timing path's control flow, with torch.cuda replaced by a stand-in (no GPU in CI): events
around each call, an L2 flush before each, graph replay for decode, and the fallback to eager
timing (with the reason in the row) when capture fails."""
from __future__ import annotations

import contextlib
import time

import pytest
import torch

from ratbench.bench import timing


class FakeEvent:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self):
        self.t = time.perf_counter()

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


class FakeGraph:
    captured = None

    def replay(self):
        FakeGraph.captured()


@pytest.fixture()
def fake_cuda(monkeypatch):
    calls = {"flush": 0, "sync": 0, "capture": 0}
    state = {"fail_capture": False, "fn": None}

    @contextlib.contextmanager
    def graph(g, pool=None):
        calls["capture"] += 1
        if state["fail_capture"]:
            raise RuntimeError("operation not permitted when stream is capturing")
        yield

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.__setitem__("sync", calls["sync"] + 1))
    monkeypatch.setattr(torch.cuda, "Stream", lambda *a, **k: type("S", (), {"wait_stream": lambda self, s: None})())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda *a: type("S", (), {"wait_stream": lambda self, s: None})())
    monkeypatch.setattr(torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "set_stream", lambda s: None)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)
    monkeypatch.setattr(timing._L2Flusher, "flush", classmethod(lambda cls: calls.__setitem__("flush",
                                                                                              calls["flush"] + 1)))
    return calls, state


def test_cuda_events_with_flush(fake_cuda):
    calls, _ = fake_cuda
    n_fn = []
    pol = timing.TimingPolicy(repeats=6, min_repeats=2, warmup=2, budget_s=10.0)
    t = timing.measure(lambda: (n_fn.append(1), time.sleep(0.001)), lambda: None, "cuda", pol)
    assert t.timer == "cuda-events" and t.n == 6 and t.note is None
    assert all(s >= 1.0 for s in t.samples_ms)  # the event pair brackets the call
    assert calls["flush"] == 2 + 6  # before every warm-up and every timed call
    assert len(n_fn) == 1 + 2 + 6


def test_decode_graph_replay_and_fallback(fake_cuda):
    calls, state = fake_cuda
    pos = {"p": 0}
    resets = []

    def step():
        pos["p"] += 1

    def reset():
        resets.append(1)
        pos["p"] = 41

    FakeGraph.captured = step
    pol = timing.TimingPolicy(repeats=4, min_repeats=2, warmup=1, budget_s=10.0)
    t = timing.measure(step, reset, "cuda", pol, graphable=True)
    assert t.timer == "cuda-graph" and calls["capture"] == 1 and t.n == 4
    state["fail_capture"] = True
    t = timing.measure(step, reset, "cuda", pol, graphable=True)
    assert t.timer == "cuda-events" and "capture failed" in t.note and "stream is capturing" in t.note
    # graphs off: no capture attempted
    t = timing.measure(step, reset, "cuda", timing.TimingPolicy(repeats=3, cuda_graph=False), graphable=True)
    assert t.timer == "cuda-events" and calls["capture"] == 2 and t.note is None


def test_budget_sets_the_number_of_calls():
    pol = timing.TimingPolicy(repeats=1000, min_repeats=3, warmup=1, budget_s=0.05)
    t = timing.measure(lambda: time.sleep(0.01), lambda: None, "cpu", pol)
    assert 3 <= t.n <= 6  # about 0.05 s / 0.01 s, never below min_repeats
    t = timing.measure(lambda: time.sleep(0.01), lambda: None, "cpu",
                       timing.TimingPolicy(repeats=100, min_repeats=3, budget_s=0.0))
    assert t.n == 3
