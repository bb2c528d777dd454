"""pytest-benchmark's machine_info gets the GPU, its driver and the torch / triton versions."""
from __future__ import annotations

import harness_adapter as A


def pytest_benchmark_update_machine_info(config, machine_info) -> None:  # type: ignore[no-untyped-def]
    try:
        spec, _ = A.build()
        device = spec.device
    except A.UsageError:
        device = "cpu"
    machine_info.update(A.machine_info(device))
