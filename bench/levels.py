"""Layer- and model-level cases of the harness (``--level layer|model``), the paper's protocol (docs/rat-spec.md).

Layer level: one whole mixer layer of models/layers.py (RMSNorm, projections, the op, gates, out_proj,
residual) with Dm = H * D, built and called by models.cases.layer_callable:
    train    forward + out.mean().backward() under autocast to the case's dtype (float32 weights)
    prefill  forward under no_grad writing the layer's decode cache (autocast as in train)
    decode   one layer step at position T - 1 of a cache filled by real prefills of T - 1 random tokens
             (weights in the case's dtype); on CUDA replayed as a CUDA graph (bench.timing)
``compiled`` cases torch.compile the layer (train, prefill): the compiler fuses the layer's glue, the
implementation stays opaque (models/layers.py). Model cases with ``compiled`` compile every layer's glue for the
prefill and the decode steps (models.lm.LanguageModel.compile_glue; the mixers' implementations unchanged). Kinds: attention, swa, linear, rat (chunk_size L), rnn
(RAT with one chunk of T tokens). Timing, memory, NVML, statuses: as op-level cases (bench.runner). Before
timing, the layer with the implementation is compared with the same layer (same weights) with the family
reference on a small shape (models.checks.check_layer): output, input gradient (train), prefill + steps
vs forward (decode). Cost: projections (models/costs.py) + the op (bench/costs.py).

Model level: the paper's LM (models.lm: 24 x [mixer, FFN 4 Dm GELU], vocab 32000, random weights, the
case's dtype) generating ``new_tokens`` after a real ``seq_len``-token prompt prefill, at the largest batch
that fits (models.max_generate_batch; or a fixed batch), CUDA graphs for the decode steps where a step
recurs (models.lm), measured by models.throughput.measure_generation. One timed generate per case (the
warm-up and graph check run first at a small batch). Row: ms_median = prefill + decode wall time,
tokens_per_s = batch * new_tokens / that time, cache_bytes, batch = the batch used, details = everything
measured (decode-only tokens/s, max-batch search, graph notes). Mixers: attention, swa, linear, rat, rnn and
hybrids "<even>-<odd>" (rat-swa: the paper's RAT-SWA); a hybrid's families use their best available
implementation (PREFERENCE), single mixers every implementation matched by --impl.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time

import torch

from ratbench import impls
from ratbench.bench.costs import layer_cost, op_case  # noqa: F401  (re-exported: the layer cost lives with the op's)
from ratbench.bench.sweep import (  # noqa: F401  (KIND_FAMILY .. mixer_kinds re-exported: the expansion lives in bench.sweep)
    KIND_FAMILY,
    KIND_FIXED_PARAMS,
    PREFERENCE,
    Case,
    SweepError,
    SweepSpec,
    best_impl,
    expand_layer,
    expand_model,
    mixer_kinds,
    torch_dtype,
)

log = logging.getLogger(__name__)

def expand(spec: SweepSpec, level: str) -> list[Case]:
    """The layer- or model-level cases of ``spec`` (module docstring; bench.sweep.expand_layer, expand_model)."""
    if level == "layer":
        return expand_layer(spec)
    if level == "model":
        return expand_model(spec)
    raise SweepError(f"ratbench.bench.levels expands layer and model levels, not {level!r}")


# ----- running ----------------------------------------------------------------------------------------
def _layer_case(case: Case, fill: str, seed: int):  # -> models.cases.LayerCase
    from ratbench.models.cases import LayerCase
    from ratbench.models.layers import DEFAULT_WINDOW

    return LayerCase(case.kind, case.impl, case.mode, case.batch, case.seq_len, d_model=case.heads * case.head_dim,
                     heads=case.heads, head_dim=case.head_dim, chunk_size=case.chunk_size or 16,
                     window=case.window or DEFAULT_WINDOW, dtype=torch_dtype(case.dtype), device=case.device,
                     compile=bool(case.compiled), fill=fill, seed=seed)


def prepare_layer(case: Case, *, fill: str = "prefill", seed: int = 0):  # -> bench.cases.Prepared
    """The layer callable of ``case`` as the runner times it."""
    from ratbench.bench.cases import Prepared
    from ratbench.models.cases import layer_callable

    t0 = time.perf_counter()
    lc = layer_callable(_layer_case(case, fill, seed))
    if case.device == "cuda":
        torch.cuda.synchronize()
    fill_ms = (time.perf_counter() - t0) * 1e3 if case.mode == "decode" else None
    per_seq = None if lc.cache_bytes is None else lc.cache_bytes // case.batch
    call = {"train": "layer forward+backward", "prefill": "layer prefill", "decode": "layer step"}[case.mode]

    def reset() -> None:  # the closures reset what they need (the cache position) themselves
        return None

    prep = Prepared(lc.fn, reset, state=lc.cache, state_bytes_per_seq=per_seq, fill_ms=fill_ms,
                    graphable=case.mode == "decode", call=call)
    prep.layer_callable = lc  # type: ignore[attr-defined]  # keeps the layer alive with the closure
    return prep


def _check_small(case: Case) -> tuple[int, int]:
    """(batch, seq_len) of the layer accuracy check: several chunks, whole 128-token tiles."""
    # the chunk size of a one-kind layer with parameters of its own (not rnn's L = T, not a hybrid model's)
    own = case.kind in KIND_FAMILY and case.kind not in KIND_FIXED_PARAMS
    L = case.chunk_size if own and case.chunk_size else 1
    want = max(128, 4 * L)
    if case.window is not None:
        want = max(want, case.window + 64)
    unit = math.lcm(L, 128)
    return 2, min(case.seq_len, math.ceil(want / unit) * unit)


def check_layer_case(runner, case: Case, kind: str, impl_name: str, mode: str):  # -> models.checks.LayerCheck|None
    """The layer accuracy check for (kind, impl, mode) at a small shape, cached on the runner. None when the
    implementation is the family reference or checks are off."""
    from ratbench.models.checks import check_layer

    if not runner.spec.check_accuracy or impls.get(impl_name).is_reference:
        return None
    B, T = _check_small(case)
    if case.level == "model":  # the model's layers at its width; the check's own length
        T = max(T, 4 * (case.chunk_size or 1))
    key = ("layer-check", kind, impl_name, mode, T, case.heads, case.head_dim, case.chunk_size, case.window,
           case.dtype, case.device)
    return runner.cached_check(key, lambda: check_layer(
        kind, impl_name, mode=mode, d_model=case.heads * case.head_dim, heads=case.heads,
        head_dim=case.head_dim, chunk_size=case.chunk_size or 16, window=case.window or 1024, batch=B,
        seq_len=T, device=case.device, dtype=torch_dtype(case.dtype)), case.device, "the layer accuracy check")


def compiled_vs_eager_cpu(case: Case, seed: int = 0) -> tuple[float, float, float | None]:
    """(tolerance, relative error of the output, of the input gradient in train) of the case's layer
    torch.compile'd against the same layer (same weights, same input) run eagerly, at the case's own shape.

    Only for compiled cases on the CPU: there torch.compile is inductor's C++ code, which depends on the CPU
    that compiles it and on the shape (issue 14: compiled FlexAttention was wrong at T = 40 and right at 128 on
    one x86 CPU, and did not compile on another), so the check at a small shape, which runs the layer
    eagerly, says nothing about it. The eager layer itself is the one check_layer_case compares with the
    reference layer."""
    from ratbench.models.cases import _autocast, build_layer
    from ratbench.models.checks import REL_TOL, rel

    lc = _layer_case(case, "none", seed)
    layer = build_layer(lc)
    gen = torch.Generator(device=case.device).manual_seed(seed + 1)
    x = torch.randn(case.batch, case.seq_len, lc.d_model, generator=gen, device=case.device, dtype=lc.dtype)
    tol = REL_TOL.get(lc.dtype, 3e-2)
    if case.mode == "train":
        outs, grads = [], []
        for fwd in (layer, torch.compile(layer)):
            xi = x.clone().requires_grad_(True)
            with _autocast(lc):
                y = fwd(xi)
            y.float().mean().backward()
            outs.append(y.detach())
            grads.append(xi.grad)
        return tol, rel(outs[1], outs[0]), rel(grads[1], grads[0])
    outs = []
    for pre in (layer.prefill, torch.compile(layer.prefill)):
        cache = layer.init_cache(case.batch, case.seq_len, case.device, lc.dtype)
        with torch.no_grad(), _autocast(lc):
            outs.append(pre(cache, x))
    return tol, rel(outs[1], outs[0]), None


def _unavailable(case: Case, names: list[str], mode: str) -> tuple[str, str] | None:
    """(status, reason) when an implementation of the case cannot run it."""
    for name in names:
        try:
            cls = impls.load_class(name)
            reason = cls.unavailable_reason(case.device)
        except impls.UnavailableError as exc:
            reason = str(exc).split(": ", 1)[-1]
        if reason:
            return "unavailable", f"{name}: {reason}" if len(names) > 1 else reason
    op = op_case(case)  # rnn: chunk_size = T
    for name in names:
        params = {p.name: op.params.get(p.name) for p in impls.family(name.split("/", 1)[0]).params}
        reason = impls.get(name).unsupported_reason(mode=mode, device=case.device, dtype=torch_dtype(case.dtype),
                                                    head_dim=case.head_dim, seq_len=case.seq_len, batch=case.batch,
                                                    heads=case.heads, **params)
        if reason:
            return "unsupported", f"{name}: {reason}" if len(names) > 1 else reason
    return None


def run_case(runner, case: Case):  # -> bench.results.Row
    """One layer- or model-level case (the runner calls this for level != 'op'; exceptions become
    oom / error rows there)."""
    from ratbench.bench.results import Row

    if case.kind not in KIND_FAMILY and case.level == "layer":
        return Row.for_case(case, "unsupported", reason=f"unknown layer kind {case.kind!r}")
    if case.level == "layer":
        op = op_case(case)
        problem = impls.family(op.family).refuses(op.mode, op.seq_len, op.head_dim, op.params)
        if problem:
            return Row.for_case(case, "unsupported", reason=problem)
        bad = _unavailable(case, [case.impl], case.mode)
        if bad:
            return Row.for_case(case, bad[0], reason=bad[1])
        runner.mark_allocated()
        chk = check_layer_case(runner, case, case.kind, case.impl, case.mode)
        # (the layer check's errors are relative, ||a - b|| / ||b||: they go to details["check"], not to the
        # op level's absolute max_abs_err columns)
        acc = {"accuracy": "unchecked" if chk is None else ("pass" if chk.ok else "wrong")}
        if chk is not None and not chk.ok:
            return Row.for_case(case, "wrong", reason=f"layer vs the reference layer: {chk.detail}",
                                details={"check": dataclasses.asdict(chk)}, **acc)
        note = None if chk is not None else ("accuracy check turned off" if not runner.spec.check_accuracy
                                             else "the family reference itself")
        compiled_check = None
        if case.compiled and case.device == "cpu" and runner.spec.check_accuracy:
            tol, e_out, e_grad = compiled_vs_eager_cpu(case, seed=runner.spec.seed)
            compiled_check = {"rel_err": e_out, "rel_err_grad": e_grad, "tol": tol}
            errs = [e for e in (e_out, e_grad) if e is not None]
            if not all(math.isfinite(e) and e <= tol for e in errs):
                return Row.for_case(case, "wrong", accuracy="wrong",
                                    reason="compiled layer vs the same layer eager at this shape (inductor's C++ "
                                           f"code on the CPU): relative errors {', '.join(f'{e:.3g}' for e in errs)} "
                                           f"(bound {tol:.3g})",
                                    details={"check": None if chk is None else dataclasses.asdict(chk),
                                             "compiled_check": compiled_check})
        prep = prepare_layer(case, fill=runner.spec.decode_fill, seed=runner.spec.seed)
        row = runner.time_prepared(impls.get(case.impl), case, acc, note, prep)
        row.cache_bytes = None if prep.state_bytes_per_seq is None else prep.state_bytes_per_seq * case.batch
        if row.status == "ok" and case.mode == "decode":
            row.tokens_per_s = case.batch / (row.ms_median * 1e-3)
        row.details = {"d_model": case.heads * case.head_dim, "decode_fill": runner.spec.decode_fill,
                       "check": None if chk is None else dataclasses.asdict(chk)}
        if compiled_check is not None:
            row.details["compiled_check"] = compiled_check
        return row
    if case.level == "model":
        return _run_model(runner, case)
    raise ValueError(f"ratbench.bench.levels runs layer and model cases, not level {case.level!r}")


def _run_model(runner, case: Case):  # -> bench.results.Row
    from ratbench.bench.results import Row
    from ratbench.models.lm import LMConfig
    from ratbench.models.throughput import measure_generation

    names = case.impl.split("+")
    kinds = mixer_kinds(case.kind)
    bad = _unavailable(case, names, "decode")
    if bad:
        return Row.for_case(case, bad[0], reason=bad[1])
    runner.mark_allocated()
    checks = {}
    for kind in dict.fromkeys(kinds):
        name = next(n for n in names if n.split("/", 1)[0] == KIND_FAMILY[kind])
        chk = check_layer_case(runner, case, kind, name, "decode")
        if chk is not None:
            checks[f"{kind} {name}"] = dataclasses.asdict(chk)
            if not chk.ok:
                return Row.for_case(case, "wrong", reason=f"{kind} layer with {name} vs the reference layer: "
                                                          f"{chk.detail}", accuracy="wrong", details={"checks": checks})
    impl_map = {n.split("/", 1)[0]: n for n in names}
    cfg = LMConfig(vocab_size=runner.spec.vocab_size, d_model=case.heads * case.head_dim, n_layers=case.n_layers or 24,
                   heads=case.heads, head_dim=case.head_dim, mixer=case.kind, impls=impl_map,
                   chunk_size=case.chunk_size or 16, window=case.window or 1024,
                   linear_decay=True if case.decay is None else bool(case.decay))
    g = measure_generation(cfg, device=case.device, dtype=torch_dtype(case.dtype), prompt_len=case.seq_len,
                           n_new=case.new_tokens or 1024, batch=case.batch or None,
                           max_batch_limit=runner.spec.max_batch_limit,
                           graphs="auto" if runner.spec.cuda_graphs else "off", seed=runner.spec.seed,
                           compile_glue=bool(case.compiled))
    ms = (g.prefill_s + g.decode_s) * 1e3
    row = Row.for_case(case, "ok", ms_median=ms, ms_p20=ms, ms_p80=ms, n_samples=1, samples_ms=[round(ms, 3)],
                       timer="wall-clock (synchronised)", timed_call="generate (prefill + decode steps)",
                       first_call_ms=(g.warmup_s or 0) * 1e3, peak_mem_bytes=g.peak_bytes,
                       state_bytes_per_seq=g.cache_bytes // max(g.batch, 1),
                       accuracy="pass" if checks else "unchecked", tokens_per_s=g.tokens_per_s,
                       cache_bytes=g.cache_bytes, details={**g.to_dict(), "checks": checks})
    row.batch = g.batch
    log.info("model %s %s: batch %d, %.0f tokens/s", case.kind, case.impl, g.batch, g.tokens_per_s)
    return row
