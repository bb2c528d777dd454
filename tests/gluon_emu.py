"""Gluon kernels run on the CPU, for tests: each kernel's own Python code executed with torch tensors in place of
Gluon's (triton.experimental.gluon has no interpreter; impls/rat/gluon/NOTES.md).

`emulate(kernel)` returns an object that launches like the kernel (`emulate(k)[grid](*args, **kw)`); tests put it in
place of the kernel in its module (monkeypatch), so the host code around the launch (descriptors, checks) runs as it
is. What runs, and how it maps Gluon's semantics:
- The CTAs of the grid run as threads, at most `resident` of them at once, taken in program-id order as the
  hardware dispatches them (cross-CTA flags then see the same waits as on a GPU); `gl.warp_specialize` runs each
  partition in a thread of its own. Values are whole-partition tensors, as in Gluon's own model: a layout never
  changes a value, so layouts are accepted and ignored.
- Shared memory is a torch tensor per allocation (index / slice / permute / reshape are views); an mbarrier counts
  arrivals and transaction bytes per phase (`expect` is arrive.expect_tx; one `arrive` per partition, as Gluon
  issues it), and `wait(bar, phase)` blocks until that phase has completed.
- TMA loads copy at once (zeros past the tensor's bounds) and complete their bytes on the barrier; TMA stores and
  reductions (the part inside the bounds) are done as late as they may be, at the store_wait that needs them. An
  asynchronous `warpgroup_mma` is computed when a `warpgroup_mma_wait` retires it. Products are float32 sums of
  the 16-bit operands (exact products; the order of the sums differs from the tensor cores').
- Races on shared memory raise HazardError, whatever the timing: reading a buffer (wgmma, load, TMA store) that a
  TMA load writes before a wait has seen the load's phase; writing one (TMA load, store) that an unretired wgmma or
  a TMA store not yet waited for reads. After each mbarrier release the releasing thread waits until the threads
  of its CTA that were waiting have run up to their next wait, so that the refill a release allows comes first.
- Global memory is reached through pointers into the tensors' storage; a load or store outside the storage raises.
  Memory is sequentially consistent here: a missing fence or a wrong memory order is not caught.
- `gl.inline_asm_elementwise` runs only the asm snippets registered in `ASM` (the project's flags and fences); any
  other, and any Gluon call not emulated, raises NotImplementedError naming it.
A wait that no thread can end (a wrong phase, a missing arrival, a flag never set) raises DeadlockError after
`deadlock_s` seconds without progress anywhere.
"""
from __future__ import annotations

import re
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import torch

_LOCK = threading.RLock()
_COND = threading.Condition(_LOCK)
_TLS = threading.local()


class DeadlockError(RuntimeError):
    """Every thread waits and nothing changed for the deadlock timeout."""


class HazardError(RuntimeError):
    """Shared memory read or overwritten while an asynchronous operation on it is not done (a race on the GPU)."""


class _Run:
    """State of one emulated launch: the first error of any thread, an abort flag, progress for the deadlock check."""

    def __init__(self, deadlock_s: float) -> None:
        self.epoch = 0
        self.error: BaseException | None = None
        self.abort = False
        self.progress = time.monotonic()
        self.deadlock_s = deadlock_s
        self.grid = [1, 1, 1]

    def touch(self) -> None:
        self.progress = time.monotonic()

    def check(self, what: str) -> None:
        """Raise if another thread failed, or DeadlockError (recorded for the launch) if nothing anywhere has
        changed for the deadlock timeout while this thread `what` (waits forever on ..., spins ...)."""
        if self.abort:
            raise RuntimeError("aborted: another thread of the launch failed")
        if time.monotonic() - self.progress > self.deadlock_s:
            err = DeadlockError(f"gluon_emu: {_where()} {what}")
            self.fail(err)
            raise err

    def fail(self, exc: BaseException) -> None:
        with _COND:
            if self.error is None:
                self.error = exc
            self.abort = True
            _COND.notify_all()


def _run() -> _Run:
    return _TLS.run


class _CTA:
    """What the partitions of one CTA share: their states (for _quiesce), the asynchronous operations in flight on
    shared memory (unretired wgmma, TMA loads not waited for, TMA stores not done)."""

    def __init__(self) -> None:
        self.threads: dict[int, list] = {}  # thread id -> [waiting, the epoch it last found its wait not ready at]
        self.mma: list[_Pending] = []
        self.loads: list[tuple[tuple[int, int], Barrier, int]] = []  # (span, barrier, the phase that completes it)
        self.stores: list[tuple[int, Smem, Callable[[], None]]] = []  # (thread id, source, the copy)


