"""What a self-hosted generation ran on and what an hour of it costs, for backends that run a model on this machine
(or on the GPUs of a rented one) rather than through a vendor's API.

Accounting convention shared by self-hosted backends (the break-even analysis reads it from their records):
- `hardware_s` is GPU-seconds on a GPU (wall time of the generation x the GPUs it held) or CPU-seconds on a CPU;
- `cost_usd` is `hardware_s / 3600 x` the hourly price of one GPU (`usd_per_gpu_hour`) or one vCPU
  (`usd_per_cpu_hour`);
- the fingerprint's settings carry `device` ('cuda' or 'cpu'); the result's info carries `device`, `device_name`,
  `device_count` (GPUs one generation held), `hardware_usd_per_hour` (the rate applied), `rate_option` (the option
  that sets it) and `rate_source` ('option' when the user set it, 'default' when it is the assumption below).
The price is not in the fingerprint: a new price changes no video, so it must not make cached videos stale.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from vbench_suite.errors import ConfigError

ASSUMED_USD_PER_GPU_HOUR = 2.0
"""Placeholder price of one data-centre GPU for one hour when the user states none. An assumption, not a quote:
every record priced with it says so (`rate_source` 'default'), and so does every break-even built on it."""
ASSUMED_USD_PER_CPU_HOUR = 0.085 / 2
"""Placeholder price of one vCPU for one hour: a 2-vCPU on-demand cloud instance at $0.085/h (e.g. AWS c6i.large),
the same assumption as dit-local's default (`dit_local.DEFAULT_PRICE_PER_HOUR / DEFAULT_PRICE_VCPUS`)."""
DEVICE_CHOICES = ("auto", "cuda", "cpu")
"""Values of a self-hosted backend's `device` option: 'auto' asks `nvidia-smi` whether a GPU is visible."""
NVIDIA_SMI_TIMEOUT_S = 10.0
"""Longest wait for `nvidia-smi` to list the GPUs."""


@dataclass(frozen=True)
class Device:
    """The hardware a generation is charged for."""

    kind: str
    """'cuda' (GPU-seconds are measured) or 'cpu' (CPU-seconds)."""
    name: str
    """e.g. 'NVIDIA H200', or the CPU model; 'unknown' when it could not be read."""
    visible: int
    """GPUs visible to this process (cuda) or logical CPUs (cpu)."""


def _visible_gpu_names() -> list[str]:
    """Names of the GPUs `nvidia-smi` lists, restricted to CUDA_VISIBLE_DEVICES when it names indices."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return names
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    if all(v.isdigit() for v in wanted):
        return [names[int(v)] for v in wanted if int(v) < len(names)]
    return names[:len(wanted)]  # UUIDs or MIG ids: the count is what matters here


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def resolve_device(option: str) -> Device:
    """The device named by a `device` option ('auto', 'cuda' or 'cpu'); 'auto' is 'cuda' when `nvidia-smi`
    lists a visible GPU. Runs `nvidia-smi` at most once per call (call it once per backend, not per request)."""
    if option not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {option!r}")
    gpus = _visible_gpu_names() if option in ("auto", "cuda") else []
    if option == "cuda" or (option == "auto" and gpus):
        return Device("cuda", gpus[0] if gpus else "unknown", len(gpus))
    return Device("cpu", _cpu_name(), os.cpu_count() or 1)


@dataclass(frozen=True)
class HourlyRate:
    """The price of one hour of the measured resource (one GPU, or one vCPU) and where it came from."""

    usd_per_hour: float
    option: str
    """The option that sets it ('usd_per_gpu_hour' or 'usd_per_cpu_hour')."""
    source: str
    """'option' (the user set it) or 'default' (`ASSUMED_USD_PER_GPU_HOUR` / `ASSUMED_USD_PER_CPU_HOUR`)."""

    def cost_usd(self, hardware_s: float) -> float:
        return hardware_s / 3600.0 * self.usd_per_hour

    def info(self) -> dict[str, Any]:
        """The record fields the break-even analysis reads (see the module docstring)."""
        return {"hardware_usd_per_hour": self.usd_per_hour, "rate_option": self.option, "rate_source": self.source}


def hourly_rate(device: Device, usd_per_gpu_hour: float | None, usd_per_cpu_hour: float | None) -> HourlyRate:
    """The rate charged per GPU-hour (cuda) or vCPU-hour (cpu): the option when given, else the stated default."""
    gpu = device.kind == "cuda"
    option = "usd_per_gpu_hour" if gpu else "usd_per_cpu_hour"
    given = usd_per_gpu_hour if gpu else usd_per_cpu_hour
    if given is None:
        return HourlyRate(ASSUMED_USD_PER_GPU_HOUR if gpu else ASSUMED_USD_PER_CPU_HOUR, option, "default")
    value = float(given)
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"{option} must be a non-negative number of US dollars, got {given!r}")
    return HourlyRate(value, option, "option")
