"""Peak device memory of one call, out-of-memory detection, and freeing memory after a case."""
from __future__ import annotations

import gc
from collections.abc import Callable

import torch

_OOM_TEXT = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory",
             "failed to allocate", "cublas_status_alloc_failed")


def is_oom(exc: BaseException) -> bool:
    """True for CUDA and CPU out-of-memory errors (torch raises several kinds; cuBLAS reports a failed
    workspace allocation as CUBLAS_STATUS_ALLOC_FAILED). The one definition, for the harness and the
    models (models.lm's max-batch search, models.throughput)."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc).lower()
        return any(t in text for t in _OOM_TEXT)
    return False


def free(device: str, collect: bool = False) -> str | None:
    """Return cached device memory after a case (call once the case's tensors are unreferenced).
    ``collect``: also run the garbage collector (after a failure, whose traceback frames form cycles
    that hold tensors; it takes about 0.5 s with torch loaded, so not after every case).

    Returns None, or the error that the device synchronize raised: a kernel's asynchronous fault (an
    illegal memory access, a launch failure) that CUDA keeps for the rest of the process, so that no
    later case can run in it (``torch.AcceleratorError`` on torch 2.8 and later, a RuntimeError before)."""
    if collect:
        # the frames of a fresh traceback sit in the young generations: enough on the CPU; on CUDA,
        # where an unfreed tensor can make every later case OOM, a full collection
        gc.collect(2 if device == "cuda" else 1)
    if device == "cuda" and torch.cuda.is_available():
        try:
            torch.cuda.synchronize()
        except RuntimeError as exc:
            lines = str(exc).strip().splitlines()
            return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"
        torch.cuda.empty_cache()
    return None


def peak_of(fn: Callable[[], object], reset: Callable[[], None], device: str) -> tuple[int | None, int | None]:
    """(peak bytes allocated during one call, bytes allocated before it) on CUDA; (None, None) elsewhere.

    The peak includes what was already allocated (the inputs, the decode state), i.e. the memory
    the case needs on the device as torch's allocator counts it; the runner subtracts what was
    allocated before the case was prepared."""
    if device != "cuda":
        reset()
        fn()
        return None, None
    torch.cuda.synchronize()
    reset()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del out
    return int(peak), int(base)


def allocated(device: str) -> int | None:
    """Bytes torch has allocated on the device now (None on the CPU)."""
    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.memory_allocated())
    return None


def device_memory_bytes(device: str) -> int | None:
    if device == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    return None
