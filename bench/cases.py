"""Inputs and the callables timed for each mode, built through the family interface.

The family decides what a case needs, in its declaration (impls/spec.py, impls/<family>/spec.py): rat a
forget gate f = sigmoid(randn) and a chunk_size, swa a window, linear an optional decay (log-gate
logsigmoid(randn) / 16, float32), full nothing more.

Modes (what one timed call does):
    train    forward + backward of the op: torch.autograd.grad of the output w.r.t. every input
             (q, k, v and f or decay), with a fixed random output gradient
    prefill  forward without grad; implementations with a decode path run ``prefill`` and so also
             write their decode state (KV cache, ring buffer, chunk cache, linear state)
    decode   one ``step`` at position T - 1 of a state already filled with T - 1 tokens (by
             ``prefill``, in batch slices when the prompt would not fit at once), batch B
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ratbench import impls
from ratbench.bench.sweep import Case, torch_dtype
from ratbench.impls.base import Implementation
from ratbench.impls.spec import FamilySpec

#: prompt tokens per prefill call when filling a decode state (bounds the prompt's memory)
FILL_TOKENS = 262144


# ----- the family adapter: each call looks the family's declaration up (impls/spec.py) ----------------
def family_of(case: Case) -> FamilySpec:
    """The declaration of the case's family."""
    return impls.family(case.family)


def make_inputs(case: Case, batch: int, seq_len: int, heads: int, *, seed: int = 0, requires_grad: bool = False,
                step: bool = False) -> dict[str, torch.Tensor]:
    """The op's tensor inputs for ``case`` at the given shape: q, k, v and the family's own (rat's f, linear's
    decay when the case has one). ``step`` gives one token, (B, H, D), instead of (B, T, H, D)."""
    device = torch.device(case.device)
    dtype = torch_dtype(case.dtype)
    gen = torch.Generator(device=device).manual_seed(seed)
    shape = (batch, heads, case.head_dim) if step else (batch, seq_len, heads, case.head_dim)

    def randn(shp: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shp, generator=gen, device=device, dtype=torch.float32)

    x = family_of(case).make_inputs(shape, case.params, randn, dtype)
    if requires_grad:
        for t in x.values():
            t.requires_grad_(True)
    return x


def forward(impl: Implementation, case: Case, x: dict[str, torch.Tensor]) -> torch.Tensor:
    """The family's forward with the case's parameters."""
    return family_of(case).call_forward(impl, x, case.params)


def init_state(impl: Implementation, case: Case, batch: int, max_len: int) -> object:
    kw = family_of(case).state_kwargs(case.params)
    return impl.init_state(batch, case.heads, case.head_dim, max_len, device=case.device,  # type: ignore[attr-defined]
                           dtype=torch_dtype(case.dtype), **kw)


def prefill(impl: Implementation, case: Case, state: object, x: dict[str, torch.Tensor]) -> torch.Tensor:
    return family_of(case).call_prefill(impl, state, x)


def step(impl: Implementation, case: Case, state: object, x: dict[str, torch.Tensor]) -> torch.Tensor:
    return family_of(case).call_step(impl, state, x)


def case_problem(case: Case) -> str | None:
    """A configuration the family itself rejects (reported as 'unsupported'), else None."""
    return family_of(case).refuses(case.mode, case.seq_len, case.head_dim, case.params)


# ----- what gets timed ----------------------------------------------------------------------------
@dataclass
class Prepared:
    """A case ready to time: ``reset()`` (untimed) then ``fn()`` (timed) is one measurement."""

    fn: Callable[[], object]
    reset: Callable[[], None]
    #: decode: the filled state; its cache bytes per sequence go into the row
    state: object | None = None
    state_bytes_per_seq: int | None = None
    #: time spent filling the decode state (not part of the measurement)
    fill_ms: float | None = None
    #: decode steps can be captured in a CUDA graph
    graphable: bool = False
    #: what one timed call runs: 'forward+backward', 'prefill' (writes the decode state), 'forward', 'step'
    call: str = ""


def _noop() -> None:
    return None


