"""One sweep over every GPU of a host, launched by PyTorch's own launcher:

    torchrun --standalone --nproc-per-node=N run_bench.py [run flags] --out DIR
    torchrun --standalone --nproc-per-node=N run_bench.py resume DIR

Without torchrun (no RANK / WORLD_SIZE in the environment) nothing here runs.

- Each rank takes one GPU (``torch.cuda.set_device(LOCAL_RANK)``) or, on the CPU, one process.
- Rank 0 prepares the run directory (metadata, ceilings measured on its own device, and on ``resume``
  the keys already finished), then deals the cases out by estimated cost
  (``bench.costs.estimate_seconds``): greedy longest-processing-time over *series* (cases that differ only
  in sequence length and batch), so that a series stays on one rank, runs shortest-first there, and the
  ``max_call_s`` skip rule still works. When there are fewer series than ranks, the heaviest series are
  split into single cases. Each rank runs its cases in the sweep's order.
- Each rank appends its rows to its own file, ``results.rank<k>.jsonl`` (fsync'ed per row, as the
  single-process runner does). After a barrier, rank 0 merges every rank file into ``results.jsonl``
  and writes the one report. Rank files are kept: the merge copies rows not yet in ``results.jsonl``
  (the same line is never copied twice), so it can be repeated safely.
- A rank that dies loses only the case it was running: the other ranks' rows are already on disk. If
  rank 0 survives (the barrier fails), it merges whatever rank files exist; torchrun normally stops the
  other ranks when one fails, and then ``resume`` (which merges first, in one process or under torchrun)
  runs only the cases without a row, dealt out again.
- The process group is gloo, on the GPU too: ranks exchange only a few Python objects (the case lists,
  a barrier), never tensors, so NCCL's communicators (device memory that would show up in the peak
  memory of the cases, and a barrier that hangs instead of failing when a peer dies) buy nothing here.
  NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and NVSHMEM_DISABLE_NVLS=1 are still set (if
  unset) before the process group exists, as the device documentation requires (NVLink multicast stays
  off), in case anything in the process creates a communicator.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from ratbench.bench.rank_files import RANK_FILE, merge_rank_files, rank_files, rank_path  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

#: set (if unset) before the process group exists, as the device documentation requires
ENV_DEFAULTS = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
#: seconds a rank waits at a barrier for the others (ranks finish their shards at different times)
TIMEOUT_ENV = "RATBENCH_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 24 * 3600.0
#: tests only: "RANK:K" makes that rank exit (os._exit(17)) after K cases, as if it had crashed
DIE_AFTER_ENV = "RATBENCH_TEST_DIE_AFTER"


def launched() -> bool:
    """True when started by torchrun (or anything else that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def set_env_defaults() -> None:
    for k, v in ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)


# ----- dealing cases out ----------------------------------------------------------------------------
def shard(cases: Sequence, weights: dict[str, float], world_size: int,
          unit_key: Callable | None = None) -> list[list]:
    """Deal ``cases`` to ``world_size`` ranks: greedy longest-processing-time (heaviest unit first, to the
    least-loaded rank, lowest rank on ties) over units of cases sharing ``unit_key`` (default: the series).
    While there are fewer units than ranks, the heaviest unit of several cases is split into single cases.
    Each rank's cases keep their order in ``cases``."""
    from ratbench.bench.sweep import series_key

    unit_key = unit_key or series_key
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    index = {c.key: i for i, c in enumerate(cases)}
    units: dict[object, list] = {}
    for c in cases:
        units.setdefault(unit_key(c), []).append(c)
    groups = list(units.values())

    def weight(g: list) -> float:
        return sum(weights.get(c.key, 1.0) for c in g)

    while len(groups) < world_size:
        multi = [g for g in groups if len(g) > 1]
        if not multi:
            break
        big = max(multi, key=weight)
        groups.remove(big)
        groups.extend([c] for c in big)
    load = [0.0] * world_size
    out: list[list] = [[] for _ in range(world_size)]
    order = sorted(range(len(groups)), key=lambda i: (-weight(groups[i]), index[groups[i][0].key]))
    for i in order:
        r = min(range(world_size), key=lambda k: (load[k], k))
        load[r] += weight(groups[i])
        out[r].extend(groups[i])
    for part in out:
        part.sort(key=lambda c: index[c.key])
    return out


