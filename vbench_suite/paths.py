"""User-level locations (never inside the installed package)."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "VBENCH_CACHE_DIR"


def cache_dir() -> Path:
    """Feature/statistics cache: $VBENCH_CACHE_DIR, else the platform's user cache dir for vbench_suite."""
    env = os.environ.get(CACHE_ENV)
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("vbench_suite"))
    path.mkdir(parents=True, exist_ok=True)
    return path
