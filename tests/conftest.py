"""Test-wide settings: offline, small thread counts, caches in a temporary folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing may reach a hub at test time; libraries that would try must fail fast instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets a private cache dir unless it sets its own."""
    monkeypatch.setenv("VBENCH_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "vbench-cache"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared/, or skip the test with the reason (users' clones have no ../shared/)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the team's shared reference data, absent outside the dev/CI machines)")
    return path