def _changed() -> None:
    """A barrier or global memory changed: wake every waiter (called with _COND held)."""
    run = _run()
    run.touch()
    run.epoch += 1
    _COND.notify_all()


def _wait_until(ready: Callable[[], bool], what: str) -> None:
    run, me = _run(), _TLS.cta.threads[threading.get_ident()]
    with _COND:
        try:
            while not ready():
                me[0], me[1] = True, run.epoch
                run.check(f"waits forever on {what}")
                _COND.wait(timeout=0.2)
        finally:
            me[0] = False


def _quiesce(timeout: float = 1.0) -> None:
    """After a release: until each other thread of this CTA that was waiting has looked at its wait again and waits
    again (or is done), so that what the release let it do (refill the buffer) happens before this thread goes on
    and a buffer released too early is caught (HazardError), not left to timing."""
    run, cta, me = _run(), _TLS.cta, threading.get_ident()
    end = time.monotonic() + timeout
    with _COND:
        since = run.epoch
        woken = [t for t, st in cta.threads.items() if t != me and st[0]]
        while time.monotonic() < end and not run.abort:
            if all(t not in cta.threads or (cta.threads[t][0] and cta.threads[t][1] >= since) for t in woken):
                return
            _COND.wait(timeout=0.01)


def _where() -> str:
    return f"CTA {getattr(_TLS, 'pid', '?')} partition {getattr(_TLS, 'part', 0)}"


# ----- values -----------------------------------------------------------------------------------------------------
class GT(torch.Tensor):
    """A Gluon tensor value: a torch tensor with Gluon's `.to(dtype, bitcast=...)` and C's integer `//` and `%`
    (toward zero; Python's floor differs for negative operands). Loop counters of `range` stay Python ints."""

    def __floordiv__(self, other: Any):  # type: ignore[override]
        if self.is_floating_point() or (isinstance(other, torch.Tensor) and other.is_floating_point()):
            return super().__floordiv__(other)
        return torch.div(self, other, rounding_mode="trunc")

    def __rfloordiv__(self, other: Any):  # type: ignore[override]
        return _t(other).__floordiv__(self)

    def __mod__(self, other: Any):  # type: ignore[override]
        return torch.fmod(self, other)

    def __rmod__(self, other: Any):  # type: ignore[override]
        return torch.fmod(_t(other), self)

    def to(self, *args: Any, bitcast: bool = False, fp_downcast_rounding: str | None = None, **kw: Any):  # type: ignore[override]
        if bitcast:
            return self.view(args[0])
        return super().to(*args, **kw)


