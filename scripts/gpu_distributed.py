"""Checks torchrun sharding (bench/distributed.py) on a host with several GPUs (about 4-6 minutes on
2 H200s, mostly Triton compilation and start-up; not run yet: no multi-GPU machine was lent).

1. one process, one GPU: a short sweep (OUT/one);
2. the same sweep under `torchrun --standalone --nproc-per-node=N` (OUT/multi): the merged results must
   have the same case keys and statuses, every rank must have run cases, on a GPU of its own (distinct
   UUIDs in run.json), with NVLink multicast off (NCCL_NVLS_ENABLE=0 ... in every rank's environment);
   the per-case median ratio multi/one shows what running the GPUs side by side costs (shared host CPU,
   power, PCIe): reported, not judged, as ratios of two sessions also carry run-to-run noise;
3. rank 1 killed after 2 cases (RATBENCH_TEST_DIE_AFTER=1:2, os._exit) under torchrun (OUT/dead): the
   other rank's rows survive; `torchrun ... resume` completes exactly the missing cases.

    python scripts/gpu_distributed.py [--nproc 2]     # writes $OUT/gpu_distributed.json when OUT is set
    python scripts/gpu_distributed.py --cpu --nproc 2 # the same on the CPU (gloo), about 30 s
Prints a short table last.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ratbench.bench.distributed import DIE_AFTER_ENV, ENV_DEFAULTS, rank_path
from ratbench.bench.results import read_rows

SWEEP = ["--impl", "full/sdpa-flash,full/sdpa-cudnn,swa/triton,linear/triton,rat/triton",
         "--mode", "train,prefill,decode", "--seq-len", "4k,16k", "--tokens", "64k", "--decode-batch", "64",
         "--heads", "16", "--head-dim", "128", "--dtype", "bf16", "--device", "cuda", "--budget", "0.3",
         "--no-progress", "--no-figures"]
#: --cpu: the same checks on the CPU with gloo (checks this script itself on a machine without GPUs)
CPU_SWEEP = ["--preset", "smoke", "--impl", "full/reference,swa/reference,full/sdpa-math", "--mode", "train,prefill",
             "--device", "cpu", "--threads", "1", "--no-progress", "--no-figures"]
CHECKS: list[dict] = []


def record(name: str, ok: bool | None, detail: str, **data: object) -> None:
    CHECKS.append({"check": name, "ok": ok, "detail": detail, **data})
    print(f"[{'PASS' if ok else ('INFO' if ok is None else 'FAIL')}] {name}: {detail}", flush=True)


def sh(cmd: list[str], **env: str) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=560,
                       env={**os.environ, **ENV_DEFAULTS, **env})
    return p.returncode, time.perf_counter() - t0, (p.stdout + p.stderr)[-4000:]


def torchrun(n: int, args: list[str], **env: str) -> tuple[int, float, str]:
    return sh([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}",
               "run_bench.py", *args], **env)


def main() -> int:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--nproc", type=int, default=torch.cuda.device_count())
    ap.add_argument("--cpu", action="store_true", help="a CPU smoke sweep instead (checks the script itself)")
    args = ap.parse_args()
    n, sweep = args.nproc, CPU_SWEEP if args.cpu else SWEEP
    out = Path(os.environ.get("OUT") or tempfile.mkdtemp())
    if n < 2 and not args.cpu:
        record("gpus", False, f"{torch.cuda.device_count()} CUDA devices visible; this check needs 2 or more")
        return 1

    rc, s1, log1 = sh([sys.executable, "run_bench.py", *sweep, "--out", str(out / "one")])
    one = {r["key"]: r for r in read_rows(out / "one")} if rc == 0 else {}
    record("one process", rc == 0, f"{len(one)} rows in {s1:.0f} s", log=None if rc == 0 else log1)

    rc, sn, logn = torchrun(n, [*sweep, "--out", str(out / "multi")])
    multi = {r["key"]: r for r in read_rows(out / "multi")} if rc == 0 else {}
    record(f"torchrun x{n}", rc == 0, f"{len(multi)} rows in {sn:.0f} s (one process: {s1:.0f} s)",
           log=None if rc == 0 else logn)
    if multi:
        same = set(multi) == set(one) and all(multi[k]["status"] == one[k]["status"] for k in one)
        record("same cases and statuses", same, f"{len(set(one) ^ set(multi))} keys differ; statuses "
               f"{sorted({(k, one[k]['status'], multi[k]['status']) for k in set(one) & set(multi) if one[k]['status'] != multi[k]['status']})[:5]}")
        meta = json.loads((out / "multi" / "run.json").read_text())
        ranks = meta["distributed"][-1]["ranks"]
        uuids = {r.get("gpu_uuid") for r in ranks}
        if not args.cpu:
            record("a GPU per rank", len(uuids) == n, f"{len(uuids)} distinct GPU UUIDs for {n} ranks",
                   ranks=ranks)
        record("multicast off", all(r["env"] == ENV_DEFAULTS for r in ranks), str(ranks[0]["env"]))
        per_rank = {k: sum(1 for r in multi.values() if r["rank"] == k) for k in range(n)}
        record("every rank ran cases", all(per_rank.values()), f"rows per rank {per_rank}; estimated shards "
               f"{[s['est_s'] for s in meta['distributed'][-1]['shards']]} s")
        ratios = sorted(multi[k]["ms_median"] / one[k]["ms_median"] for k in one
                        if k in multi and one[k]["status"] == multi[k]["status"] == "ok")
        if ratios:
            record("side by side / alone (ms median)", None,
                   f"median {statistics.median(ratios):.3f}, min {ratios[0]:.3f}, max {ratios[-1]:.3f} "
                   f"over {len(ratios)} ok cases", ratios=ratios)

    rc, _, _ = torchrun(n, [*sweep, "--out", str(out / "dead")], **{DIE_AFTER_ENV: "1:2"})
    dead1 = read_rows(rank_path(out / "dead", 1)) if rank_path(out / "dead", 1).exists() else []
    record("rank 1 dies after 2 cases", rc != 0 and len(dead1) == 2, f"torchrun rc {rc}, rank 1 rows {len(dead1)}")
    rc, _, logr = torchrun(n, ["resume", str(out / "dead"), "--no-progress", "--no-figures"])
    rows = read_rows(out / "dead") if (out / "dead" / "results.jsonl").exists() else []
    keys = [r["key"] for r in rows]
    ok = rc == 0 and len(keys) == len(set(keys)) and set(keys) == set(one)
    record("resume completes the dead run", ok, f"rc {rc}, {len(keys)} rows, {len(set(keys))} keys, "
           f"{len(set(one) - set(keys))} missing", log=None if ok else logr)

    (out / "gpu_distributed.json").write_text(json.dumps(CHECKS, indent=1, default=str))
    print("\n| check | ok | detail |\n|---|---|---|")
    for c in CHECKS:
        print(f"| {c['check']} | {c['ok']} | {c['detail']} |")
    return 0 if all(c["ok"] is not False for c in CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
