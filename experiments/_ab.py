"""What the A/B study scripts (experiments/rat-gluon-*/ab*.py, check.py, sustained.py) share: the result file's
header, interleaved timing (every variant once per round, the median of the rounds), and appending a row to the
result file as each shape finishes (a long run keeps what it measured). Scripts run from the repository root with
PYTHONPATH=., which makes this importable as experiments._ab."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ratbench.bench.provenance import git_revision


def result_header(**extra: object) -> dict:
    """The device, torch, triton and git revision of the run (git: bench.provenance.git_revision, which reads
    RATBENCH_GIT_REV on a copy without .git), an empty "rows" list and any extra keys."""
    import triton

    return {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton.__version__,
            "git": git_revision(), "rows": [], **extra}


def rat_inputs(B: int, T: int, H: int, D: int, seed: int = 0, device: str = "cuda"
               ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The RAT A/B scripts' inputs, bf16 (B, T, H, D): [q, k, v, f] (f = sigmoid(N(0, 1) + 2)) and dO, drawn in that
    order from one generator seeded `seed`."""
    g = torch.Generator(device=device).manual_seed(seed)
    xs = [torch.randn(B, T, H, D, device=device, generator=g).bfloat16() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, device=device, generator=g) + 2.0).bfloat16())
    return xs, torch.randn(B, T, H, D, device=device, generator=g).bfloat16()


def median(xs: list[float]) -> float:
    """The middle value (the upper one of an even count)."""
    return sorted(xs)[len(xs) // 2]


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 3, bench: Callable | None = None,
                **kw: object) -> dict[str, list[float]]:
    """ms per call of each function: `rounds` rounds, each timing every function once in order (triton's do_bench
    unless `bench`, with kw: warmup, rep, grad_to_none), so that a drifting clock affects all of them alike."""
    if bench is None:
        from triton.testing import do_bench as bench
    ms: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(rounds):
        for n, fn in fns.items():
            ms[n].append(bench(fn, **kw))
    return ms


def prefill_step(impl, state, x: list[torch.Tensor]) -> Callable[[], torch.Tensor]:
    """A call of impl.prefill(state, *x) as the harness times a prefill: the state's position reset, no autograd."""
    def fn() -> torch.Tensor:
        state.pos = 0
        with torch.no_grad():
            return impl.prefill(state, *x)
    return fn


def train_step(impl, xs: list[torch.Tensor], do: torch.Tensor, L: int) -> Callable[[], None]:
    """One train step of impl: xs' gradients cleared, the forward at chunk size L, the backward of do."""
    def fn() -> None:
        for t in xs:
            t.grad = None
        impl.forward(*xs, chunk_size=L).backward(do)
    return fn


def time_into(row: dict, fns: dict[str, Callable[[], object]], rounds: int = 3, **kw: object) -> None:
    """`interleaved` (kw: warmup, rep, grad_to_none, bench), each function's median into row[name + "_ms"] and its
    rounds into row[name + "_all"]."""
    for n, ms in interleaved(fns, rounds=rounds, **kw).items():
        row[n + "_ms"] = median(ms)
        row[n + "_all"] = ms


def kernel_times(fn: Callable[[], object], calls: int = 5) -> dict[str, float]:
    """ms per call of each CUDA kernel that `calls` calls of fn launch (torch's profiler), by kernel name (40
    characters)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    return {e.key[:40]: round(e.device_time_total / max(1, e.count) / 1e3, 4)
            for e in prof.key_averages() if e.device_type.name == "CUDA"}


def load_beside(script: str, name: str):
    """The module `name`.py from the folder of `script` (a study's helper files kept beside it, not committed), with
    that folder on sys.path for the module's own imports."""
    import importlib.util
    import sys

    here = Path(script).resolve().parent
    sys.path.insert(0, str(here))
    spec = importlib.util.spec_from_file_location(name, here / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def max_diffs(keys: tuple[str, ...], a: list[torch.Tensor], b: list[torch.Tensor]) -> dict[str, float]:
    """max |a - b| of each pair of tensors, by key."""
    return {k: (x - y).abs().max().item() for k, x, y in zip(keys, a, b)}


def time_and_record(res: dict, row: dict, fns: dict[str, Callable[[], object]], path: Path, rounds: int,
                    rep: int) -> None:
    """The A/B scripts' end of a shape: `time_into` (warmup 5, rep), each variant's kernel times into
    row[name + "_kernels_ms"], `record` (rounds and kernel times left out of the print), the CUDA cache emptied."""
    time_into(row, fns, rounds, warmup=5, rep=rep)
    for name, fn in fns.items():
        row[name + "_kernels_ms"] = kernel_times(fn)
    record(res, row, path, hide=("_all", "_kernels_ms"))
    torch.cuda.empty_cache()


def record(res: dict, row: dict, path: Path, digits: int = 4, hide: tuple[str, ...] = ()) -> None:
    """Append row to res["rows"], print it (floats rounded, keys ending in `hide` left out) and write res to path."""
    res["rows"].append(row)
    print(json.dumps({k: (round(v, digits) if isinstance(v, float) else v) for k, v in row.items()
                      if not k.endswith(hide)}), flush=True)
    path.write_text(json.dumps(res, indent=1))


def compare_time_record(res: dict, row: dict, got: dict[str, list[torch.Tensor]],
                        fns: dict[str, Callable[[], object]], ref_of: Callable[[str], str], path: Path, rounds: int,
                        rep: int = 60) -> None:
    """The end of a shape in the A/B scripts that compare outputs: each variant's largest difference from its
    reference variant's outputs (ref_of(name) names it) into row[name + "_maxdiff"], row["finite"], then
    `time_into` (warmup 5, rep) and `record` (the rounds left out of the print), the CUDA cache emptied."""
    for name, vals in got.items():
        row[name + "_maxdiff"] = max((a - b).abs().max().item() for a, b in zip(vals, got[ref_of(name)]))
    row["finite"] = all(bool(torch.isfinite(a).all()) for v in got.values() for a in v)
    got.clear()
    time_into(row, fns, rounds, warmup=5, rep=rep)
    record(res, row, path, hide=("_all",))
    torch.cuda.empty_cache()
