"""``run_bench.py profile``: where the time of one call goes, per kernel and per named stage.

Same sweep arguments as ``run`` (its parser and spec building, bench/cli.py's build_spec). Per case, after the
harness's own measurement (bench.runner: availability, accuracy check, first call, warm-up, timed calls by
bench/timing.py, with a small default budget here) of the SAME prepared call:
1. one more call (reset, L2 flush on CUDA) under torch.profiler (Kineto; CUDA activity on a GPU), inside a
   ``ratbench::profiled_call`` range; its Chrome trace goes to ``traces/<case>.json.gz`` (opens in Perfetto
   or chrome://tracing);
2. the kernels of that call (bench.stages.kernels_from_trace: GPU kernels, memcpy and memset on CUDA; CPU
   operators' self time, and Triton kernels run by the interpreter, on the CPU) with calls, total and
   per-call time and share, attributed to the implementation's stages (``profile_stages``, first regex
   match wins, the rest "other"); each stage gets FLOPs and bytes from bench.costs.stage_costs where a
   model exists (TFLOP/s, GB/s, % of the run's measured ceilings), time only otherwise;
3. coverage = kernel time of the call / the harness median of the same case (the rows of results.jsonl):
   below 1 is launch gaps and host work between kernels, above 1 can be L2 / clock differences of one call;
4. ``--ncu`` (CUDA, Nsight Compute installed): ``ncu`` on a child ``run_bench.py profile --ncu-child CASE``
   that warms the case up and makes one call between cudaProfilerStart/Stop (``--profile-from-start off``),
   filtered to the case's top kernels (``--kernel-name regex:...``, ``--launch-count`` = their launches in
   one call), ``--csv --page raw --metrics`` NCU_METRICS; per kernel: achieved tensor-pipe activity (wgmma and mma)
   and SM throughput, DRAM throughput, achieved occupancy, registers and local-memory (spill) instructions;
5. ``--sass``: the static gate's sm_90 compile (bench/static_gate.py; no GPU needed) of the case's Triton
   launches: registers, spills (LDL+STL), shared memory and HGMMA count, joined to the kernels by name.
Rows: results.jsonl gets the usual timing rows, profile.jsonl one ``row_type="profile"`` row per case
(the breakdown in ``details``; a case that was not profiled says why), run.json as for ``run``; the report
(bench/profile_report.py) adds a stage table, a stacked stage-time figure against T and a per-stage roofline.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

import ratbench
from ratbench.bench import cases as C
from ratbench.bench import costs, timing
from ratbench.bench.results import PROFILE, Row, append_row
from ratbench.bench.runner import Runner
from ratbench.bench.stages import (
    OTHER,
    TRITON_RANGE,
    KernelStat,
    attribute,
    coverage,
    kernel_base_name,
    kernels_from_trace,
)
from ratbench.bench.sweep import Case

log = logging.getLogger(__name__)

#: the folder that holds the ratbench package (a checkout's root, or site-packages): the ncu child's import path
IMPORT_ROOT = Path(ratbench.__file__).resolve().parents[1]
#: the record_function range around the profiled call
ROOT_RANGE = "ratbench::profiled_call"
#: profile defaults where the command line leaves the timing policy open: one warm-up call and a small budget
PROFILE_BUDGET_S = 0.2
PROFILE_REPEATS = 20
#: kernels listed per case in a row (the rest are summed into the stages all the same)
MAX_KERNELS = 40
#: Nsight Compute metrics (ncu 2025, sm_90) -> the column names used in rows and the report
NCU_METRICS = {
    "gpu__time_duration.sum": "ncu_ns",
    # the tensor pipe: on sm_90 it counts warpgroup MMA (HGMMA) as well as mma.sync (measured on the H200,
    # ncu 2025.3.1: 49.5% active for rat/triton's fwd_kernel, whose SASS has 48 HGMMA and no HMMA, at 57% of
    # the measured bf16 matmul peak); sm__pipe_tensor_op_gmma_cycles_active is not reported there (absent
    # from the CSV), so it is not asked for
    "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active": "tensor_pct",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm_pct",
    "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed": "dram_pct",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "occupancy_pct",
    "launch__registers_per_thread": "registers",
    "smsp__sass_inst_executed_op_local_ld.sum": "local_ld",
    "smsp__sass_inst_executed_op_local_st.sum": "local_st",
}
NCU_TIMEOUT_S = 480



@dataclass
class ProfileOptions:
    ncu: bool = False
    sass: bool = False
    #: kernels per case given to ncu (longest first)
    top: int = 5
    #: why ncu cannot run here (None: it can); decided once per command
    ncu_unavailable: str | None = None


def main(args: argparse.Namespace, argv: list[str], build_spec: Callable) -> int:
    """The ``profile`` subcommand on parsed arguments (run_bench.py's parser tree). Exit codes as ``run``
    (bench/exit_codes.py): 0 when every case has a profile row and none failed, 3 when some case ended
    error or wrong, 4 when the time limit left cases unprofiled, 5 when nothing could run; bad input
    raises UsageError (exit 2)."""
    from ratbench.bench import exit_codes, report, runner
    from ratbench.bench.cli_args import prepare_out_dir
    from ratbench.bench.exit_codes import UsageError
    from ratbench.bench.sweep import SweepError, expand

    prog = "run_bench.py profile"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.ncu_child:
        return ncu_child(args.ncu_child, args.seed or 0)
    if args.resume or args.retry:
        raise UsageError("--resume / --retry belong to run; profile runs its sweep afresh into --out", prog=prog)
    try:
        spec = build_spec(args)
    except (SweepError, ValueError) as exc:
        raise UsageError(str(exc), prog=prog) from None
    spec.warmup = 1
    if args.budget is None:
        spec.case_budget_s = min(spec.case_budget_s, PROFILE_BUDGET_S)
    if args.repeats is None:
        spec.repeats = min(spec.repeats, PROFILE_REPEATS)
        spec.min_repeats = min(spec.min_repeats, spec.repeats)
    opts = ProfileOptions(ncu=args.ncu, sass=args.sass, top=args.top)
    try:
        cases_planned = expand(spec)  # a bad sweep is refused before the run directory exists
    except (SweepError, ValueError) as exc:
        raise UsageError(str(exc), prog=prog) from None
    if args.dry_run:
        for c in cases_planned:
            print(c.key)
        return exit_codes.OK
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_dir = Path(args.out) if args.out else Path("reports") / "runs" / f"{stamp}-profile"
    if (run_dir / PROFILE).exists() and (run_dir / PROFILE).stat().st_size:
        raise UsageError(f"{run_dir / PROFILE} already has rows: choose another --out", prog=prog)
    run_dir = prepare_out_dir(run_dir, prog=prog)
    if args.ncu:
        opts.ncu_unavailable = ncu_unavailable_reason(spec.device)
        if opts.ncu_unavailable:
            print(f"{prog}: --ncu unavailable: {opts.ncu_unavailable}", file=sys.stderr)
    rest = argv[1:] if argv[:1] == ["profile"] else argv
    command = "python run_bench.py profile " + " ".join(shlex.quote(a) for a in rest)
    try:
        r, cases, _ = runner.start(spec, run_dir, command=command, preset=args.preset or "default")
    except (SweepError, ValueError, FileExistsError) as exc:
        raise UsageError(str(exc), prog=prog) from None
    _record_options(run_dir, opts)
    pr = ProfileRunner(r.results_path, spec, ceilings=r.ceilings, nvml=r.nvml, run_id=r.run_id, run_dir=run_dir,
                       options=opts)
    print(f"{len(cases)} cases to profile on {spec.device} -> {run_dir}", file=sys.stderr)
    try:
        rows = pr.run(cases, time_limit_s=spec.time_limit_s,
                      on_start=None if args.no_progress else lambda c: print(f"  {c.short()}", file=sys.stderr))
    except KeyboardInterrupt:
        print(f"\ninterrupted; profiled cases are in {run_dir}", file=sys.stderr)
        return exit_codes.INTERRUPTED
    runner.finish(run_dir, rows)
    path = report.write_report(run_dir, baseline=args.baseline, figures=not args.no_figures)
    from ratbench.bench.profile_report import summary

    print(summary(run_dir))
    print(f"results: {run_dir / 'results.jsonl'}\nprofile: {run_dir / PROFILE}\nreport:  {path}")
    if pr.left:
        why = (f"the device was lost in {pr.device_lost}" if pr.device_lost else
               f"time limit ({spec.time_limit_s:g} s) reached")
        print(f"{why}: {pr.left} cases not profiled (profile has no resume: run the rest with another --out)",
              file=sys.stderr)
        return exit_codes.UNFINISHED
    code = exit_codes.verdict(pr.profile_rows, 0)
    if code == exit_codes.FAILED:
        for prow in pr.profile_rows:
            if prow.status in exit_codes.FAILED_STATUSES:
                print(f"{prow.status}: {prow.key}: {prow.reason}", file=sys.stderr)
    return code


def _record_options(run_dir: Path, opts: ProfileOptions) -> None:
    """The profile options in run.json (``profile``)."""
    from ratbench.bench.results import read_meta, write_meta

    meta = read_meta(run_dir)
    meta["profile"] = {"ncu": opts.ncu, "ncu_unavailable": opts.ncu_unavailable, "sass": opts.sass, "top": opts.top,
                       "root_range": ROOT_RANGE, "ncu_metrics": list(NCU_METRICS) if opts.ncu else None}
    write_meta(run_dir, meta)


# ----- the runner ---------------------------------------------------------------------------------
@dataclass
class ProfileRunner(Runner):
    """bench.runner.Runner (statuses, accuracy, timing rows) with one profiled call after each timing."""

    run_dir: Path = Path(".")
    options: ProfileOptions = field(default_factory=ProfileOptions)
    profile_rows: list[Row] = field(default_factory=list)

    def run_case(self, case: Case) -> Row:
        n = len(self.profile_rows)
        row = super().run_case(case)
        if len(self.profile_rows) == n:  # not profiled: the timing row says why
            status = row.status if row.status != "ok" else "error"
            reason = row.reason if row.status != "ok" else (
                "not profiled: this level has no single call to profile (model level times a whole generate)")
            self._add(Row.for_case(case, status, reason=reason, row_type="profile"))
        return row

    def _add(self, prow: Row) -> None:
        prow.run_id = self.run_id  # the session (run.json sessions), as on the timing rows
        append_row(self.run_dir / PROFILE, prow)
        self.profile_rows.append(prow)

    def _time(self, impl: object, case: Case, acc_cols: dict, note: str | None, prep: C.Prepared | None = None) -> Row:
        if prep is None:
            prep = C.prepare(impl, case, seed=self.spec.seed)  # type: ignore[arg-type]
        row = super()._time(impl, case, acc_cols, note, prep)
        try:
            prow = self._profile(impl, case, prep, row)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the timing row stands; the profile row says what failed
            log.debug("profile failed", exc_info=True)
            prow = Row.for_case(case, "error", reason=f"profiling failed: {type(exc).__name__}: {exc}"[:2000],
                                row_type="profile", ms_median=row.ms_median)
        self._add(prow)
        return row

    def _profile(self, impl: object, case: Case, prep: C.Prepared, row: Row) -> Row:
        trace = Path("traces") / f"{safe_name(case.key)}.json.gz"
        (self.run_dir / trace).parent.mkdir(parents=True, exist_ok=True)
        kernels = profile_call(prep.fn, prep.reset, case.device, self.run_dir / trace,
                               flush_l2=self.spec.flush_l2)
        declared = tuple(getattr(type(impl), "profile_stages", ()) or ())
        stages = attribute(kernels, declared)
        kernel_ms = sum(k.total_ms for k in kernels)
        cov = coverage(kernels, row.ms_median)
        stage_cost = costs.stage_costs(case)
        ceil = self.ceilings
        stage_rows = []
        for st in stages:
            d: dict = {"stage": st.name, "ms": st.ms, "share": st.ms / kernel_ms if kernel_ms else None,
                       "calls": st.calls, "kernels": sorted(set(st.kernels))}
            c = stage_cost.get(st.name)
            if c is not None and st.ms > 0:
                tflops, gbps = c.flops / (st.ms * 1e-3) / 1e12, c.bytes / (st.ms * 1e-3) / 1e9
                d.update(flops=c.flops, bytes=c.bytes, tflops=tflops, gbps=gbps,
                         pct_peak_flops=100 * tflops / ceil.matmul_tflops if ceil else None,
                         pct_peak_bw=100 * gbps / ceil.copy_gbps if ceil else None)
            stage_rows.append(d)
        notes = []
        other = next((s for s in stages if s.name == OTHER), None)
        if other is not None and kernel_ms:
            what = "no stages declared" if not declared else f"{len(set(other.kernels))} kernel(s) match no stage"
            notes.append(f"other: {100 * other.ms / kernel_ms:.0f}% of kernel time ({what})")
        if case.device == "cuda" and row.timer == "cuda-graph":
            notes.append("the profiled call ran eagerly; the harness median is CUDA-graph replay")
        details: dict = {
            "activity": "cuda kernels" if case.device == "cuda" else "cpu operators (self time)",
            "kernel_ms": kernel_ms, "coverage": cov, "trace": str(trace), "stages_declared": [s for s, _ in declared],
            "stages": stage_rows,
            "kernels": [{"name": k.name, "stage": k.stage, "calls": k.calls, "total_ms": k.total_ms,
                         "per_call_ms": k.per_call_ms, "share": k.total_ms / kernel_ms if kernel_ms else None}
                        for k in kernels[:MAX_KERNELS]],
            "kernels_left_out": max(0, len(kernels) - MAX_KERNELS),
        }
        if self.options.ncu:
            details["ncu"] = self._ncu(case, kernels)
            if details["ncu"]["status"] != "ok":
                notes.append(f"ncu {details['ncu']['status']}: {details['ncu']['reason']}")
        if self.options.sass:
            details["sass"] = sass_facts(case, kernels)
            if details["sass"]["status"] != "ok":
                notes.append(f"sass {details['sass']['status']}: {details['sass']['reason']}")
        keep = ("ms_median", "ms_p20", "ms_p80", "n_samples", "timer", "timed_call", "first_call_ms", "flops", "bytes",
                "tflops", "gbps", "pct_peak_flops", "pct_peak_bw")
        return Row.for_case(case, "ok", reason="; ".join(notes) or None, row_type="profile", details=details,
                            **{k: getattr(row, k) for k in keep})

    def _ncu(self, case: Case, kernels: list[KernelStat]) -> dict:
        if self.options.ncu_unavailable:
            return {"status": "unavailable", "reason": self.options.ncu_unavailable}
        top = [k for k in kernels if k.total_ms > 0][:self.options.top]
        if not top:
            return {"status": "error", "reason": "no kernels in the profiled call"}
        cmd = ncu_command(find_ncu() or "ncu", case, top, self.spec.seed)
        out_dir = self.run_dir / "ncu"
        out_dir.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        try:
            res = subprocess.run(cmd, cwd=IMPORT_ROOT, capture_output=True, text=True, timeout=NCU_TIMEOUT_S,
                                 check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                     [str(IMPORT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                                           if p])})
        except subprocess.TimeoutExpired:
            return {"status": "error", "reason": f"ncu took more than {NCU_TIMEOUT_S} s", "command": shlex.join(cmd)}
        (out_dir / f"{safe_name(case.key)}.csv").write_text(res.stdout, encoding="utf-8")
        rows = parse_ncu_csv(res.stdout)
        if res.returncode != 0 or not rows:
            tail = " | ".join(ln for ln in (res.stderr + res.stdout).strip().splitlines()[-3:])
            return {"status": "error", "reason": f"ncu exit {res.returncode}, {len(rows)} kernel rows: {tail[:500]}",
                    "command": shlex.join(cmd)}
        return {"status": "ok", "reason": None, "seconds": round(time.perf_counter() - t0, 1),
                "command": shlex.join(cmd), "kernels": summarize_ncu(rows)}


# ----- one profiled call --------------------------------------------------------------------------
def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", key).strip("_")


@contextlib.contextmanager
def interpreted_triton_ranges(enabled: bool) -> Iterator[None]:
    """Under TRITON_INTERPRET=1, wrap each Triton launch in a ``triton::<kernel>`` profiler range, so that
    interpreted kernels show up by name on the CPU (they run as Python and numpy, not as torch ops)."""
    if not enabled or os.environ.get("TRITON_INTERPRET") != "1":
        yield
        return
    try:
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:
        yield
        return
    from torch.profiler import record_function

    orig = InterpretedFunction.run

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("warmup"):
            return orig(self, *args, **kwargs)
        with record_function(TRITON_RANGE + self.fn.__name__):
            return orig(self, *args, **kwargs)

    InterpretedFunction.run = run  # type: ignore[method-assign]
    try:
        yield
    finally:
        InterpretedFunction.run = orig  # type: ignore[method-assign]


def profile_call(fn: Callable[[], object], reset: Callable[[], None], device: str, trace_path: Path, *,
                 flush_l2: bool = True) -> list[KernelStat]:
    """One call of ``fn`` (after ``reset`` and, on CUDA, an L2 flush, both outside the profile) under
    torch.profiler; writes the gzipped Chrome trace and returns the call's kernels."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as kineto

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    reset()
    if device == "cuda":
        if flush_l2:
            timing._L2Flusher.flush()
        torch.cuda.synchronize()
    with interpreted_triton_ranges(device == "cpu"), kineto(activities=activities) as prof:
        with record_function(ROOT_RANGE):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
    prof.export_chrome_trace(str(trace_path))
    return kernels_from_trace(read_trace(trace_path)["traceEvents"], device)


def read_trace(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return json.load(fh)


# ----- Nsight Compute -----------------------------------------------------------------------------
def find_ncu() -> str | None:
    """$RATBENCH_NCU, ncu on PATH, or the CUDA toolkit's / Nsight Compute's usual places."""
    env = os.environ.get("RATBENCH_NCU")
    if env:
        return env if os.path.exists(env) else None
    found = shutil.which("ncu")
    if found:
        return found
    import glob

    for pat in ("/usr/local/cuda/bin/ncu", "/usr/local/cuda-*/bin/ncu", "/opt/nvidia/nsight-compute/*/ncu"):
        hits = sorted(glob.glob(pat))
        if hits:
            return hits[-1]
    return None


def ncu_unavailable_reason(device: str) -> str | None:
    if device != "cuda":
        return f"Nsight Compute profiles CUDA kernels; this sweep runs on {device}"
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to torch"
    if find_ncu() is None:
        return "ncu (Nsight Compute) not found on PATH, in /usr/local/cuda*/bin or /opt/nvidia/nsight-compute (or set RATBENCH_NCU)"
    return None


def ncu_command(ncu: str, case: Case, top: Sequence[KernelStat], seed: int) -> list[str]:
    names = list(dict.fromkeys(kernel_base_name(k.name) for k in top))
    regex = "regex:^(" + "|".join(re.escape(n) for n in names) + ")$"
    return [ncu, "--profile-from-start", "off", "--kernel-name", regex,
            "--launch-count", str(sum(k.calls for k in top)), "--csv", "--page", "raw",
            "--metrics", ",".join(NCU_METRICS), sys.executable, "-m", "ratbench.bench.cli", "profile",
            "--ncu-child", json.dumps(case.to_dict(), separators=(",", ":")), "--seed", str(seed)]


def parse_ncu_csv(text: str) -> list[dict]:
    """Rows of ``ncu --csv --page raw`` output (a header line starting with "ID", then a units line, then one
    line per profiled launch; other lines, e.g. ==PROF== messages, are skipped): kernel name and the metrics
    of NCU_METRICS as floats (None where ncu printed n/a)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith('"ID"')), None)
    if start is None:
        return []
    reader = csv.reader(io.StringIO("\n".join(ln for ln in lines[start:] if ln.startswith('"'))))
    header = next(reader)
    out = []
    for rec in reader:
        if len(rec) != len(header):
            continue
        d = dict(zip(header, rec))
        if not d.get("ID", "").strip().isdigit():  # the units line
            continue
        row: dict = {"kernel": d.get("Kernel Name", ""), "id": int(d["ID"])}
        for metric, col in NCU_METRICS.items():
            row[col] = _float(d.get(metric))
        out.append(row)
    return out


def _float(x: str | None) -> float | None:
    if x is None:
        return None
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return None


def summarize_ncu(rows: list[dict]) -> dict[str, dict]:
    """Per kernel base name: launches profiled and the mean of each metric over them (registers: the maximum)."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(kernel_base_name(r["kernel"]), []).append(r)
    out = {}
    for name, rs in by.items():
        d: dict = {"launches": len(rs)}
        for col in NCU_METRICS.values():
            vals = [r[col] for r in rs if r.get(col) is not None]
            d[col] = None if not vals else (max(vals) if col == "registers" else sum(vals) / len(vals))
        out[name] = d
    return out


def ncu_child(case_json: str, seed: int) -> int:
    """The process ncu runs: the case warmed up (first call and one more), then one call between
    cudaProfilerStart and cudaProfilerStop (ncu --profile-from-start off sees only that call)."""
    from ratbench import impls

    case = Case.from_dict(json.loads(case_json))
    if case.device != "cuda" or not torch.cuda.is_available():
        from ratbench.bench.exit_codes import UsageError

        raise UsageError("--ncu-child runs one CUDA case under Nsight Compute; this case or machine has no CUDA GPU",
                         prog="run_bench.py profile")
    impl = impls.get(case.impl)
    if case.level != "op":
        from ratbench.bench.levels import prepare_layer

        prep = prepare_layer(case, seed=seed)
    else:
        prep = C.prepare(impl, case, seed=seed)
    for _ in range(2):
        prep.reset()
        prep.fn()
    torch.cuda.synchronize()
    prep.reset()
    timing._L2Flusher.flush()
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    with timing.nvtx_range(case.key, "cuda"):
        prep.fn()
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    return 0


# ----- static SASS facts --------------------------------------------------------------------------
def _sass_worker(scenario: object) -> list[dict]:
    """In a fresh process without TRITON_INTERPRET: the scenario's launches compiled for sm_90."""
    os.environ.pop("TRITON_INTERPRET", None)
    from ratbench.bench.static_gate import _compile_launch, collect_launches

    return [_compile_launch(ln) for ln in collect_launches((scenario,))]  # type: ignore[arg-type]


def sass_facts(case: Case, kernels: Sequence[KernelStat], *, compile_fn: Callable | None = None) -> dict:
    """Registers, spills, shared memory and HGMMA of the case's Triton launches (bench.static_gate at this
    case's shape, bf16 or the case's dtype), joined to the profiled kernels by function name."""
    from ratbench import impls

    cls = impls.load_class(case.impl)
    if not getattr(cls, "triton", False) or case.level != "op":
        return {"status": "unavailable", "reason": f"{case.impl} has no Triton kernels of its own (the static gate "
                                                   "compiles the project's Triton kernels only)"}
    if compile_fn is None:
        compile_fn = _compile_in_subprocess
    from ratbench.bench.static_gate import Scenario

    sc = Scenario(name=case.short(), impl=case.impl, mode=case.mode, seq_len=case.seq_len, batch=case.batch,
                  heads=case.heads, head_dim=case.head_dim, dtype=case.dtype,
                  params=tuple(sorted(case.params.items())))
    try:
        recs = compile_fn(sc)
    except Exception as exc:  # noqa: BLE001 - reported in the row
        return {"status": "error", "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
    return {"status": "ok", "reason": None, "kernels": join_sass(recs, kernels)}


def _compile_in_subprocess(sc: object) -> list[dict]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    saved = os.environ.pop("TRITON_INTERPRET", None)  # the worker must import real @triton.jit kernels
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as ex:
            return ex.submit(_sass_worker, sc).result()
    finally:
        if saved is not None:
            os.environ["TRITON_INTERPRET"] = saved


def join_sass(recs: Sequence[dict], kernels: Sequence[KernelStat]) -> dict[str, dict]:
    """Per profiled kernel that the static gate compiled (same function name): its launches' facts (the
    worst of several configurations: most registers, spills, shared memory; the HGMMA count of the first)."""
    by: dict[str, list[dict]] = {}
    for r in recs:
        by.setdefault(r["kernel"].rsplit(".", 1)[-1], []).append(r)
    out = {}
    for k in kernels:
        base = kernel_base_name(k.name)
        rs = [r for r in by.get(base, []) if "error" not in r]
        if not rs:
            continue
        out[k.name] = {"configs": len(rs), "regs": max(r.get("regs", 0) for r in rs),
                       "spills": max(r.get("spills", 0) for r in rs), "shared": max(r.get("shared", 0) for r in rs),
                       "HGMMA": rs[0].get("HGMMA"), "ids": [r["id"] for r in rs]}
    return out
