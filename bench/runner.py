"""Runs the cases of a sweep: one row per case, appended to the results file as soon as it is known.

Per case, in order (the first that applies decides the status):
    skipped      an earlier, shorter case of the same series was slower than ``max_call_s`` per call
    unsupported  the family rejects the configuration, or ``impl.unsupported_reason`` gives a reason
    unavailable  the implementation cannot run on this machine (package, device, GPU architecture)
    wrong        it disagrees with the family reference on a small shape (bench.accuracy), or with
                 ``accuracy_rule = "fa-rule"`` fails the FlashAttention rule at its own shape (bench.fa_rule)
    oom          out of memory while preparing or running; memory is freed and the sweep goes on
    error        any other exception (the message is the row's reason)
    ok           timed (bench.timing), with peak memory, cost-model rates and NVML samples
A case after which the device synchronize fails (a kernel's fault that CUDA keeps for the whole process, such as an
illegal memory access) ends error, and the sweep stops there: the cases after it get no row, and a resume runs them
in a fresh process.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ratbench import impls
from ratbench.bench import accuracy, costs, exit_codes, fa_rule, memory, timing
from ratbench.bench import cases as C
from ratbench.bench.device import Ceilings, Nvml, NvmlSampler, now_utc
from ratbench.bench.results import Row, append_row
from ratbench.bench.sweep import Case, SweepSpec, series_key

log = logging.getLogger(__name__)


@dataclass
class Runner:
    """State shared by the cases of one run (accuracy results are cached per configuration)."""

    results_path: Path
    spec: SweepSpec
    ceilings: Ceilings | None = None
    nvml: Nvml | None = None
    rank: int | None = None
    #: this session's id (run.json ``sessions``), written on every row
    run_id: str | None = None
    _accuracy: dict[tuple, object] = field(default_factory=dict)
    _slow_series: dict[tuple, str] = field(default_factory=dict)
    _allocated: bool = False
    #: cases not started because the time limit was reached or the device was lost
    left: int = 0
    #: set when a case left the CUDA context unusable ("<case>: <error>"): the cases after it are not started
    device_lost: str | None = None

    @property
    def policy(self) -> timing.TimingPolicy:
        s = self.spec
        return timing.TimingPolicy(repeats=s.repeats, min_repeats=min(s.min_repeats, s.repeats), warmup=s.warmup,
                                   budget_s=s.case_budget_s, flush_l2=s.flush_l2, cuda_graph=s.cuda_graphs,
                                   target_ci_rel=s.target_ci_rel if s.device == "cpu" else None)

    def run(
        self,
        cases: Iterable[Case],
        *,
        skip: set[str] | None = None,
        on_start: Callable[[Case], None] | None = None,
        on_done: Callable[[Case, Row | None], None] | None = None,
        time_limit_s: float | None = None,
    ) -> list[Row]:
        """Run every case not in ``skip`` (keys), appending each row to the results file. With
        ``time_limit_s``, no case starts after that many seconds (but one always runs, so every
        session makes progress): the rest are left for a resume (``self.left`` counts them)."""
        rows = []
        apply_threads(self.spec)
        t0 = time.perf_counter()
        self.left = 0
        for case in cases:
            if skip and case.key in skip:
                if on_done:
                    on_done(case, None)
                continue
            if self.device_lost or (time_limit_s is not None and rows and time.perf_counter() - t0 > time_limit_s):
                self.left += 1
                continue
            if on_start:
                on_start(case)
            row = self.run_case(case)
            append_row(self.results_path, row)
            rows.append(row)
            if on_done:
                on_done(case, row)
        return rows

    # ----- one case -------------------------------------------------------------------------------
    def run_case(self, case: Case) -> Row:
        started, t0 = now_utc(), time.perf_counter()
        self._allocated = False
        failed = False
        try:
            with timing.nvtx_range(case.key, case.device):
                row = self._run_case(case)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            status = "oom" if memory.is_oom(exc) else "error"
            reason = f"{type(exc).__name__}: {str(exc).strip()}"[:2000]
            log.info("%s: %s", case.short(), reason)
            log.debug("traceback", exc_info=True)
            row = Row.for_case(case, status, reason=reason)
            failed = True
        if self._allocated:  # the case's tensors (and traceback frames) are gone now
            lost = memory.free(case.device, collect=failed)
            if lost:  # a kernel's fault surfaced at the synchronize: no timing of this case can be trusted
                log.warning("%s: the device is lost (%s); the cases after it are not started", case.short(), lost)
                self.device_lost = f"{case.short()}: {lost}"
                if row.status not in exit_codes.FAILED_STATUSES:
                    row = Row.for_case(case, "error", reason=f"the device was lost after this case: {lost}")
        row.started_at, row.wall_s, row.rank = started, time.perf_counter() - t0, self.rank
        row.run_id = self.run_id
        return row

    def _run_case(self, case: Case) -> Row:
        skey = series_key(case)
        if skey in self._slow_series:
            return Row.for_case(case, "skipped", reason=self._slow_series[skey])
        if case.level != "op":  # layer and model cases: bench.levels (same statuses, timing and rows)
            from ratbench.bench import levels

            return levels.run_case(self, case)
        problem = C.case_problem(case)
        if problem:
            return Row.for_case(case, "unsupported", reason=problem)
        try:
            cls = impls.load_class(case.impl)
            reason = cls.unavailable_reason(case.device)
        except impls.UnavailableError as exc:
            reason = str(exc).split(": ", 1)[-1]
        if reason:
            return Row.for_case(case, "unavailable", reason=reason)
        impl = impls.get(case.impl)
        dtype = C.torch_dtype(case.dtype)
        reason = impl.unsupported_reason(mode=case.mode, device=case.device, dtype=dtype, head_dim=case.head_dim,
                                         seq_len=case.seq_len, batch=case.batch, heads=case.heads, **case.params)
        if reason:
            return Row.for_case(case, "unsupported", reason=reason)

        self._allocated = True
        acc = self._check(impl, case)
        acc_cols = {"max_abs_err": acc.max_abs_err, "grad_max_abs_err": acc.grad_max_abs_err,
                    "accuracy_tol": acc.tol,
                    "accuracy": {True: "pass", False: "wrong", None: "unchecked"}[acc.ok]}
        if acc.details:  # the FlashAttention rule's per-tensor errors (bench/fa_rule.py)
            acc_cols["details"] = acc.details
        if acc.ok is False:
            return Row.for_case(case, "wrong", reason=acc.detail, **acc_cols)
        return self._time(impl, case, acc_cols, acc.detail if acc.ok is None else None)

    def _check(self, impl: object, case: Case) -> accuracy.AccuracyResult:
        if not self.spec.check_accuracy:
            return accuracy.AccuracyResult(ok=None, detail="accuracy check turned off")
        fa = self.spec.accuracy_rule == "fa-rule"  # the FlashAttention rule at the case's own shape
        key = ("fa-rule", case.key) if fa else accuracy.check_key(case)
        check = fa_rule.check_row if fa else accuracy.check
        return self.cached_check(key, lambda: check(impl, case), case.device)  # type: ignore[arg-type,return-value]

    def cached_check(self, key: tuple, compute: Callable[[], object], device: str,
                     what: str = "the accuracy check") -> object:
        """``compute()`` once per ``key`` for this runner, remembered, a failure too (so the same failing
        check is not re-run for every T); a remembered failure raises RuntimeError naming ``what``."""
        if key not in self._accuracy:
            try:
                self._accuracy[key] = compute()
            except Exception as exc:  # noqa: BLE001 - remembered; the case reports it
                exc.__context__ = exc.__cause__ = None  # keep the message, not the frames (and their tensors)
                self._accuracy[key] = exc.with_traceback(None)
                memory.free(device, collect=True)
        res = self._accuracy[key]
        if isinstance(res, Exception):
            kind = "out of memory" if memory.is_oom(res) else "failed"
            raise RuntimeError(f"{what} {kind}: {type(res).__name__}: {res}") from None  # noqa: TRY004
        return res

    def mark_allocated(self) -> None:
        """The case being run allocates device memory: free it when the case ends (bench.levels calls this)."""
        self._allocated = True

    def time_prepared(self, impl: object, case: Case, acc_cols: dict, note: str | None, prep: C.Prepared) -> Row:
        """Time an already prepared callable (layer cases, bench.levels) as op cases are timed: the same
        first call, memory, timing policy, cost and row."""
        return self._time(impl, case, acc_cols, note, prep=prep)

    def _time(self, impl: object, case: Case, acc_cols: dict, note: str | None, prep: C.Prepared | None = None) -> Row:
        dev = case.device
        outside = memory.allocated(dev)  # the harness's own buffers (L2 flush) are not the case's
        if prep is None:  # (layer cases come prepared by bench.levels)
            prep = C.prepare(impl, case, seed=self.spec.seed)  # type: ignore[arg-type]
        first_ms = timing.first_call(prep.fn, prep.reset, dev)
        peak, before = memory.peak_of(prep.fn, prep.reset, dev)
        if peak is not None and before is not None and outside is not None:
            peak, before = peak - outside, before - outside
        with NvmlSampler(self.nvml if dev == "cuda" else None) as sampler:
            t = timing.measure(prep.fn, prep.reset, dev, self.policy, graphable=prep.graphable and dev == "cuda",
                               first_ms=first_ms)
        ms = t.median
        if ms > self.spec.max_call_s * 1e3:
            self._slow_series[series_key(case)] = (
                f"a shorter sequence of this series took {ms / 1e3:.1f} s per call (> max_call_s "
                f"{self.spec.max_call_s:g} s)")
        cost = costs.cost(case)
        tflops = cost.flops / (ms * 1e-3) / 1e12
        gbps = cost.bytes / (ms * 1e-3) / 1e9
        ceil = self.ceilings
        notes = [n for n in (t.note, note) if n]
        return Row.for_case(
            case, "ok", reason="; ".join(notes) or None,
            ms_median=ms, ms_p20=t.p20, ms_p80=t.p80, n_samples=t.n, samples_ms=[round(s, 6) for s in t.samples_ms],
            timer=t.timer, timer_note=t.note, timed_call=prep.call, first_call_ms=t.first_call_ms,
            flops=cost.flops, bytes=cost.bytes, tflops=tflops, gbps=gbps,
            pct_peak_flops=100 * tflops / ceil.matmul_tflops if ceil else None,
            pct_peak_bw=100 * gbps / ceil.copy_gbps if ceil else None,
            peak_mem_bytes=peak, mem_before_bytes=before, state_bytes_per_seq=prep.state_bytes_per_seq,
            fill_ms=prep.fill_ms, **acc_cols, **sampler.summary(), **t.noise(dev),
        )


# ----- a whole sweep ------------------------------------------------------------------------------
def start(
    spec: SweepSpec,
    run_dir: str | Path,
    *,
    command: str,
    preset: str | None = None,
    resume: bool = False,
    retry: Collection[str] = (),
    measure_ceilings: bool = True,
) -> tuple[Runner, list[Case], set[str]]:
    """Create (or, with ``resume``, reopen) a run directory: metadata with the device, versions and
    measured ceilings, the expanded cases and the keys already finished. The caller then calls
    ``runner.run(cases, skip=done)``."""
    from ratbench.bench import device as D
    from ratbench.bench import provenance as P
    from ratbench.bench import results as R
    from ratbench.bench.sweep import expand

    run_dir = Path(run_dir)
    cases = expand(spec)  # a sweep that does not expand (SweepError) leaves no directory behind
    if not resume and (run_dir / R.RESULTS).exists() and (run_dir / R.RESULTS).stat().st_size:
        raise FileExistsError(f"{run_dir / R.RESULTS} already has rows: resume it or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = R.read_meta(run_dir) if resume else {}
    if resume:  # rows of a torchrun launch that never reached its merge (bench/distributed.py)
        from ratbench.bench.rank_files import merge_rank_files

        merge_rank_files(run_dir)
    done = R.finished_keys(run_dir, retry) if resume else set()
    apply_threads(spec)  # before the ceilings, which are measured with the cases' thread count
    ceilings = None
    if meta.get("ceilings"):
        ceilings = D.Ceilings(**meta["ceilings"])  # a resumed run keeps the ceilings its rows were rated with
    elif measure_ceilings:
        ceilings = D.measure_ceilings(spec.device)
    info = D.describe(spec.device)
    prov = P.collect(spec.device, command=command, kind="resume" if resume and meta else "start", info=info)
    git = prov.git_rev + ("+dirty" if prov.git_dirty else "")
    if resume and meta:  # every resume is a session of its own: its machine, revision and versions
        meta["sessions"] = P.sessions(meta) + [prov.to_dict()]
        meta.setdefault("resumed", []).append({"at": prov.started_at, "command": command,
                                               "git": git, "run_id": prov.run_id})
    else:
        meta = {
            "command": command, "preset": preset, "started_at": prov.started_at, "git": git,
            "device": info.to_dict(), "ceilings": None if ceilings is None else ceilings.__dict__,
            "spec": spec.to_dict(), "n_cases": len(cases), "sessions": [prov.to_dict()],
        }
    R.write_meta(run_dir, meta)
    end_with_newline(run_dir / R.RESULTS)
    nvml = D.Nvml.open(0) if spec.device == "cuda" else None
    raise_recompile_limit()
    runner = Runner(run_dir / R.RESULTS, spec, ceilings=ceilings, nvml=nvml, run_id=prov.run_id)
    (run_dir / R.RESULTS).touch()
    return runner, cases, done


def apply_threads(spec: SweepSpec) -> None:
    """CPU runs: torch's intra-op threads as the sweep asks (CPU presets: 1; 0 or None: torch's choice).
    On a small shared machine more threads wait for each other whenever another process holds a core:
    bench/README.md, "Noise"."""
    if spec.device == "cpu" and spec.threads and torch.get_num_threads() != spec.threads:
        torch.set_num_threads(spec.threads)


def end_with_newline(path: Path) -> None:
    """A run killed mid-write leaves a partial last line; start the next row on a line of its own."""
    if path.exists() and path.stat().st_size:
        with open(path, "rb+") as fh:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":
                fh.write(b"\n")


def raise_recompile_limit(limit: int = 256) -> None:
    """A sweep calls compiled peers (FlexAttention) at many shapes in one process; torch.compile's
    default recompile limit (8) would silently drop later shapes to eager mode. Shapes are also kept
    static (one specialised compile per shape, as the paper's protocol compiles per configuration)
    instead of switching to a dynamic-shape graph after the first change."""
    try:
        import torch._dynamo

        cfg = torch._dynamo.config
        if hasattr(cfg, "automatic_dynamic_shapes"):
            cfg.automatic_dynamic_shapes = False
        for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                     "accumulated_cache_size_limit"):
            if hasattr(cfg, name) and getattr(cfg, name) < limit:
                setattr(cfg, name, limit)
    except Exception as exc:  # noqa: BLE001 - not fatal: only compiled peers care
        log.warning("could not raise torch.compile's recompile limit: %s", exc)


def finish(run_dir: str | Path, rows: list[Row]) -> None:
    """Record the end of a run in its metadata."""
    from ratbench.bench import device as D
    from ratbench.bench import results as R

    meta = R.read_meta(run_dir)
    meta["finished_at"] = D.now_utc()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    meta["last_session_status_counts"] = counts
    if meta.get("sessions"):  # which installed peers this session imported (bench/provenance.py)
        from ratbench.bench.provenance import peers_imported

        meta["sessions"][-1]["peers_imported"] = peers_imported()
    R.write_meta(run_dir, meta)
