"""The one interface every implementation sits behind.

An implementation is a small class: a family base class (impls/<family>/base.py) validates arguments
and fixes the signatures; the implementation fills in ``_forward``, ``_init_state``, ``_prefill`` and
``_step``. Class attributes describe where it can run, so the registry and the harness can say *why*
something cannot run instead of falling back silently to something else.
"""
from __future__ import annotations

import importlib.util
import os
from typing import ClassVar

import torch

_AVAILABILITY: dict[tuple[type, str, str | None], str | None] = {}


class UnavailableError(RuntimeError):
    """The implementation cannot run here (no GPU, package missing, unsupported configuration)."""


class Implementation:
    """Base of every implementation. Subclass a family base, not this directly."""

    family: ClassVar[str] = ""
    #: registry name, "<family>/<impl>"; set by the registry at registration
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: importable module names this implementation needs (optional peers)
    requires: ClassVar[tuple[str, ...]] = ()
    #: device types it runs on
    devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    #: Triton kernels: run on CUDA, or on the CPU under TRITON_INTERPRET=1
    triton: ClassVar[bool] = False
    dtypes: ClassVar[tuple[torch.dtype, ...]] = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    #: supported head dims, None = any
    head_dims: ClassVar[tuple[int, ...] | None] = None
    #: device types on which forward is differentiable (train mode)
    backward_devices: ClassVar[tuple[str, ...]] = ("cpu", "cuda")
    supports_decode: ClassVar[bool] = True
    #: True for the plain PyTorch oracle of a family
    is_reference: ClassVar[bool] = False
    #: named stages for `run_bench.py profile` (bench/stages.py): ordered (stage, regex over kernel names)
    #: pairs; a kernel belongs to the first stage it matches, kernels matching none to "other"
    profile_stages: ClassVar[tuple[tuple[str, str], ...]] = ()

    # ----- availability -------------------------------------------------------------------------
    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        """None if this implementation can run on ``device`` (a device type, default: this machine's
        best), else a sentence saying why not. Cached per class, device and TRITON_INTERPRET, since
        every call of forward/prefill/step asks."""
        device = device or default_device()
        key = (cls, device, os.environ.get("TRITON_INTERPRET"))
        if key not in _AVAILABILITY:
            _AVAILABILITY[key] = cls._unavailable_reason(device)
        return _AVAILABILITY[key]

    @classmethod
    def _unavailable_reason(cls, device: str) -> str | None:
        for mod in cls.requires:
            if importlib.util.find_spec(mod.split(".")[0]) is None:
                return f"optional package '{mod}' is not installed"
        if cls.triton:
            if importlib.util.find_spec("triton") is None:
                return "package 'triton' is not installed"
            if device == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
                return "Triton kernels need a CUDA GPU (or TRITON_INTERPRET=1 to run them in the CPU interpreter)"
            devices: tuple[str, ...] = ("cuda", "cpu")
        else:
            devices = cls.devices
        if device not in devices:
            return f"runs on {', '.join(devices)} only, not on {device}"
        if device == "cuda" and not torch.cuda.is_available():
            return "no CUDA GPU is visible to torch"
        return cls.extra_unavailable_reason(device)

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        """Hook for checks beyond packages and devices (versions, GPU architecture)."""
        return None

    def unsupported_reason(
        self, *, mode: str, device: str, dtype: torch.dtype, head_dim: int, **params: object
    ) -> str | None:
        """None if this implementation supports the configuration, else why not. mode is one of
        'train', 'prefill', 'decode'."""
        reason = self.unavailable_reason(device)
        if reason:
            return reason
        if dtype not in self.dtypes:
            return f"dtype {dtype} not supported (supports {', '.join(str(d) for d in self.dtypes)})"
        if self.head_dims is not None and head_dim not in self.head_dims:
            return f"head_dim {head_dim} not supported (supports {self.head_dims})"
        if mode == "train" and device not in self.backward_devices:
            return f"no backward on {device}"
        if mode == "decode" and not self.supports_decode:
            return "no decode step"
        return None

    def check_runnable(self, x: torch.Tensor) -> None:
        """Raise UnavailableError if this implementation cannot run on x's device and dtype."""
        reason = self.unavailable_reason(x.device.type)
        if reason is None and x.dtype not in self.dtypes:
            reason = f"dtype {x.dtype} not supported (supports {', '.join(str(d) for d in self.dtypes)})"
        if reason is None and self.head_dims is not None and x.shape[-1] not in self.head_dims:
            reason = f"head_dim {x.shape[-1]} not supported (supports {self.head_dims})"
        if reason is not None:
            raise UnavailableError(f"{self.name}: {reason}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
