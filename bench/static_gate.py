"""Static kernel gate: compile every Triton kernel of the project for sm_90 (no GPU needed) at the
configurations the GPU runs use, and check registers, spills, shared memory and the SASS mix.

How the configurations are found: each scenario (an implementation and mode at a GPU preset shape, bf16,
H = 16, D = 128; rat/gluon also at D = 64, L = 64, L = 1 and T = 1000 / 1008) is run with tensors on torch's
``meta`` device while ``JITFunction`` launches are intercepted. Each launch records the kernel, its arguments (types,
integer values), constexprs, ``num_warps`` and ``num_stages``, i.e. what the wrappers really launch on
the GPU (tile configs chosen by sequence length included), without hand-kept signature tables. Each
distinct launch is then compiled with ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90,
32))``, with the run-time specialisation Triton itself would apply (16-divisible integers and pointers
marked, 1 folded to a constant). ``cuobjdump -res-usage`` and ``-sass`` (shipped in the triton package)
give registers, stack, local memory and the instruction mix.

Checks against the committed baseline (reports/baselines/static-sm90.json), per kernel id:
    fail  a kernel that spills (STL/LDL, local memory or stack) where the baseline did not, or spills
          more; a kernel that had HGMMA and has none; a kernel whose wgmma ptxas serialized (every HGMMA its
          own group) where the baseline's were not; shared memory over 232448 bytes (the H100/H200
          per-block opt-in limit); a launch that no longer compiles; a kernel with spills that is not
          in the baseline; a kernel whose TTGIR keeps more calls than the baseline's (a @jit helper left as a
          function: one with an early return inside a loop has several blocks, which the inliner cannot put
          into the loop's body; rat/gluon's f22 compiled so at first, impls/rat/gluon/NOTES.md)
    fail  (whatever the baseline) an HGMMA that reads wgmma descriptor registers no write reaches along forward
          paths (bench/sass_flow.py): ptxas 12.8 left them unwritten on one branch of f22's if / else, and
          the GPU faulted with an out-of-range shared address (NOTES.md, "Twenty-sixth session")
    note  register changes, fewer HGMMA, kernels gone or new
A kernel whose id changed only because a constexpr was added or removed (same kernel, warps, stages,
equal values on the shared constexprs) is compared with its predecessor.
Output is sorted and contains no timings or paths: the same source gives the same JSON.

    python run_bench.py static [--baseline FILE] [--update] [--jobs N] [--out DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ratbench.bench.sass_flow import parse as parse_sass
from ratbench.bench.sass_flow import unwritten_hgmma_reads

log = logging.getLogger(__name__)

SMEM_LIMIT = 232448  # bytes per block, opt-in maximum on sm_90 (H100/H200: 227 KB)
DEFAULT_BASELINE = Path("reports/baselines/static-sm90.json")
OPS = ("HGMMA", "HMMA", "LDL", "STL", "LDGSTS", "UTMALDG", "UTMAREDG", "FFMA", "BAR", "SHFL", "LDS", "STS", "LDG", "STG")


def triton_bin(tool: str) -> str:
    import triton

    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", tool)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{tool} not found at {path}: the triton package ships it with the NVIDIA backend")
    return path


# ----- compiling one kernel -----------------------------------------------------------------------
def compile_sm90(fn, signature: dict, constexprs: dict, attrs: dict, num_warps: int, num_stages: int,
                 maxnreg: int | None = None):
    """``triton.compile`` for sm_90. ``signature`` maps every parameter name to its type (constexprs
    included, as "constexpr"); ``attrs`` maps (index,) to [["tt.divisibility", 16]]. Gluon kernels
    (``fn.is_gluon()``) compile from their own AST source; ``maxnreg`` as the launch passes it."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if getattr(fn, "is_gluon", lambda: False)():
        from triton.experimental.gluon._runtime import GluonASTSource as ASTSource
    src = ASTSource(fn, signature, constexprs, attrs)
    options = {"num_warps": num_warps, "num_stages": num_stages}
    if maxnreg is not None:
        options["maxnreg"] = maxnreg
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)


