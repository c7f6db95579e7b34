"""Where scoring runs: `--device auto|cpu|cuda` resolved to a torch device string (torch imported only to resolve)."""
from __future__ import annotations

from vbench_suite.errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
"""What `run --device` and `score --device` accept. auto: CUDA when this process sees a GPU, else the CPU."""


def resolve_device(name: str) -> str:
    """'auto' -> 'cuda' when torch sees a CUDA device, else 'cpu'; 'cpu' -> 'cpu'; 'cuda' (or 'cuda:N') -> itself.

    Raises `UserError` for 'cuda' where no CUDA device is visible, and for any other name.
    """
    if name == "cpu":
        return "cpu"
    if name != "auto" and name != "cuda" and not name.startswith("cuda:"):
        raise UserError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got {name!r}")
    import torch

    if torch.cuda.is_available():
        return "cuda" if name == "auto" else name
    if name == "auto":
        return "cpu"
    raise UserError(f"--device {name}: no CUDA device is visible to this process (torch.cuda.is_available() is "
                    "False); use --device auto or --device cpu, or run where a GPU and a CUDA build of torch are")
