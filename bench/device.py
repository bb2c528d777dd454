"""Device metadata, NVML (nvidia-ml-py) sampling and the measured ceilings of a run.

NVML is optional: without the package or a driver every NVML function returns None/{} and the run
goes on. Ceilings are measured once per run, on the run's device:
- matmul: a dense square matmul (bf16 8192^3 on CUDA, float32 1024^3 on the CPU), median of timed runs;
- copy bandwidth: a device-to-device copy of 1 GiB (64 MiB on the CPU), bytes read + written.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Self

import torch

from ratbench.bench import timing

log = logging.getLogger(__name__)

THROTTLE_REASONS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
    0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


# ----- NVML ---------------------------------------------------------------------------------------
class Nvml:
    """One GPU through NVML, or ``Nvml.open()`` returns None when NVML is not there."""

    def __init__(self, pynvml, handle) -> None:  # type: ignore[no-untyped-def]
        self.nv = pynvml
        self.handle = handle

    @classmethod
    def open(cls, cuda_index: int = 0) -> Nvml | None:
        try:
            import pynvml
        except ImportError:
            log.info("nvidia-ml-py is not installed: no NVML data")
            return None
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound etc. on machines without a driver
            log.info("NVML unavailable: %s", exc)
            return None
        handle = None
        try:
            uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
            handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else "GPU-" + uuid)
        except Exception:  # noqa: BLE001 - fall back to the index (right unless CUDA_VISIBLE_DEVICES remaps)
            try:
                handle = pynvml.nvmlDeviceGetHandleByIndex(cuda_index)
            except Exception as exc:  # noqa: BLE001
                log.info("NVML: no handle for GPU %d: %s", cuda_index, exc)
                return None
        return cls(pynvml, handle)

    def _try(self, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except Exception:  # noqa: BLE001 - a query this GPU or driver does not support
            return None

    def info(self) -> dict[str, object]:
        nv, h = self.nv, self.handle
        name = self._try(nv.nvmlDeviceGetName, h)
        mem = self._try(nv.nvmlDeviceGetMemoryInfo, h)
        return {
            "name": name.decode() if isinstance(name, bytes) else name,
            "uuid": _str(self._try(nv.nvmlDeviceGetUUID, h)),
            "driver": _str(self._try(nv.nvmlSystemGetDriverVersion)),
            "cuda_driver_version": self._try(nv.nvmlSystemGetCudaDriverVersion),
            "memory_total_bytes": getattr(mem, "total", None),
            "power_limit_w": _div(self._try(nv.nvmlDeviceGetEnforcedPowerLimit, h), 1000),
            "sm_clock_max_mhz": self._try(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_SM),
            "mem_clock_max_mhz": self._try(nv.nvmlDeviceGetMaxClockInfo, h, nv.NVML_CLOCK_MEM),
            "persistence_mode": self._try(nv.nvmlDeviceGetPersistenceMode, h),
            "ecc_mode": _first(self._try(nv.nvmlDeviceGetEccMode, h)),
            "mig_mode": _first(self._try(nv.nvmlDeviceGetMigMode, h)),
            **self.snapshot(),
        }

    def snapshot(self) -> dict[str, object]:
        nv, h = self.nv, self.handle
        reasons_fn = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
            nv, "nvmlDeviceGetCurrentClocksThrottleReasons", None)
        mask = self._try(reasons_fn, h) if reasons_fn else None
        return {
            "power_w": _div(self._try(nv.nvmlDeviceGetPowerUsage, h), 1000),
            "temp_c": self._try(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
            "sm_clock_mhz": self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": self._try(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM),
            "throttle_mask": mask,
        }

    def energy_mj(self) -> int | None:
        return self._try(self.nv.nvmlDeviceGetTotalEnergyConsumption, self.handle)


def throttle_names(mask: int | None) -> list[str]:
    if not mask:
        return []
    return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]


class NvmlSampler:
    """Samples power, temperature, clocks and throttle reasons in a thread while a case runs, and the
    energy counter at start and stop. ``summary()`` gives the row's NVML columns."""

    def __init__(self, nvml: Nvml | None, interval_s: float = 0.05) -> None:
        self.nvml = nvml
        self.interval_s = interval_s
        self.samples: list[dict[str, object]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._e0: int | None = None
        self._e1: int | None = None

    def __enter__(self) -> Self:
        if self.nvml is not None:
            self._e0 = self.nvml.energy_mj()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        assert self.nvml is not None
        while not self._stop.is_set():
            self.samples.append(self.nvml.snapshot())
            self._stop.wait(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        if self.nvml is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=2)
            self.samples.append(self.nvml.snapshot())
            self._e1 = self.nvml.energy_mj()

    def summary(self) -> dict[str, object]:
        if self.nvml is None or not self.samples:
            return {}

        def vals(k: str) -> list[float]:
            return [float(s[k]) for s in self.samples if s.get(k) is not None]  # type: ignore[arg-type]

        power, temp, sm = vals("power_w"), vals("temp_c"), vals("sm_clock_mhz")
        mask = 0
        for s in self.samples:
            mask |= int(s.get("throttle_mask") or 0)
        out: dict[str, object] = {
            "power_w_mean": sum(power) / len(power) if power else None,
            "power_w_max": max(power) if power else None,
            "temp_c_max": max(temp) if temp else None,
            "sm_clock_mhz_min": min(sm) if sm else None,
            "sm_clock_mhz_mean": sum(sm) / len(sm) if sm else None,
            "throttle": ",".join(n for n in throttle_names(mask) if n != "gpu_idle") or None,
            "energy_j": (self._e1 - self._e0) / 1e3 if self._e0 is not None and self._e1 is not None else None,
        }
        return out


def _str(x: object) -> str | None:
    return x.decode() if isinstance(x, bytes) else (None if x is None else str(x))


def _div(x: object, d: float) -> float | None:
    return None if x is None else float(x) / d  # type: ignore[arg-type]


def _first(x: object) -> object:
    return x[0] if isinstance(x, (list, tuple)) and x else x


# ----- metadata -----------------------------------------------------------------------------------
@dataclass
class Ceilings:
    matmul_tflops: float
    matmul_dtype: str
    matmul_shape: int
    copy_gbps: float
    copy_bytes: int
    #: as on rows (bench.timing.noise_columns): each measurement's (p80 - p20) / median, the larger run-queue
    #: wait of the two (CPU), and noisy when either is past its threshold (run.json of older runs: absent)
    matmul_rel_spread: float | None = None
    copy_rel_spread: float | None = None
    cpu_wait_frac: float | None = None
    noisy: bool | None = None
    noise_reason: str | None = None


@dataclass
class DeviceInfo:
    device: str
    name: str
    python: str
    torch: str
    triton: str | None
    cuda: str | None
    cudnn: int | None
    capability: str | None = None
    memory_total_bytes: int | None = None
    cpu_count: int | None = None
    torch_threads: int | None = None
    hostname: str = ""
    nvml: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def describe(device: str) -> DeviceInfo:
    """Versions and the device's identity (NVML details when available)."""
    try:
        import triton
        triton_v: str | None = triton.__version__
    except ImportError:
        triton_v = None
    info = DeviceInfo(
        device=device, name=platform.processor() or platform.machine(), python=sys.version.split()[0],
        torch=torch.__version__, triton=triton_v, cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), hostname=platform.node(),
    )
    if device == "cuda" and torch.cuda.is_available():
        idx = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        info.name = props.name
        info.capability = f"{props.major}.{props.minor}"
        info.memory_total_bytes = int(props.total_memory)
        nv = Nvml.open(idx)
        if nv is not None:
            info.nvml = nv.info()
    else:
        info.name = cpu_name() or info.name
    return info


def cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# ----- ceilings -----------------------------------------------------------------------------------
def measure_ceilings(device: str) -> Ceilings:
    """Dense matmul rate and copy bandwidth of this device, measured now (about 1 s on an H200)."""
    policy = timing.TimingPolicy(repeats=20, min_repeats=5, warmup=2, budget_s=0.3, flush_l2=False,
                                 target_ci_rel=0.05 if device == "cpu" else None)
    if device == "cuda":
        n, dt, copy_bytes = 8192, torch.bfloat16, 1 << 30
    else:
        n, dt, copy_bytes = 1024, torch.float32, 64 << 20
    mm = _time_matmul(n, dt, device, policy)
    cp = _time_copy(copy_bytes, device, policy)
    tflops = 2.0 * n ** 3 / (mm.median * 1e-3) / 1e12
    gbps = 2.0 * copy_bytes / (cp.median * 1e-3) / 1e9
    if device == "cuda":
        torch.cuda.empty_cache()
    nm, nc = mm.noise(device), cp.noise(device)
    waits = [w for w in (mm.cpu_wait_frac, cp.cpu_wait_frac) if w is not None]
    reasons = [f"{what}: {x['noise_reason']}" for what, x in (("matmul", nm), ("copy", nc)) if x.get("noisy")]
    return Ceilings(tflops, str(dt).removeprefix("torch."), n, gbps, copy_bytes,
                    matmul_rel_spread=nm.get("ms_rel_spread"), copy_rel_spread=nc.get("ms_rel_spread"),  # type: ignore[arg-type]
                    cpu_wait_frac=max(waits) if waits else None, noisy=bool(reasons),
                    noise_reason="; ".join(reasons) or None)


def _time_matmul(n: int, dt: torch.dtype, device: str, policy: timing.TimingPolicy) -> timing.Timing:
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    c = torch.empty(n, n, device=device, dtype=dt)
    return timing.measure(lambda: torch.matmul(a, b, out=c), lambda: None, device, policy)


def _time_copy(nbytes: int, device: str, policy: timing.TimingPolicy) -> timing.Timing:
    src = torch.empty(nbytes // 4, device=device, dtype=torch.float32).fill_(1.0)
    dst = torch.empty_like(src)
    return timing.measure(lambda: dst.copy_(src), lambda: None, device, policy)


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