def sass_stats(cubin: bytes) -> tuple[dict, str]:
    """Registers, stack, shared and local memory (cuobjdump -res-usage) and instruction counts."""
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
        path = f.name
    try:
        sass = subprocess.run([triton_bin("cuobjdump"), "-sass", path], capture_output=True, text=True,
                              check=True).stdout
        res = subprocess.run([triton_bin("cuobjdump"), "-res-usage", path], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(path)
    m = re.search(r"REG:(\d+) STACK:(\d+) SHARED:(\d+) LOCAL:(\d+)", res)
    out: dict = {"res": m.group(0) if m else res.strip()}
    if m:
        out.update(regs=int(m.group(1)), stack=int(m.group(2)), shared_static=int(m.group(3)), local=int(m.group(4)))
    out["instructions"] = len(parse_sass(sass))
    for op in OPS:
        out[op] = len(re.findall(rf"\b{op}\b", sass))
    # an HGMMA that closes its own wgmma group: the last k-step of each product, or every one of them where ptxas
    # serialized the pipeline (its info C7512, "insufficient register resources"; each then waits for the last)
    out["HGMMA_gsb0"] = len(re.findall(r"\bHGMMA\.[^;]*\bgsb0\b", sass))
    out["hgmma_unwritten"] = len(unwritten_hgmma_reads(sass))  # wgmma descriptors ptxas left unwritten
    return out, sass


# ----- finding the launches -----------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """One implementation call the GPU runs make, at the shape that picks its kernel configs."""

    name: str
    impl: str
    mode: str  # train | prefill | decode
    seq_len: int
    batch: int = 1
    heads: int = 16
    head_dim: int = 128
    dtype: str = "bfloat16"
    params: tuple = ()  # family parameters as (name, value) pairs
    config: str | None = None  # "module:ATTR" of a config object to construct the implementation with


#: GPU presets: bf16, H 16, D 128, RAT chunk 16, SWA window 1024, linear with and without decay;
#: sequence lengths that select each tile config (rat/triton: SHORT_CONFIG below 2048 chunks,
#: DEFAULT_CONFIG from it) and decode batches that select the split-K variants.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("rat train T=4k", "rat/triton", "train", 4096, params=(("chunk_size", 16),)),
    Scenario("rat train T=32k", "rat/triton", "train", 32768, params=(("chunk_size", 16),)),
    Scenario("rat prefill T=4k", "rat/triton", "prefill", 4096, params=(("chunk_size", 16),)),
    Scenario("rat prefill T=32k", "rat/triton", "prefill", 32768, params=(("chunk_size", 16),)),
    Scenario("rat decode T=32k", "rat/triton", "decode", 32768, batch=64, params=(("chunk_size", 16),)),
    Scenario("rat decode T=32k split", "rat/triton", "decode", 32768, batch=1, params=(("chunk_size", 16),),
             config="ratbench.bench.static_gate:RAT_SPLIT_CONFIG"),
    Scenario("rat gluon train T=4k", "rat/gluon", "train", 4096, params=(("chunk_size", 16),)),  # writer, 2 key blocks
    Scenario("rat gluon train T=32k", "rat/gluon", "train", 32768, params=(("chunk_size", 16),)),
    Scenario("rat gluon train T=128k", "rat/gluon", "train", 131072, params=(("chunk_size", 16),)),  # Gluon backward
    Scenario("rat gluon prefill T=4k", "rat/gluon", "prefill", 4096, params=(("chunk_size", 16),)),
    # the issue's other shape families: head dim 64 (f6's exponentials, the Gluon backward without the writer from 8k)
    # and chunks of 64 (the Gluon backward with the writer below 16k)
    Scenario("rat gluon train D=64 T=4k", "rat/gluon", "train", 4096, head_dim=64, params=(("chunk_size", 16),)),
    Scenario("rat gluon train D=64 T=32k", "rat/gluon", "train", 32768, head_dim=64, params=(("chunk_size", 16),)),
    Scenario("rat gluon prefill D=64 T=4k", "rat/gluon", "prefill", 4096, head_dim=64, params=(("chunk_size", 16),)),
    Scenario("rat gluon prefill D=64 T=64k", "rat/gluon", "prefill", 65536, head_dim=64,  # f25: three warpgroups
             params=(("chunk_size", 16),)),
    Scenario("rat gluon train D=64 T=128k", "rat/gluon", "train", 131072, head_dim=64,  # f25b: three warpgroups
             params=(("chunk_size", 16),)),
    Scenario("rat gluon train L=64 T=4k", "rat/gluon", "train", 4096, params=(("chunk_size", 64),)),
    Scenario("rat gluon prefill L=64 T=4k", "rat/gluon", "prefill", 4096, params=(("chunk_size", 64),)),
    # launch paths the check preset takes that the timed shapes do not: every row a chunk end (L 1), and a length
    # that is not a multiple of the 128-row tile (o stored without TMA)
    Scenario("rat gluon train L=1 T=4k", "rat/gluon", "train", 4096, params=(("chunk_size", 1),)),
    Scenario("rat gluon prefill L=1 T=4k", "rat/gluon", "prefill", 4096, params=(("chunk_size", 1),)),
    Scenario("rat gluon train T=1008", "rat/gluon", "train", 1008, params=(("chunk_size", 16),)),
    Scenario("rat gluon prefill T=1000", "rat/gluon", "prefill", 1000, params=(("chunk_size", 16),)),
    Scenario("full train T=4k", "full/triton", "train", 4096),
    Scenario("full train T=32k", "full/triton", "train", 32768),
    Scenario("full prefill T=4k", "full/triton", "prefill", 4096),
    Scenario("full decode T=32k", "full/triton", "decode", 32768, batch=64),
    Scenario("full decode T=32k split", "full/triton", "decode", 32768, batch=1,
             config="ratbench.bench.static_gate:FULL_SPLIT_CONFIG"),
    Scenario("swa train W=1024", "swa/triton", "train", 4096, params=(("window", 1024),)),
    Scenario("swa prefill W=1024", "swa/triton", "prefill", 4096, params=(("window", 1024),)),
    Scenario("swa decode W=1024", "swa/triton", "decode", 4096, batch=64, params=(("window", 1024),)),
    Scenario("linear train", "linear/triton", "train", 4096, params=(("decay", False),)),
    Scenario("linear train decay", "linear/triton", "train", 4096, params=(("decay", True),)),
    Scenario("linear prefill", "linear/triton", "prefill", 4096, params=(("decay", False),)),
    Scenario("linear prefill decay", "linear/triton", "prefill", 4096, params=(("decay", True),)),
    Scenario("linear decode", "linear/triton", "decode", 4096, batch=64, params=(("decay", False),)),
    Scenario("linear decode decay", "linear/triton", "decode", 4096, batch=64, params=(("decay", True),)),
)


