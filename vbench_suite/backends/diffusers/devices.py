"""The device a diffusers pipeline runs on: choosing it, naming it, counting it, synchronising it, its peak memory.

Everything here imports torch; call it only once a model is to be used (never from `capabilities()`).
"""
from __future__ import annotations

import resource
from typing import Any, Callable

from vbench_suite.errors import ConfigError


def resolve_device(option: str) -> str:
    """'auto' -> 'cuda' when a CUDA device is present, else 'cpu'; other values are checked by torch."""
    import torch

    if option == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(option)
    except (RuntimeError, ValueError):
        raise ConfigError(f"backend 'diffusers': device {option!r} is not a torch device; use auto, cpu, cuda or "
                          "cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"backend 'diffusers': device {option!r} asked for, but torch sees no CUDA device here; "
                          "use --option diffusers.device=cpu (or auto)")
    return option


def resolve_dtype(option: str, device: str) -> str:
    """'auto' -> 'bf16' on CUDA, 'fp32' elsewhere (half precision is slow and poorly supported on CPUs)."""
    if option != "auto":
        return option
    return "bf16" if device.startswith("cuda") else "fp32"


def device_name(device: str) -> str:
    """'NVIDIA H200' for a CUDA device, else the device type ('cpu')."""
    import torch

    if device.startswith("cuda"):
        return str(torch.cuda.get_device_name(torch.device(device)))
    return torch.device(device).type


def synchroniser(device: str) -> Callable[[], None]:
    """A function that waits for queued work on `device` (a no-op off CUDA)."""
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


def pipeline_devices(pipe: Any) -> list[str]:
    """Distinct devices holding the pipeline's weights (e.g. ['cuda:0', 'cuda:1'] when split over GPUs)."""
    import torch

    found: set[str] = set()
    for component in getattr(pipe, "components", {}).values():
        if isinstance(component, torch.nn.Module):
            found.update(str(p.device) for p in component.parameters())
    return sorted(found)


def reset_peak_memory(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_memory_mb(device: str) -> tuple[float, float | None]:
    """(peak MiB, peak reserved MiB or None): allocated and reserved CUDA memory since `reset_peak_memory`, or the
    process's peak resident set size on CPU (for the whole process so far: the OS keeps no per-call peak)."""
    import torch

    if device.startswith("cuda"):
        dev = torch.device(device)
        return torch.cuda.max_memory_allocated(dev) / 2**20, torch.cuda.max_memory_reserved(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, None