def _t(x: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """x as a tensor (GT): Python scalars become 0-d tensors (ints int32, floats float32, as Triton types them)."""
    if isinstance(x, torch.Tensor):
        return x if isinstance(x, GT) else x.as_subclass(GT)
    if isinstance(x, _Pending):
        raise TypeError(f"gluon_emu: {_where()} uses an asynchronous warpgroup_mma result before its wait")
    if dtype is None:
        dtype = torch.bool if isinstance(x, bool) else torch.int32 if isinstance(x, int) else torch.float32
        if dtype is torch.int32 and not -2**31 <= x < 2**31:
            dtype = torch.int64
    return torch.tensor(x, dtype=dtype).as_subclass(GT)


class _PtrType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.element_ty = dtype


class Ptr:
    """A pointer (or a tensor of pointers) into a tensor's storage: `flat` is the whole storage as one 1-D tensor,
    `off` the element offsets."""

    def __init__(self, flat: torch.Tensor, off: Any) -> None:
        self.flat, self.off = flat, off
        self.dtype = _PtrType(flat.dtype)

    @classmethod
    def of(cls, t: torch.Tensor) -> Ptr:
        t = t.detach()
        n = t.untyped_storage().nbytes() // t.element_size()
        return cls(torch.as_strided(t, (n,), (1,), 0), _t(t.storage_offset(), torch.int64))

    def __add__(self, x: Any) -> Ptr:
        return Ptr(self.flat, self.off + _t(x))

    __radd__ = __add__

    def __sub__(self, x: Any) -> Ptr:
        return Ptr(self.flat, self.off - _t(x))

    def __getitem__(self, idx: Any) -> Ptr:
        return Ptr(self.flat, _t(self.off)[idx])

    def offsets(self, mask: Any) -> tuple[torch.Tensor, torch.Tensor]:
        off = _t(self.off).long()
        m = torch.ones((), dtype=torch.bool) if mask is None else _t(mask).bool()
        off, m = torch.broadcast_tensors(off, m)
        bad = m & ((off < 0) | (off >= self.flat.numel()))
        if bool(bad.any()):
            raise IndexError(f"gluon_emu: {_where()} reaches outside its tensor's storage (offset "
                             f"{int(off[bad][0])} of {self.flat.numel()} elements)")
        return torch.where(m, off, torch.zeros_like(off)), m


def _load(ptr: Ptr, mask: Any = None, other: Any = None, **_: Any) -> torch.Tensor:
    off, m = ptr.offsets(mask)
    with _LOCK:
        val = ptr.flat[off].clone()
    if mask is not None:
        val = torch.where(m, val, _t(0 if other is None else other).to(val.dtype))
    return _t(val)


def _store(ptr: Ptr, value: Any, mask: Any = None, **_: Any) -> None:
    off, m = ptr.offsets(mask)
    val = torch.broadcast_to(_t(value).to(ptr.flat.dtype), off.shape)
    with _COND:
        ptr.flat[off[m]] = val[m]
        _changed()


def _atomic(op: str) -> Callable[..., torch.Tensor]:
    def atomic(ptr: Ptr, val: Any, mask: Any = None, sem: str | None = None, scope: str | None = None) -> torch.Tensor:
        off, m = ptr.offsets(mask)
        v = torch.broadcast_to(_t(val).to(ptr.flat.dtype), off.shape)
        with _COND:
            old = ptr.flat[off].clone()
            for o, x in zip(off[m].tolist(), v[m].tolist()):  # one at a time: duplicate offsets each count
                cur = ptr.flat[o]
                ptr.flat[o] = cur + x if op == "add" else torch.maximum(cur, torch.tensor(x, dtype=cur.dtype))
            _changed()
        return _t(old)
    return atomic


# ----- shared memory, mbarriers, TMA --------------------------------------------------------------------------------
class Smem:
    """A shared-memory descriptor: a view of its allocation."""

    def __init__(self, t: torch.Tensor, layout: Any = None) -> None:
        self.t, self.layout = t, layout
        self.dtype, self.shape = t.dtype, list(t.shape)

    def index(self, i: Any) -> Smem:
        return Smem(self.t[int(i)], self.layout)

    def slice(self, start: Any, length: Any, dim: int = 0) -> Smem:
        return Smem(self.t.narrow(int(dim), int(start), int(length)), self.layout)

    def permute(self, order: Sequence[int]) -> Smem:
        return Smem(self.t.permute(*[int(o) for o in order]), self.layout)

    def reshape(self, shape: Sequence[int]) -> Smem:
        return Smem(self.t.reshape([int(s) for s in shape]), self.layout)

    def _reinterpret(self, dtype: torch.dtype, shape: Sequence[int], layout: Any) -> Smem:
        return Smem(self.t.reshape(-1).view(dtype).reshape([int(s) for s in shape]), layout)

    def span(self) -> tuple[int, int]:
        """The bytes of the allocation this view covers, [start, end)."""
        t = self.t
        extent = 1 + sum((n - 1) * st for n, st in zip(t.shape, t.stride()) if n > 0)
        return t.data_ptr(), t.data_ptr() + extent * t.element_size()

    def load(self, layout: Any = None) -> torch.Tensor:
        _reads(self, "loads")
        with _LOCK:
            return _t(self.t.clone())

    def store(self, value: Any) -> None:
        _writes(self, "stores to")
        with _LOCK:
            self.t.copy_(_t(value).to(self.t.dtype))


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _reads(sm: Smem, how: str) -> None:
    """sm is read: no TMA load that writes it may be in flight unwaited."""
    span = sm.span()
    with _LOCK:
        if any(_overlap(span, ld[0]) for ld in _TLS.cta.loads):
            raise HazardError(f"gluon_emu: {_where()} {how} shared memory that a TMA load writes, before waiting for "
                              "its barrier")


def _writes(sm: Smem, how: str) -> None:
    """sm is written: no unretired wgmma may read it, and no TMA store may still have to."""
    span, cta = sm.span(), _TLS.cta
    with _LOCK:
        if any(_overlap(span, x.span()) for op in cta.mma for x in op.smem()):
            raise HazardError(f"gluon_emu: {_where()} {how} shared memory that an unretired warpgroup_mma reads")
        if any(_overlap(span, src.span()) for _, src, _ in cta.stores):
            raise HazardError(f"gluon_emu: {_where()} {how} shared memory that a TMA store has not read yet (no "
                              "store_wait)")


class Barrier:
    """An mbarrier: `count` arrivals and zero pending transaction bytes complete a phase."""

    def __init__(self) -> None:
        self.count = self.pending = self.tx = self.done = 0

    def init(self, count: int) -> None:
        with _COND:
            self.count = self.pending = int(count)
            self.tx = self.done = 0

    def _settle(self) -> None:
        if self.pending <= 0 and self.tx == 0:
            if self.pending < 0:
                raise RuntimeError(f"gluon_emu: {_where()} arrives on an mbarrier more often than its count")
            self.done += 1
            self.pending = self.count
        _changed()

    def arrive(self, count: int = 1, tx: int = 0) -> None:
        with _COND:
            self.tx += tx
            self.pending -= count
            self._settle()
        if not tx:  # a release: what it lets the other partitions do happens first
            _quiesce()

    def complete_tx(self, nbytes: int) -> None:
        with _COND:
            self.tx -= nbytes
            self._settle()

    def wait(self, phase: Any) -> None:
        ph = int(phase) & 1
        _wait_until(lambda: self.done % 2 != ph, f"an mbarrier's phase {ph} (completed phases: {self.done})")
        with _LOCK:  # the TMA loads of the phases completed are seen
            cta = _TLS.cta
            cta.loads = [ld for ld in cta.loads if not (ld[1] is self and ld[2] < self.done)]


class Barriers:
    """Shared memory allocated with mbarrier.MBarrierLayout: an array of mbarriers."""

    def __init__(self, items: list, shape: list[int]) -> None:
        self.items, self.shape = items, shape

    def index(self, i: Any) -> Barriers:
        n = len(self.items) // self.shape[0]
        return Barriers(self.items[int(i) * n:(int(i) + 1) * n], self.shape[1:])

    def one(self) -> Barrier:
        if len(self.items) != 1:
            raise RuntimeError(f"gluon_emu: an mbarrier operation on {len(self.items)} barriers")
        return self.items[0]


def _bar(b: Any) -> Barrier:
    return b.one() if isinstance(b, Barriers) else b


class Desc:
    """A TMA tensor descriptor inside the kernel (from the host's TensorDescriptor)."""

    def __init__(self, d: Any) -> None:
        base = d.base.detach()
        self.view = torch.as_strided(base, [int(s) for s in d.shape], [int(s) for s in d.strides], base.storage_offset())
        self.block_shape = [int(s) for s in d.block_shape]
        self.dtype, self.layout = base.dtype, d.layout
        nbytes = base.element_size()
        for s in self.block_shape:
            nbytes *= s
        self.block_type = types.SimpleNamespace(nbytes=nbytes, shape=self.block_shape)

    def box(self, coord: Sequence[Any]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """The box at coord clipped to the tensor: (slices of the tensor, slices of the box)."""
        src, dst = [], []
        for c, b, n in zip((int(c) for c in coord), self.block_shape, self.view.shape):
            lo, hi = max(c, 0), min(c + b, n)
            hi = max(hi, lo)
            src.append(slice(lo, hi))
            dst.append(slice(lo - c, hi - c))
        return tuple(src), tuple(dst)


def _tma_load(desc: Desc, coord: Sequence[Any], bar: Any, result: Smem, pred: Any = True) -> None:
    """Done at once; until a wait on its barrier has seen the phase it completes, reading the buffer is a hazard."""
    if not bool(pred):
        return
    _writes(result, "loads by TMA into")
    barrier = _bar(bar)
    src, dst = desc.box(coord)
    box = torch.zeros(desc.block_shape, dtype=desc.dtype)
    with _COND:
        _TLS.cta.loads.append((result.span(), barrier, barrier.done))
        box[dst] = desc.view[src]
        result.t.copy_(box.reshape(result.t.shape))
    barrier.complete_tx(desc.block_type.nbytes)


def _tma_store(desc: Desc, coord: Sequence[Any], src: Smem, add: bool = False) -> None:
    """A TMA store or reduction, done as late as it may be: at the store_wait (or the end of the thread) that needs
    it, reading the shared memory then; overwriting the source before is a hazard."""
    coord = [int(c) for c in coord]

    def copy() -> None:
        _reads(src, "stores by TMA from")
        dst_g, box_s = desc.box(coord)
        with _COND:
            box = src.t.reshape(desc.block_shape)[box_s].to(desc.dtype)
            if add:
                desc.view[dst_g] += box
            else:
                desc.view[dst_g] = box
            _changed()
    with _LOCK:
        _TLS.cta.stores.append((threading.get_ident(), src, copy))


def _store_wait(pendings: Any) -> None:
    """This thread's oldest TMA stores done until at most `pendings` are outstanding."""
    cta, me = _TLS.cta, threading.get_ident()
    while True:
        with _LOCK:
            mine = [x for x in cta.stores if x[0] == me]
            if len(mine) <= int(pendings):
                return
            cta.stores.remove(mine[0])
        mine[0][2]()


# ----- warpgroup MMA ------------------------------------------------------------------------------------------------
def _operand(x: Any) -> torch.Tensor:
    if isinstance(x, Smem):
        with _LOCK:
            return x.t.float()
    return _t(x).float()


class _Pending:
    """An asynchronous warpgroup_mma, computed when a wait retires it."""

    def __init__(self, a: Any, b: Any, acc: Any, use_acc: Any) -> None:
        self.a, self.b, self.acc, self.use_acc, self.value = a, b, acc, use_acc, None

    def smem(self) -> list[Smem]:
        return [x for x in (self.a, self.b) if isinstance(x, Smem)]

    def resolve(self) -> torch.Tensor:
        if self.value is None:
            acc = self.acc.resolve() if isinstance(self.acc, _Pending) else _t(self.acc)
            for x in self.smem():
                _reads(x, "multiplies (warpgroup_mma)")
            prod = _operand(self.a) @ _operand(self.b)
            self.value = _t(prod + acc.float() if bool(self.use_acc) else prod)
            with _LOCK:
                if self in _TLS.cta.mma:
                    _TLS.cta.mma.remove(self)
        return self.value


def _wgmma(a: Any, b: Any, acc: Any, *, use_acc: Any = True, is_async: bool = False, **_: Any) -> Any:
    op = _Pending(a, b, acc, use_acc)
    if not is_async:
        return op.resolve()
    _TLS.mma.append(op)
    with _LOCK:
        _TLS.cta.mma.append(op)
    return op


def _wgmma_wait(num_outstanding: int = 0, deps: Sequence[Any] | None = None) -> Any:
    queue = _TLS.mma
    while len(queue) > int(num_outstanding):
        queue.pop(0).resolve()
    out = [d.value if isinstance(d, _Pending) and d.value is not None else d for d in deps or ()]
    return out[0] if len(out) == 1 else tuple(out)


# ----- the language -------------------------------------------------------------------------------------------------
class _Layout:
    """Any Gluon layout: accepted, ignored (a layout never changes a value)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        self.args, self.kw = args, kw


class _MBarrierLayout(_Layout):
    pass


def _wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A torch function taking Gluon arguments (Python scalars, GT) and giving GT."""
    def call(*args: Any, **kw: Any) -> Any:
        out = fn(*[_t(a) if isinstance(a, (int, float, bool)) else a for a in args], **kw)
        return tuple(_t(o) for o in out) if isinstance(out, tuple) else _t(out)
    return call


def _reduce(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def red(x: Any, axis: int | None = None, keep_dims: bool = False, **_: Any) -> torch.Tensor:
        x = _t(x)
        if axis is None:
            return _t(fn(x.reshape(-1), 0))
        out = fn(x, int(axis))
        return _t(out.unsqueeze(int(axis)) if keep_dims else out)
    return red


def _where_(c: Any, a: Any, b: Any) -> torch.Tensor:
    c, a, b = _t(c), _t(a), _t(b)
    return _t(torch.where(c.bool(), a, b))


def _split(x: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = _t(x)
    if x.shape[-1] != 2:
        raise ValueError(f"gluon_emu: gl.split needs a last dimension of 2, got {tuple(x.shape)}")
    return _t(x[..., 0]), _t(x[..., 1])


def _warp_specialize(parts: Sequence[tuple[Callable[..., Any], Sequence[Any]]], *_: Any, **__: Any) -> None:
    """Each partition in a thread of its own (the first in this one, as Gluon's default partition)."""
    run, cta, pid = _run(), _TLS.cta, _TLS.pid
    threads = []
    for k, (fn, args) in enumerate(parts[1:], start=1):
        threads.append(threading.Thread(target=_thread, args=(run, cta, pid, k, fn, args), daemon=True))
    for th in threads:
        th.start()
    fn, args = parts[0]
    try:
        fn(*args)
    except BaseException as exc:
        run.fail(exc)  # the other partitions stop at their next wait
        raise
    finally:  # the launch returns only once every thread has stopped
        for th in threads:
            th.join()


def _thread(run: _Run, cta: _CTA, pid: tuple[int, ...], part: int, fn: Callable[..., Any],
            args: Sequence[Any]) -> None:
    """One partition (or a whole CTA before warp_specialize) in this thread."""
    _TLS.run, _TLS.cta, _TLS.pid, _TLS.part, _TLS.mma, _TLS.grid = run, cta, pid, part, [], run.grid
    me = threading.get_ident()
    with _COND:
        cta.threads[me] = [False, 0]
    try:
        with torch.no_grad():
            fn(*args)
            _store_wait(0)
    except BaseException as exc:  # noqa: BLE001 - reported by the launch
        run.fail(exc)
    finally:
        with _COND:
            del cta.threads[me]
            _changed()


def _asm(asm: str, constraints: str, args: Sequence[Any], dtype: Any, is_pure: bool, pack: int) -> Any:
    key = re.sub(r"\s+", " ", asm).strip()
    if key not in ASM:
        raise NotImplementedError(f"gluon_emu: inline asm not emulated (register it in gluon_emu.ASM): {key!r}")
    return ASM[key](*args)


def _spin_load(p: Ptr) -> torch.Tensor:
    """One load of a spin loop in the kernel's own code (an acquire load): it yields, and reports the loop as a
    deadlock once nothing has changed anywhere for the deadlock timeout."""
    _run().check("spins forever on global memory")
    time.sleep(2e-4)
    return _load(p)


def _scan(inputs: Any, axis: int, combine_fn: Callable[..., Any], reverse: bool = False) -> Any:
    """gl.associative_scan: combine_fn applied in order along the axis (the same values as any tree order would
    give, up to rounding)."""
    xs = [_t(x) for x in (inputs if isinstance(inputs, tuple) else (inputs,))]
    axis = int(axis)
    order = range(xs[0].shape[axis] - 1, -1, -1) if reverse else range(xs[0].shape[axis])
    acc: tuple | None = None
    outs: list[tuple] = []
    for i in order:
        cur = tuple(x.select(axis, i) for x in xs)
        if acc is None:
            acc = cur
        else:
            out = combine_fn(*acc, *cur)
            acc = tuple(out) if isinstance(out, tuple) else (out,)
        outs.append(acc)
    if reverse:
        outs.reverse()
    res = tuple(_t(torch.stack([o[n] for o in outs], axis)) for n in range(len(xs)))
    return res if isinstance(inputs, tuple) else res[0]


def _flag_wait(p: Ptr) -> torch.Tensor:
    _wait_until(lambda: int(p.flat[int(_t(p.off))]) != 0, "a flag in global memory")
    return _load(p)


#: inline asm snippets (whitespace collapsed) and what they do here
ASM: dict[str, Callable[..., Any]] = {
    "cp.async.bulk.wait_group 0; mov.b32 $0, $1;": lambda x: (_store_wait(0), x)[1],
    "fence.proxy.async.global; mov.b32 $0, $1;": lambda x: x,
    "fence.proxy.async.global; st.release.gpu.global.b32 [$1], 1; mov.b32 $0, 0;":
        lambda p: (_store(p, 1), _t(0))[1],
    "ld.relaxed.gpu.global.b32 $0, [$1];": _load,
    "ld.acquire.gpu.global.b32 $0, [$1];": _spin_load,
    "{ .reg .pred p; WAIT: ld.acquire.gpu.global.b32 $0, [$1]; setp.eq.b32 p, $0, 0; @p bra WAIT; "
    "fence.proxy.async.global; }": _flag_wait,
    "{ .reg .pred p; setp.ne.b32 p, $2, 0; @p fence.proxy.async.global; @p st.release.gpu.global.b32 [$1], 1; "
    "mov.b32 $0, 0; }": lambda p, c: (_store(p, 1) if int(_t(c)) else None, _t(0))[1],
    "{ .reg .pred p, q; setp.ne.b32 q, $2, 0; mov.b32 $0, $2; @q bra DONE; WAIT: ld.acquire.gpu.global.b32 $0, "
    "[$1]; setp.eq.b32 p, $0, 0; @p bra WAIT; fence.proxy.async.global; DONE: }":
        lambda p, c: _t(c) if int(_t(c)) else _flag_wait(p),
}


def _alloc(dtype: torch.dtype, shape: Sequence[Any], layout: Any = None, value: Any = None) -> Any:
    shape = [int(s) for s in shape]
    if isinstance(layout, _MBarrierLayout):
        n = 1
        for s in shape:
            n *= s
        return Barriers([Barrier() for _ in range(n)], shape)
    t = torch.zeros(shape, dtype=dtype)
    if value is not None:
        t.copy_(_t(value))
    return Smem(t, layout)


def _program_id(axis: int) -> torch.Tensor:
    return _t(_TLS.pid[int(axis)])


def _num_programs(axis: int) -> torch.Tensor:
    return _t(_TLS.grid[int(axis)])


class _Namespace(types.SimpleNamespace):
    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"gluon_emu: {self.__dict__.get('_name', '?')}.{name} is not emulated")


def _const(x: Any) -> Any:
    return getattr(x, "value", x)


GL = _Namespace(
    _name="gl", constexpr=_const, float32=torch.float32, float16=torch.float16, bfloat16=torch.bfloat16,
    float64=torch.float64, int1=torch.bool, int8=torch.int8, int16=torch.int16, int32=torch.int32, int64=torch.int64,
    uint32=torch.uint32, BlockedLayout=_Layout, SliceLayout=_Layout, NVMMADistributedLayout=_Layout,
    DotOperandLayout=_Layout, NVMMASharedLayout=_Layout, SwizzledSharedLayout=_Layout,
    DistributedLinearLayout=_Layout, AutoLayout=_Layout, CoalescedLayout=_Layout,
    arange=lambda start, end, layout=None: _t(torch.arange(int(start), int(end), dtype=torch.int32)),
    full=lambda shape, value, dtype, layout=None: _t(torch.full([int(s) for s in shape], value, dtype=dtype)),
    zeros=lambda shape, dtype, layout=None: _t(torch.zeros([int(s) for s in shape], dtype=dtype)),
    load=_load, store=_store, atomic_add=_atomic("add"), atomic_max=_atomic("max"),
    where=_where_, maximum=_wrap(torch.maximum), minimum=_wrap(torch.minimum),
    max=_reduce(lambda x, a: torch.amax(x, a)), min=_reduce(lambda x, a: torch.amin(x, a)),
    sum=_reduce(lambda x, a: torch.sum(x, a, dtype=x.dtype if x.is_floating_point() else torch.int32)),
    exp2=_wrap(torch.exp2), exp=_wrap(torch.exp), log2=_wrap(torch.log2), log=_wrap(torch.log),
    sqrt=_wrap(torch.sqrt), abs=_wrap(torch.abs), fma=_wrap(lambda a, b, c: a * b + c),
    cdiv=lambda a, b: (a + b - 1) // b, convert_layout=lambda x, layout, assert_trivial=False: x,
    set_auto_layout=lambda x, layout: x,
    reshape=lambda x, shape, can_reorder=False: _t(_t(x).reshape([int(s) for s in shape])),
    permute=lambda x, dims: _t(_t(x).permute(*[int(d) for d in dims])), split=_split,
    join=lambda a, b: _t(torch.stack(torch.broadcast_tensors(_t(a), _t(b)), -1)),
    expand_dims=lambda x, axis: _t(_t(x).unsqueeze(int(axis))),
    static_range=lambda *a: range(*[int(x) for x in a]), static_assert=lambda c, msg="": None,
    static_print=lambda *a, **k: None, device_assert=lambda c, msg="", mask=None: None,
    program_id=_program_id, num_programs=_num_programs, allocate_shared_memory=_alloc,
    warp_specialize=_warp_specialize, associative_scan=_scan, inline_asm_elementwise=_asm, thread_barrier=lambda: None,
    barrier=lambda: None, to_tensor=_t,
)
MBARRIER = _Namespace(
    _name="mbarrier", MBarrierLayout=_MBarrierLayout, init=lambda bar, count: _bar(bar).init(count),
    invalidate=lambda bar: None,
    expect=lambda bar, nbytes, pred=True: _bar(bar).arrive(1, int(nbytes)) if bool(pred) else None,
    arrive=lambda bar, *, count=1, pred=True: _bar(bar).arrive(int(count)) if bool(pred) else None,
    wait=lambda bar, phase, pred=True, deps=(): _bar(bar).wait(phase) if bool(pred) else None,
)
TMA = _Namespace(
    _name="tma", async_copy_global_to_shared=_tma_load,
    async_copy_shared_to_global=lambda desc, coord, src: _tma_store(desc, coord, src),
    store_wait=_store_wait,
)
#: Gluon builtins by name, wherever a module imported them from; custom builtins of the project's kernels too
BUILTINS: dict[str, Any] = {
    "warpgroup_mma": _wgmma, "warpgroup_mma_wait": _wgmma_wait, "fence_async_shared": lambda cluster=False: None,
    "_tma_reduce_add": lambda desc, coord, src: _tma_store(desc, coord, src, add=True),
}


# ----- the kernels' code with these in place of Gluon's --------------------------------------------------------------
def _is_builtin(v: Any) -> bool:
    import inspect

    try:
        return callable(v) and "_semantic" in inspect.signature(v).parameters
    except (TypeError, ValueError):
        return False


def _shadow(g: dict[str, Any], shadows: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A copy of a module's globals with Gluon's modules, builtins and jit functions replaced by the emulator's
    (made at each launch, so that what a test patched in the module is seen; `shadows`: this launch's, by module)."""
    from triton.experimental.gluon import language as real_gl
    from triton.experimental.gluon.language.nvidia.hopper import mbarrier as real_mbarrier
    from triton.experimental.gluon.language.nvidia.hopper import tma as real_tma
    from triton.runtime.jit import ConstexprFunction, JITFunction

    if id(g) in shadows:
        return shadows[id(g)]
    s = dict(g)
    shadows[id(g)] = s
    mods = {id(real_gl): GL, id(real_mbarrier): MBARRIER, id(real_tma): TMA}
    for name, v in g.items():
        if id(v) in mods:
            s[name] = mods[id(v)]
        elif isinstance(v, JITFunction):
            s[name] = _function(v.fn, shadows)
        elif isinstance(v, ConstexprFunction):
            s[name] = v.fn
        elif type(v).__name__ == "constexpr" and hasattr(v, "value"):
            s[name] = v.value
        elif _is_builtin(v):
            fake = BUILTINS.get(v.__name__) or GL.__dict__.get(v.__name__)
            s[name] = fake if fake is not None else _missing(v.__name__)
    return s


def _missing(name: str) -> Callable[..., Any]:
    def call(*_: Any, **__: Any) -> Any:
        raise NotImplementedError(f"gluon_emu: builtin {name} is not emulated (add it to gluon_emu.BUILTINS)")
    return call


def _function(fn: types.FunctionType, shadows: dict[int, dict[str, Any]]) -> types.FunctionType:
    out = types.FunctionType(fn.__code__, _shadow(fn.__globals__, shadows), fn.__name__, fn.__defaults__,
                             fn.__closure__)
    out.__kwdefaults__ = fn.__kwdefaults__
    return out


def _arg(v: Any) -> Any:
    """A launch argument as the kernel sees it."""
    if isinstance(v, torch.Tensor):
        return Ptr.of(v)
    if type(v).__name__ == "TensorDescriptor":
        return Desc(v)
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return _t(v)
    return v


class Emulated:
    """`emulate(kernel)`: launches as the kernel does, running its code on the CPU (module docstring)."""

    def __init__(self, kernel: Any, resident: int = 132, deadlock_s: float = 60.0) -> None:
        self.kernel, self.resident, self.deadlock_s = kernel, resident, deadlock_s
        self.launches: list[dict[str, Any]] = []

    def __getitem__(self, grid: Any) -> Callable[..., None]:
        return lambda *args, **kw: self.run(tuple(grid) if isinstance(grid, (tuple, list)) else (grid,), args, kw)

    def run(self, grid: tuple[int, ...], args: Sequence[Any], kw: dict[str, Any]) -> None:
        params = self.kernel.params
        bound: dict[str, Any] = dict(zip((p.name for p in params), args))
        bound.update({k: v for k, v in kw.items() if k in {p.name for p in params}})
        self.launches.append({"grid": grid, "args": dict(bound), "options": {k: v for k, v in kw.items()
                                                                             if k not in bound}})
        fn = _function(self.kernel.fn, {})
        values = [bound[p.name] if p.is_constexpr else _arg(bound[p.name]) for p in params if p.name in bound]
        _launch(fn, [int(g) for g in grid], values, self.resident, self.deadlock_s)


def emulate(kernel: Any, resident: int = 132, deadlock_s: float = 60.0) -> Emulated:
    """The kernel (a gluon.jit function) as an object that runs its code on the CPU when launched: at most
    `resident` CTAs at once, DeadlockError after `deadlock_s` seconds without progress anywhere."""
    return Emulated(kernel, resident, deadlock_s)


def _launch(fn: Callable[..., Any], grid: list[int], values: list[Any], resident: int, deadlock_s: float) -> None:
    """The grid's CTAs in program-id order (x fastest), at most `resident` at once; re-raises the first error."""
    run = _Run(deadlock_s)
    run.grid = grid + [1] * (3 - len(grid))
    pids = [(x, y, z) for z in range(run.grid[2]) for y in range(run.grid[1]) for x in range(run.grid[0])]
    slots = threading.Semaphore(resident)
    threads = []

    def cta(pid: tuple[int, int, int]) -> None:
        try:
            _thread(run, _CTA(), pid, 0, fn, values)
        finally:
            slots.release()

    for pid in pids:
        while not slots.acquire(timeout=0.2):
            if run.abort:
                break
        if run.abort:
            break
        th = threading.Thread(target=cta, args=(pid,), daemon=True)
        threads.append(th)
        th.start()
    for th in threads:
        th.join()
    if run.error is not None:
        raise run.error