def __getattr__(name: str):  # *_SPLIT_CONFIG, built lazily: the split decode the GPU picks for small batches
    # (on the meta device the wrappers cannot ask for the SM count, so the split is forced)
    if name == "RAT_SPLIT_CONFIG":
        from ratbench.impls.rat.triton import DEFAULT_CONFIG

        return dataclasses.replace(DEFAULT_CONFIG, step_splits=4)
    if name == "FULL_SPLIT_CONFIG":
        from ratbench.impls.full.triton import DEFAULT_CONFIG as FULL_DEFAULT

        return dataclasses.replace(FULL_DEFAULT, step_splits=4)
    raise AttributeError(name)


@dataclass
class Launch:
    module: str
    kernel: str
    signature: dict
    constexprs: dict
    attrs: list  # indices of parameters marked 16-divisible
    num_warps: int
    num_stages: int
    scenarios: list[str] = field(default_factory=list)
    maxnreg: int | None = None  # the launch's register cap (warp-specialized Gluon kernels)

    @property
    def qualname(self) -> str:
        """``impls.rat.triton_kernels.fwd_kernel``: module and kernel below the ratbench namespace, as the
        committed baselines name them (ids and records do not depend on the import name)."""
        return f"{self.module.removeprefix('ratbench.')}.{self.kernel}"

    @property
    def ident(self) -> str:
        ce = " ".join(f"{k}={v}" for k, v in sorted(self.constexprs.items()))
        data = next((d for d in map(_data_dtype, self.signature.values()) if d), "")
        spec = json.dumps([self.signature, sorted(self.constexprs.items()), self.attrs], sort_keys=True, default=str)
        h = hashlib.sha1(spec.encode()).hexdigest()[:8]
        mod = self.module.removeprefix("ratbench.")
        fam = mod.split(".")[1] if mod.count(".") >= 1 else mod
        reg = "" if self.maxnreg is None else f" r{self.maxnreg}"
        return f"{fam}.{self.kernel} [{ce}] w{self.num_warps} s{self.num_stages}{reg} {data} #{h}"