# ----- one rank of a run ----------------------------------------------------------------------------
@dataclass
class Session:
    """This process's place in a torchrun launch, and the run it shares with the other ranks."""

    rank: int
    world_size: int
    local_rank: int
    device: str
    backend: str = "gloo"
    run_dir: Path | None = None
    #: every case of the sweep (rank 0 only), to count what is still missing after the merge
    all_keys: list[str] = field(default_factory=list)
    #: bytes of each rank file before this session (rank 0 only): the rows after them are this session's
    _offsets: dict[int, int] = field(default_factory=dict)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def init(cls, device: str) -> Session:
        """Join the process group (gloo, long timeout); on CUDA take GPU ``LOCAL_RANK``."""
        import torch
        import torch.distributed as dist

        set_env_defaults()
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        if device == "cuda":
            n = torch.cuda.device_count()
            if local >= n:
                raise ValueError(f"LOCAL_RANK {local} but only {n} CUDA devices are visible: run at most "
                                 f"--nproc-per-node={n}")
            torch.cuda.set_device(local)
        timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timedelta(seconds=timeout))
        return cls(rank=rank, world_size=world, local_rank=local, device=device)

    def _identity(self) -> dict[str, object]:
        ident: dict[str, object] = {"rank": self.rank, "local_rank": self.local_rank, "host": socket.gethostname(),
                                    "pid": os.getpid(), "env": {k: os.environ.get(k) for k in ENV_DEFAULTS}}
        if self.device == "cuda":
            import torch

            props = torch.cuda.get_device_properties(self.local_rank)
            ident.update(gpu=props.name, gpu_uuid=str(getattr(props, "uuid", "")),
                         visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
        return ident

    def start(self, spec, run_dir: str | Path, *, command: str, preset: str | None,  # type: ignore[no-untyped-def]
              resume: bool, retry: Collection[str] = ()):
        """Every rank: ``(runner, cases, done, run_dir)`` as ``bench.runner.start`` gives, but ``cases``
        is this rank's shard (``done`` is empty: finished cases were left out before dealing) and the
        runner appends to this rank's file. Rank 0's run directory wins; an error on rank 0 is raised on
        every rank."""
        import torch.distributed as dist

        from ratbench.bench import device as D
        from ratbench.bench import results as R
        from ratbench.bench import runner as RN
        from ratbench.bench.costs import estimate_cases

        idents: list = [None] * self.world_size
        dist.all_gather_object(idents, self._identity())
        payload: list = [None]
        r = None
        if self.is_main:
            try:
                run_dir = Path(run_dir)
                if not resume:
                    busy = [p.name for p in rank_files(run_dir) if p.stat().st_size]
                    if busy:
                        raise FileExistsError(f"{run_dir} already has rows in {', '.join(busy)}: resume it or "
                                              "choose another --out")
                r, cases, done = RN.start(spec, run_dir, command=command, preset=preset, resume=resume,
                                          retry=retry)
                todo = [c for c in cases if c.key not in done]
                weights = estimate_cases(todo, spec)
                shards = shard(todo, weights, self.world_size)
                self.all_keys = [c.key for c in cases]
                self._offsets = {k: (rank_path(run_dir, k).stat().st_size if rank_path(run_dir, k).exists()
                                     else 0) for k in range(self.world_size)}
                meta = R.read_meta(run_dir)
                meta.setdefault("distributed", []).append({
                    "at": D.now_utc(), "world_size": self.world_size, "backend": self.backend,
                    "n_cases": len(todo), "already_done": len(cases) - len(todo),
                    "shards": [{"rank": k, "n_cases": len(s), "est_s": round(sum(weights[c.key] for c in s), 1)}
                               for k, s in enumerate(shards)],
                    "ranks": idents,
                })
                R.write_meta(run_dir, meta)
                payload = [{"run_dir": str(run_dir), "shards": shards, "ceilings": meta.get("ceilings"),
                            "n_cases": len(cases), "run_id": r.run_id}]
            except Exception as exc:  # every rank must hear of it, or the others wait forever
                payload = [{"error": (type(exc).__name__, str(exc))}]
                dist.broadcast_object_list(payload, src=0)
                raise
        dist.broadcast_object_list(payload, src=0)
        got = payload[0]
        if "error" in got:
            kind, msg = got["error"]
            raise (FileExistsError if kind == "FileExistsError" else ValueError)(f"rank 0: {msg}")
        self.run_dir = Path(got["run_dir"])
        mine = got["shards"][self.rank]
        if self.is_main:
            r.results_path = rank_path(self.run_dir, 0)
            r.rank = 0
            if self.device == "cuda":
                r.nvml = D.Nvml.open(self.local_rank)
        else:
            RN.raise_recompile_limit()
            ceilings = D.Ceilings(**got["ceilings"]) if got.get("ceilings") else None
            nvml = D.Nvml.open(self.local_rank) if self.device == "cuda" else None
            r = RN.Runner(rank_path(self.run_dir, self.rank), spec, ceilings=ceilings, nvml=nvml, rank=self.rank,
                          run_id=got.get("run_id"))  # every rank's rows carry rank 0's session
        RN.end_with_newline(r.results_path)
        r.results_path.touch()
        self._maybe_die(r)
        log.info("rank %d: %d cases", self.rank, len(mine))
        return r, mine, set(), self.run_dir

    def _maybe_die(self, r) -> None:  # type: ignore[no-untyped-def]
        """Tests only (RATBENCH_TEST_DIE_AFTER=RANK:K): this rank exits, without clean-up, before case K + 1."""
        spec = os.environ.get(DIE_AFTER_ENV)
        if not spec:
            return
        who, k = (int(x) for x in spec.split(":"))
        if who != self.rank:
            return
        run_case = r.run_case
        count = {"n": 0}

        def dying(case):  # type: ignore[no-untyped-def]
            if count["n"] >= k:
                logging.shutdown()
                os._exit(17)
            count["n"] += 1
            return run_case(case)

        r.run_case = dying

    def finish(self, runner) -> tuple[list, int, bool]:  # type: ignore[no-untyped-def]
        """Every rank: wait for the others, then (rank 0) merge the rank files into results.jsonl.
        Returns (this session's rows from every rank, cases of the sweep still without a row, whether
        every rank arrived). Only rank 0's values mean anything; the others return ([], 0, ok)."""
        import torch.distributed as dist

        from ratbench.bench.results import RESULTS, Row, finished_keys

        ok = True
        try:
            dist.barrier()
        except Exception as exc:  # noqa: BLE001 - a rank died: merge what the others wrote anyway
            ok = False
            log.warning("rank %d: not every rank reached the end of the sweep (%s)", self.rank, exc)
        if not self.is_main:
            return [], 0, ok
        assert self.run_dir is not None
        merge_rank_files(self.run_dir)
        rows = []
        names = {f for f in Row.__dataclass_fields__}
        for k in range(self.world_size):
            p = rank_path(self.run_dir, k)
            if not p.exists():
                continue
            with open(p, encoding="utf-8") as fh:
                fh.seek(self._offsets.get(k, 0))
                for line in fh:
                    try:
                        d = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    rows.append(Row(**{n: v for n, v in d.items() if n in names}))
        missing = set(self.all_keys) - finished_keys(self.run_dir / RESULTS)
        return rows, len(missing), ok

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception as exc:  # noqa: BLE001 - a dead peer can make the teardown fail too
                log.info("destroy_process_group: %s", exc)