def prepare(impl: Implementation, case: Case, seed: int = 0) -> Prepared:
    """Allocate the inputs of ``case`` and return the callable to time."""
    B, T, H = case.batch, case.seq_len, case.heads
    if case.mode == "train":
        x = make_inputs(case, B, T, H, seed=seed, requires_grad=True)
        wrt = list(x.values())
        g = torch.Generator(device=case.device).manual_seed(seed + 1)
        grad_out = torch.randn(x["q"].shape, generator=g, device=case.device, dtype=torch.float32).to(x["q"].dtype)

        def train() -> object:
            out = forward(impl, case, x)
            return torch.autograd.grad(out, wrt, grad_out)

        return Prepared(train, _noop, call="forward+backward")

    if case.mode == "prefill":
        x = make_inputs(case, B, T, H, seed=seed)
        if impl.supports_decode:
            state = init_state(impl, case, B, T)

            def run_prefill() -> object:
                with torch.no_grad():
                    return prefill(impl, case, state, x)

            def reset_prefill() -> None:
                state.pos = 0  # type: ignore[attr-defined]

            return Prepared(run_prefill, reset_prefill, state=state, call="prefill")

        def run_forward() -> object:
            with torch.no_grad():
                return forward(impl, case, x)

        return Prepared(run_forward, _noop, call="forward")

    if case.mode == "decode":
        state, fill_ms = filled_state(impl, case, seed)
        tok = make_inputs(case, B, 1, H, seed=seed + 7, step=True)

        def run_step() -> object:
            with torch.no_grad():
                return step(impl, case, state, tok)

        def reset_step() -> None:
            state.pos = T - 1  # type: ignore[attr-defined]

        nbytes = None
        if hasattr(state, "nbytes_per_sequence"):
            nbytes = int(state.nbytes_per_sequence(T))  # type: ignore[attr-defined]
        return Prepared(run_step, reset_step, state=state, state_bytes_per_seq=nbytes, fill_ms=fill_ms, graphable=True,
                        call="step")

    raise ValueError(f"unknown mode {case.mode!r}")


def filled_state(impl: Implementation, case: Case, seed: int = 0) -> tuple[object, float]:
    """A decode state of batch B holding T - 1 tokens, filled by ``prefill`` in batch slices of at most
    FILL_TOKENS prompt tokens each (every state tensor has the batch as its first dim)."""
    B, T = case.batch, case.seq_len
    t0 = time.perf_counter()
    state = init_state(impl, case, B, T)
    T0 = T - 1
    if T0 > 0:
        sub = max(1, min(B, FILL_TOKENS // T0))
        with torch.no_grad():
            for b0 in range(0, B, sub):
                nb = min(sub, B - b0)
                x = make_inputs(case, nb, T0, case.heads, seed=seed + b0)
                if nb == B:
                    prefill(impl, case, state, x)
                    continue
                part = init_state(impl, case, nb, T)
                prefill(impl, case, part, x)
                _copy_batch_slice(state, part, b0, nb)
                del x, part
        state.pos = T0  # type: ignore[attr-defined]
    if case.device == "cuda":
        torch.cuda.synchronize()
    return state, (time.perf_counter() - t0) * 1e3


def _copy_batch_slice(state: object, part: object, b0: int, nb: int) -> None:
    if not dataclasses.is_dataclass(state):
        raise TypeError(f"decode states must be dataclasses to be filled in batch slices, got {type(state).__name__}")
    for f in dataclasses.fields(state):
        dst, src = getattr(state, f.name), getattr(part, f.name)
        if isinstance(dst, torch.Tensor):
            if src.shape[0] != nb or dst.shape[1:] != src.shape[1:]:
                raise ValueError(f"state field {f.name} does not have the batch as its first dim "
                                 f"({tuple(dst.shape)} vs {tuple(src.shape)}); cannot fill in slices")
            dst[b0:b0 + nb].copy_(src)
        elif f.name != "pos" and dst != src:
            raise ValueError(f"state field {f.name} differs between batch slices ({dst!r} vs {src!r})")