def _data_dtype(arg_type: str) -> str | None:
    """The element type a launch argument carries: ``*bf16`` (a pointer) or ``tensordesc<bf16[...]...>`` (a TMA
    descriptor, the Gluon kernels' inputs) give ``bf16``; scalars and constexprs give None."""
    if arg_type.startswith("*"):
        return arg_type[1:]
    if arg_type.startswith("tensordesc<"):
        return arg_type.removeprefix("tensordesc<").split("[", 1)[0]
    return None


def _specialize(arg: object, kp) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """(type, 16-divisible) as Triton's launcher specialises ``arg`` for parameter ``kp``."""
    try:
        from triton.backends.compiler import BaseBackend
        from triton.runtime.jit import native_specialize_impl

        spec = not getattr(kp, "do_not_specialize", False)
        align = not getattr(kp, "do_not_specialize_on_alignment", False)
        ty, key = native_specialize_impl(BaseBackend, arg, False, spec, align)
        return ty, isinstance(key, str) and "D" in key
    except ImportError:  # older triton: the same rules by hand
        import torch

        if isinstance(arg, torch.Tensor):
            short = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32", torch.int32: "i32",
                     torch.int64: "i64", torch.float64: "fp64", torch.int8: "i8", torch.uint8: "u8"}
            return "*" + short[arg.dtype], True
        if isinstance(arg, bool):
            return "u1", False
        if isinstance(arg, int):
            if arg == 1:
                return "constexpr", False
            return ("i32" if -2**31 <= arg < 2**31 else "i64"), arg % 16 == 0
        if isinstance(arg, float):
            return "fp32", False
        if arg is None:
            return "constexpr", False
        raise TypeError(f"cannot specialise argument of type {type(arg).__name__}") from None


def _record(jit, args: tuple, kwargs: dict, scenario: str, out: list[Launch]) -> None:  # type: ignore[no-untyped-def]
    params = jit.params
    names = [p.name for p in params]
    bound: dict[str, object] = dict(zip(names, args))
    warps, stages = kwargs.pop("num_warps", 4), kwargs.pop("num_stages", 3)
    maxnreg = kwargs.pop("maxnreg", None)
    bound.update({k: v for k, v in kwargs.items() if k in names})
    for p in params:
        if p.name not in bound and p.has_default:
            bound[p.name] = p.default
    sig, consts, attrs = {}, {}, []
    for i, p in enumerate(params):
        v = bound[p.name]
        if p.is_constexpr:
            sig[p.name], consts[p.name] = "constexpr", v
            continue
        ty, div = _specialize(v, p)
        sig[p.name] = ty
        if ty == "constexpr":
            consts[p.name] = v
        elif div:
            attrs.append(i)
    out.append(Launch(jit.fn.__module__, jit.fn.__name__, sig, consts, attrs, int(warps), int(stages), [scenario],
                      maxnreg=None if maxnreg is None else int(maxnreg)))


