"""rat/gluon's memory-bound passes beside its compute-bound kernels: the batch in groups, two CUDA streams.

A rat/gluon step is a chain of kernels of two kinds: the scans (scan_kernel, bwd_scan_kernel: memory passes near the
copy rate) and the Gluon attention kernels (fwd_ws_kernel, bwd_ws_kernel: tensor cores, drawing a fraction of HBM's
rate at long T). Run back to back, each kind leaves the other's resource idle. With the batch cut into groups
(RATTritonConfig.stream_groups; sequences are independent), one group's scan runs on a second stream while another
group's attention kernel runs on the caller's:
- forward_in_groups: every group's scan queued on the side stream in order; each group's attention kernel on the
  caller's stream once its scan is done. fwd_ws_kernel is persistent (one CTA per multiprocessor), so while later
  groups' scans are pending it takes stream_reserve multiprocessors fewer, which the scans run on.
- backward_in_groups: each group's pre pass and bwd_ws_kernel on the caller's stream, then its backward scan on the
  side stream (the next group's attention kernel runs meanwhile).
Off CUDA (the interpreter, the tests' emulator) the groups run one after the other on one stream, the same launches.
Measured against one stream: impls/rat/gluon/NOTES.md, "Tenth session"."""
from __future__ import annotations

from collections.abc import Callable

import torch

from ratbench.impls.peer_utils import sm_count
from ratbench.impls.rat.config import RATTritonConfig

_SIDE: dict[tuple[int, int], torch.cuda.Stream] = {}


def batch_groups(cfg: RATTritonConfig, B: int) -> int:
    """The groups a batch of B sequences is cut into: the largest divisor of B not above cfg.stream_groups."""
    return max(n for n in range(1, min(B, cfg.stream_groups) + 1) if B % n == 0)


def _bounds(n: int, B: int) -> list[tuple[int, int]]:
    return [(g * B // n, (g + 1) * B // n) for g in range(n)]


def _side_stream(device: torch.device, priority: int) -> torch.cuda.Stream:
    """One side stream per device and priority, made once (streams are cheap to keep, costly to create per call)."""
    key = (device.index if device.index is not None else torch.cuda.current_device(), priority)
    if key not in _SIDE:
        _SIDE[key] = torch.cuda.Stream(device=key[0], priority=priority)
    return _SIDE[key]


def forward_in_groups(n: int, B: int, scan: Callable[[int, int], None],
                      attend: Callable[[int, int, int | None], None], cfg: RATTritonConfig,
                      device: torch.device) -> None:
    """scan(b0, b1) then attend(b0, b1, max_ctas) for each of n batch groups [b0, b1): on CUDA with n > 1 the scans
    on the side stream, each attend on the current stream after its group's scan, with max_ctas = the
    multiprocessors less cfg.stream_reserve while a later group's scan may still run (None: all, the last group)."""
    bounds = _bounds(n, B)
    if n == 1 or device.type != "cuda":
        for b0, b1 in bounds:
            scan(b0, b1)
            attend(b0, b1, None)
        return
    main = torch.cuda.current_stream(device)
    side = _side_stream(device, cfg.stream_priority)
    side.wait_stream(main)  # the outputs were allocated (and the inputs written) on the caller's stream
    done = []
    with torch.cuda.stream(side):
        for b0, b1 in bounds:
            scan(b0, b1)
            done.append(torch.cuda.Event())
            done[-1].record(side)
    capped = max(1, sm_count(device) - cfg.stream_reserve)
    for g, (b0, b1) in enumerate(bounds):
        main.wait_event(done[g])
        attend(b0, b1, capped if g < n - 1 else None)
    main.wait_stream(side)


def backward_in_groups(n: int, B: int, attend: Callable[[int, int], tuple], scan: Callable[..., None],
                       cfg: RATTritonConfig, device: torch.device) -> None:
    """state = attend(b0, b1) then scan(b0, b1, *state) for each of n batch groups: on CUDA with n > 1 each scan on
    the side stream once its group's attend (on the current stream) is done, while the next group's attend runs.
    The states (tensors made on the current stream, read by the side stream's scan) are held until the current
    stream has waited for the side stream, so the allocator cannot hand their memory out before the scans read it."""
    bounds = _bounds(n, B)
    if n == 1 or device.type != "cuda":
        for b0, b1 in bounds:
            scan(b0, b1, *attend(b0, b1))
        return
    main = torch.cuda.current_stream(device)
    side = _side_stream(device, cfg.stream_priority)
    side.wait_stream(main)
    held = []
    for b0, b1 in bounds:
        state = attend(b0, b1)
        ready = torch.cuda.Event()
        ready.record(main)
        side.wait_event(ready)
        with torch.cuda.stream(side):
            scan(b0, b1, *state)
        held.append(state)
    main.wait_stream(side)
    del held
