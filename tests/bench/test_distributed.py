"""torchrun sharding (bench/distributed.py) on the CPU: two gloo ranks, a rank that dies, resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ratbench.bench import cli as run_bench
from ratbench.bench.distributed import DIE_AFTER_ENV, TIMEOUT_ENV, merge_rank_files, rank_path, shard
from ratbench.bench.results import RESULTS, read_rows
from ratbench.bench.sweep import Case

ROOT = Path(__file__).resolve().parents[2]

SWEEP = ["--preset", "smoke", "--impl", "full/reference,swa/reference,full/sdpa-math", "--mode", "train,prefill",
         "--seq-len", "32,64", "--heads", "1", "--head-dim", "16", "--device", "cpu", "--repeats", "3",
         "--threads", "1", "--no-progress", "--no-figures"]


def _case(impl: str, T: int, mode: str = "train", B: int = 1) -> Case:
    return Case(impl=impl, mode=mode, batch=B, seq_len=T, heads=1, head_dim=16, dtype="float32", device="cpu")


def test_shard_is_lpt_over_series_in_sweep_order():
    cases = [_case(i, T) for T in (64, 128, 256) for i in ("a/x", "b/x", "c/x", "d/x")]
    # series weights: a 12, b 6, c 5, d 3 (per case: 4, 2, 5/3, 1)
    w = {c.key: {"a/x": 4.0, "b/x": 2.0, "c/x": 5 / 3, "d/x": 1.0}[c.impl] for c in cases}
    parts = shard(cases, w, 2)
    assert sorted(c.key for p in parts for c in p) == sorted(c.key for c in cases)  # each case exactly once
    impls_of = [{c.impl for c in p} for p in parts]
    assert impls_of == [{"a/x"}, {"b/x", "c/x", "d/x"}]  # LPT: a (12) | b+c+d (14); no series is split
    for p in parts:  # the sweep's order within a rank (shorter sequences first, for the max_call_s skip)
        assert [cases.index(c) for c in p] == sorted(cases.index(c) for c in p)
    assert [len(p) for p in shard(cases, w, 1)] == [12]


def test_shard_splits_series_when_there_are_fewer_than_ranks():
    cases = [_case("a/x", T) for T in (64, 128, 256, 512)]
    w = {c.key: float(c.seq_len) for c in cases}
    parts = shard(cases, w, 3)
    assert sorted(len(p) for p in parts) == [1, 1, 2]
    assert [c.seq_len for c in parts[0]] == [512]  # heaviest case first, to rank 0
    with pytest.raises(ValueError, match="world_size"):
        shard(cases, w, 0)


def test_merge_is_idempotent_and_skips_partial_lines(tmp_path):
    (tmp_path / RESULTS).write_text('{"key": "a", "started_at": "1"}\n')
    rank_path(tmp_path, 0).write_text('{"key": "a", "started_at": "1"}\n{"key": "c", "started_at": "3"}\n')
    rank_path(tmp_path, 1).write_text('{"key": "b", "started_at": "2"}\n{"key": "d", "star')  # killed mid-write
    assert merge_rank_files(tmp_path) == 2
    assert [r["key"] for r in read_rows(tmp_path)] == ["a", "b", "c"]
    assert merge_rank_files(tmp_path) == 0
    assert [r["key"] for r in read_rows(tmp_path)] == ["a", "b", "c"]


def _torchrun(args: list[str], **env: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "run_bench.py", *args]
    return subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=150,
                          env={**os.environ, TIMEOUT_ENV: "120", **env})


def test_two_gloo_ranks_match_one_process_and_a_dead_rank_is_resumed(tmp_path):
    one = tmp_path / "one"
    assert run_bench.main([*SWEEP, "--out", str(one)]) == 0
    want = {r["key"] for r in read_rows(one)}
    assert len(want) == 12

    two = tmp_path / "two"
    p = _torchrun([*SWEEP, "--out", str(two)])
    assert p.returncode == 0, p.stderr[-3000:]
    rows = read_rows(two)
    assert sorted(r["key"] for r in rows) == sorted(want)  # each case once, the same cases
    assert {r["rank"] for r in rows} == {0, 1} and {r["status"] for r in rows} == {"ok"}
    assert (two / "report.md").exists()
    meta = json.loads((two / "run.json").read_text())
    # every rank's rows name the session of the launch (rank 0's provenance), not none
    assert {r["run_id"] for r in rows} == {meta["sessions"][-1]["run_id"]}
    assert [s["n_cases"] for s in meta["distributed"][0]["shards"]] == [6, 6]
    for ident in meta["distributed"][0]["ranks"]:  # NVLink multicast stays off in every rank
        assert ident["env"] == {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                                "NVSHMEM_DISABLE_NVLS": "1"}

    # rank 1 dies after one case: torchrun fails; the rows written so far survive, nothing is complete
    dead = tmp_path / "dead"
    p = _torchrun([*SWEEP, "--out", str(dead)], **{DIE_AFTER_ENV: "1:1"})
    assert p.returncode != 0
    assert len(read_rows(rank_path(dead, 1))) == 1
    have = {r["key"] for f in (dead / RESULTS, rank_path(dead, 0), rank_path(dead, 1)) if f.exists()
            for r in read_rows(f)}
    assert have < want and len(want - have) >= 5  # rank 1's other five cases at least
    # resume under torchrun merges the leftovers and runs only the missing cases, dealt out again
    p = _torchrun(["resume", str(dead), "--no-progress", "--no-figures"])
    assert p.returncode == 0, p.stderr[-3000:]
    rows = read_rows(dead)
    assert sorted(r["key"] for r in rows) == sorted(want)
    assert len(json.loads((dead / "run.json").read_text())["distributed"]) == 2