@contextlib.contextmanager
def _intercept(scenario: str, out: list[Launch]) -> Iterator[None]:
    from triton.runtime.jit import JITFunction

    orig = JITFunction.__getitem__

    def getitem(self, grid):  # type: ignore[no-untyped-def]
        return lambda *a, **kw: _record(self, a, dict(kw), scenario, out)

    JITFunction.__getitem__ = getitem  # type: ignore[method-assign]
    try:
        yield
    finally:
        JITFunction.__getitem__ = orig  # type: ignore[method-assign]


def _drive(sc: Scenario) -> None:
    """Run the scenario's calls on meta tensors (kernels intercepted, nothing computed), through the public
    forward / init_state / prefill / step as the family's declaration calls them (impls/spec.py)."""
    import importlib

    import torch

    from ratbench import impls
    from ratbench.bench import cases as C
    from ratbench.bench.sweep import Case, case_fields

    cls = impls.load_class(sc.impl)
    if sc.config:
        mod, attr = sc.config.split(":")
        impl = cls(getattr(importlib.import_module(mod), attr))  # type: ignore[call-arg]
    else:
        impl = cls()
    # the public checks refuse the meta device; the argument checks and the kernels' own checks still run
    impl.unavailable_reason = lambda device: None  # type: ignore[method-assign]
    case = Case(impl=sc.impl, mode=sc.mode, batch=sc.batch, seq_len=sc.seq_len, heads=sc.heads,
                head_dim=sc.head_dim, dtype=sc.dtype, device="meta", **case_fields(dict(sc.params)))
    fam = C.family_of(case)
    dt = getattr(torch, sc.dtype)
    B, T, H, D = sc.batch, sc.seq_len, sc.heads, sc.head_dim
    meta = torch.device("meta")

    def inputs(step: bool) -> dict:
        shape = (B, H, D) if step else (B, T, H, D)
        return fam.make_inputs(shape, case.params, lambda shp: torch.empty(shp, device=meta), dt)

    if sc.mode == "train":
        x = inputs(False)
        for t in x.values():
            t.requires_grad_(True)
        o = fam.call_forward(impl, x, case.params)
        torch.autograd.grad(o, list(x.values()), torch.empty_like(o))
    elif sc.mode in ("prefill", "decode"):
        state = impl.init_state(B, H, D, T, device=meta, dtype=dt, **fam.state_kwargs(case.params))  # type: ignore[attr-defined]
        with torch.no_grad():
            if sc.mode == "prefill":
                fam.call_prefill(impl, state, inputs(False))
            else:
                state.pos = T - 1
                fam.call_step(impl, state, inputs(True))
    else:
        raise ValueError(f"unknown mode {sc.mode!r}")


def scenarios_for(names: Sequence[str] | None = None, like: str | None = None) -> tuple[Scenario, ...]:
    """The scenarios to compile: all (``names`` None), those of the implementations ``names``, or, with ``like``,
    ``like``'s scenarios driven through the one implementation in ``names`` (a candidate registered beside it, e.g.
    a subclass with other config switches). ValueError names what does not match."""
    if names is None:
        if like is not None:
            raise ValueError("--like goes with --impl NAME (the implementation to drive through its scenarios)")
        return SCENARIOS
    with_scenarios = ", ".join(sorted({sc.impl for sc in SCENARIOS}))
    if like is not None:
        if len(names) != 1:
            raise ValueError(f"--like takes one implementation in --impl, got {len(names)}")
        own = [sc for sc in SCENARIOS if sc.impl == like]
        if not own:
            raise ValueError(f"--like {like}: no scenario of the static gate runs it (implementations with "
                             f"scenarios: {with_scenarios})")
        return tuple(dataclasses.replace(sc, name=f"{names[0]} as {sc.name}", impl=names[0]) for sc in own)
    missing = [n for n in names if not any(sc.impl == n for sc in SCENARIOS)]
    if missing:
        raise ValueError(f"--impl {','.join(missing)}: no scenario of the static gate runs it (with scenarios: "
                         f"{with_scenarios}; a candidate of your own: --register it and give --like with the "
                         "implementation whose scenarios it should take)")
    return tuple(sc for sc in SCENARIOS if sc.impl in names)


def collect_launches(scenarios: tuple[Scenario, ...] = SCENARIOS) -> list[Launch]:
    """Every distinct kernel launch of the scenarios (merged by id, scenarios listed)."""
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise RuntimeError("the static gate compiles for sm_90: run it without TRITON_INTERPRET=1 (the "
                           "interpreter replaces the kernels it needs to compile)")
    found: list[Launch] = []
    for sc in scenarios:
        with _intercept(sc.name, found):
            _drive(sc)
    merged: dict[str, Launch] = {}
    for ln in found:
        if ln.ident in merged:
            if ln.scenarios[0] not in merged[ln.ident].scenarios:
                merged[ln.ident].scenarios.append(ln.scenarios[0])
        else:
            merged[ln.ident] = ln
    return [merged[k] for k in sorted(merged)]


# ----- compiling them -----------------------------------------------------------------------------
def _compile_launch(ln: Launch) -> dict:
    """Worker: compile one launch and measure it (runs in a separate process)."""
    import importlib

    os.environ.pop("TRITON_INTERPRET", None)
    mod = importlib.import_module(ln.module)
    fn = getattr(mod, ln.kernel)
    attrs = {(i,): [["tt.divisibility", 16]] for i in ln.attrs}
    rec: dict = {"id": ln.ident, "kernel": ln.qualname, "constexprs": {k: _jsonable(v) for k, v in
                                                                        sorted(ln.constexprs.items())},
                 "num_warps": ln.num_warps, "num_stages": ln.num_stages, "scenarios": sorted(ln.scenarios)}
    try:
        ck = compile_sm90(fn, ln.signature, ln.constexprs, attrs, ln.num_warps, ln.num_stages, ln.maxnreg)
        st, _ = sass_stats(ck.asm["cubin"])
    except Exception as exc:  # noqa: BLE001 - a kernel that does not compile is a gate failure, reported
        rec["error"] = f"{type(exc).__name__}: {str(exc).strip()[:500]}"
        return rec
    st.pop("res", None)
    rec.update(st)
    rec["calls"] = ttgir_calls(ck.asm["ttgir"])
    rec["shared"] = int(ck.metadata.shared)
    rec["spills"] = st.get("LDL", 0) + st.get("STL", 0)
    return rec


def ttgir_calls(ttgir: str) -> int:
    """Calls left in a kernel's TTGIR: helpers the inliner did not inline (0 for every kernel of the baseline)."""
    return len(re.findall(r"\btt\.call @", ttgir))


def _jsonable(v: object) -> object:
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def measure(jobs: int | None = None, scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict:
    """Compile every launch of ``scenarios`` (in ``jobs`` processes) and return the report (deterministic)."""
    import multiprocessing as mp

    import triton

    launches = collect_launches(scenarios)
    jobs = jobs or min(len(launches), os.cpu_count() or 1)
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            recs = list(ex.map(_compile_launch, launches))
    else:
        recs = [_compile_launch(ln) for ln in launches]
    return {"target": "cuda sm_90 (GPUTarget('cuda', 90, 32))", "triton": triton.__version__,
            "smem_limit": SMEM_LIMIT, "kernels": {r["id"]: r for r in sorted(recs, key=lambda r: r["id"])}}


# ----- checking -----------------------------------------------------------------------------------
def _spill(r: dict) -> int:
    return r.get("spills", 0) + (1 if r.get("local", 0) or r.get("stack", 0) else 0)


def serialized(r: dict) -> bool:
    """Whether a kernel's wgmma pipeline was serialized by ptxas: more than one HGMMA and every one closing a group of
    its own (each k-step then waits for the one before; a product of several k-steps closes one group)."""
    return r.get("HGMMA", 0) > 1 and r.get("HGMMA_gsb0", 0) == r.get("HGMMA", 0)


def _predecessor(r: dict, base: dict, current: set[str]) -> tuple[dict | None, str | None]:
    """A baseline entry of the same kernel, warps and stages whose constexprs agree with ``r``'s on
    every name they share (a constexpr was added or removed, e.g. a new switch left at its default);
    None unless exactly one such entry no longer matches a current id."""
    hits = []
    for bid, b in base.items():
        if bid in current or b.get("kernel") != r.get("kernel") or (b.get("num_warps"), b.get("num_stages")) != (
                r.get("num_warps"), r.get("num_stages")):
            continue
        bc, rc = b.get("constexprs", {}), r.get("constexprs", {})
        if set(bc) != set(rc) and all(bc[k] == rc[k] for k in set(bc) & set(rc)):
            hits.append(bid)
    return (base[hits[0]], hits[0]) if len(hits) == 1 else (None, None)


def check(report: dict, baseline: dict | None, *, partial: bool = False) -> tuple[list[str], list[str]]:
    """(failures, notes) of a report against a baseline (None: absolute rules only); ``partial``: the report holds
    some scenarios only, so the baseline's other kernels are not reported gone."""
    fails, notes = [], []
    base = (baseline or {}).get("kernels", {})
    for kid, r in report["kernels"].items():
        if "error" in r:
            fails.append(f"{kid}: does not compile: {r['error']}")
            continue
        if r.get("hgmma_unwritten", 0):
            fails.append(f"{kid}: {r['hgmma_unwritten']} HGMMA read wgmma descriptor registers that no write reaches "
                         "(ptxas left them unwritten on a branch: the GPU faults with an out-of-range shared address; "
                         "bench/sass_flow.py)")
        if r["shared"] > SMEM_LIMIT:
            fails.append(f"{kid}: shared memory {r['shared']} B > {SMEM_LIMIT} B per block (sm_90 limit)")
        b = base.get(kid)
        if b is None and baseline is not None:
            b, prev = _predecessor(r, base, set(report["kernels"]))
            if b is not None:
                notes.append(f"{kid}: compared with {prev} (same kernel and launch; constexprs added or removed)")
        if r.get("calls", 0) > (b or {}).get("calls", 0):
            fails.append(f"{kid}: {r['calls']} helper call(s) left in its TTGIR (a @jit helper not inlined: an early "
                         "return inside a loop's callee; return through structured if / else instead)")
        if b is None or "error" in b:
            if baseline is not None:
                notes.append(f"{kid}: new kernel (not in the baseline)")
            if _spill(r) and baseline is not None:
                fails.append(f"{kid}: new kernel spills (LDL+STL {r['spills']}, local {r.get('local')} B, "
                             f"stack {r.get('stack')} B)")
            if serialized(r) and baseline is not None:
                fails.append(f"{kid}: new kernel with serialized wgmma ({r['HGMMA']} HGMMA, each its own group)")
            continue
        if r.get("local", 0) > b.get("local", 0) or r.get("stack", 0) > b.get("stack", 0) \
                or r["spills"] > b.get("spills", 0):
            fails.append(f"{kid}: new spills: LDL+STL {b.get('spills', 0)} -> {r['spills']}, local "
                         f"{b.get('local', 0)} -> {r.get('local', 0)} B, stack {b.get('stack', 0)} -> {r.get('stack', 0)} B")
        if serialized(r) and not serialized(b):
            fails.append(f"{kid}: its wgmma are serialized ({r['HGMMA']} HGMMA, each its own group: ptxas's C7512, "
                         "too few registers for the wgmma pipeline), not in the baseline")
        if b.get("HGMMA", 0) > 0 and r.get("HGMMA", 0) == 0:
            fails.append(f"{kid}: lost HGMMA ({b['HGMMA']} -> 0): its matrix products left the wgmma path")
        elif r.get("HGMMA", 0) < b.get("HGMMA", 0):
            notes.append(f"{kid}: HGMMA {b['HGMMA']} -> {r['HGMMA']}")
        if r.get("regs") != b.get("regs"):
            notes.append(f"{kid}: registers {b.get('regs')} -> {r.get('regs')}")
        if r["shared"] != b.get("shared"):
            notes.append(f"{kid}: shared memory {b.get('shared')} -> {r['shared']} B")
    if baseline is not None and not partial:
        for kid in sorted(set(base) - set(report["kernels"])):
            notes.append(f"{kid}: gone (in the baseline, not launched now)")
    return fails, notes


def to_markdown(report: dict, fails: list[str], notes: list[str], baseline: str | None) -> str:
    verdict = "FAIL" if fails else "PASS"
    lines = [f"### Static kernel gate (sm_90): {verdict}", "",
             f"{len(report['kernels'])} kernel launches compiled with triton {report['triton']}"
             + (f", compared with `{baseline}`" if baseline else ", no baseline") + ".", ""]
    if fails:
        lines += ["Failures:", ""] + [f"- {f}" for f in fails] + [""]
    if notes:
        lines += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["| kernel | regs | spills (LDL+STL) | local B | stack B | shared B | HGMMA | HMMA | instructions |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for kid, r in report["kernels"].items():
        if "error" in r:
            lines.append(f"| {kid} | error | | | | | | | |")
            continue
        lines.append(f"| {kid} | {r.get('regs')} | {r['spills']} | {r.get('local')} | {r.get('stack')} | "
                     f"{r['shared']} | {r.get('HGMMA')} | {r.get('HMMA')} | {r.get('instructions')} |")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, base: dict | None) -> int:
    """``run_bench.py static`` (arguments: bench/gate_cli.py, which checks them and reads the baseline
    ``base`` first): measure, check, print, write. Exit 0 pass, 1 fail, 2 unusable."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.pop("TRITON_INTERPRET", None) if os.environ.get("TRITON_INTERPRET") == "0" else None
    t0 = time.perf_counter()
    scenarios = getattr(args, "scenarios", None) or SCENARIOS
    try:
        if args.list:
            for ln in collect_launches(scenarios):
                print(ln.ident, " <- ", ", ".join(ln.scenarios))
            return 0
        report = measure(args.jobs, scenarios)
    except (RuntimeError, FileNotFoundError, ImportError) as exc:
        print(f"run_bench.py static: error: {exc}", file=sys.stderr)
        return 2
    fails, notes = check(report, base, partial=scenarios is not SCENARIOS)
    md = to_markdown(report, fails, notes, None if base is None else args.baseline)
    print(md)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "static.md").write_text(md, encoding="utf-8")
        (out / "static.json").write_text(json.dumps({**report, "failures": fails, "notes": notes}, indent=2) + "\n",
                                         encoding="utf-8")
    if args.update:
        bp = Path(args.baseline if args.baseline != "none" else DEFAULT_BASELINE)
        bp.parent.mkdir(parents=True, exist_ok=True)
        bp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"baseline written: {bp}", file=sys.stderr)
    print(f"static gate: {'FAIL' if fails else 'PASS'} ({len(report['kernels'])} kernels, "
          f"{time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.update:
        return 0
    return 1 if fails else 0
