"""Per-video I3D features for the drift test's two-sample test, cached by the video's content.

Profile `DRIFT_I3D_PROFILE`: FVD's TensorFlow preprocessing (`metrics.fvd`, profile 'tf': frames straight to 224x224
with TF1 legacy bilinear, [-1, 1], Kinetics-400 I3D logits) but with the 16 frames spread evenly over the whole clip
(`clip_policy='uniform'`) instead of the first 16, so a change late in the clip is seen. The cache holds one
float32 (400,) array per (profile, video sha256) under `<cache dir>/drift/i3d/<profile hash>/`, so each video is
run through I3D once however often it is compared.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.keys import file_sha256

log = logging.getLogger(__name__)

I3D_PROFILE_PRESET = "tf"
I3D_CLIP_POLICY = "uniform"


@dataclass
class FeatureSet:
    """Features of the videos that could be used, and why the others could not."""

    features: dict[str, np.ndarray] = field(default_factory=dict)
    """path -> float32 (400,) I3D logits."""
    errors: dict[str, str] = field(default_factory=dict)
    """path -> reason the video was left out."""
    profile: str = ""
    """The I3D profile id the features were computed under."""


def drift_profile() -> Any:
    """The `FVDProfile` drift features are computed under (see the module docstring)."""
    from vbench_suite.metrics.fvd import make_profile

    return make_profile(I3D_PROFILE_PRESET, clip_policy=I3D_CLIP_POLICY)


class FeatureCache:
    """Computes I3D features with `metrics.fvd`'s extractor (loaded on first miss) and keeps them on disk."""

    def __init__(self, cache_dir: Path, weights: str | None = None, device: str = "cpu") -> None:
        self.profile = drift_profile()
        tag = hashlib.sha256(self.profile.id.encode()).hexdigest()[:12]
        self.dir = Path(cache_dir) / "drift" / "i3d" / tag
        self._weights, self._device = weights, device
        self._extractor: Any = None

    def _path(self, sha: str) -> Path:
        return self.dir / sha[:2] / f"{sha}.npy"

    def features(self, paths: Sequence[str | Path]) -> FeatureSet:
        """I3D features of every path (from the cache when the same bytes were seen before)."""
        out = FeatureSet(profile=self.profile.id)
        for p in paths:
            p = str(p)
            try:
                sha = file_sha256(p)
            except OSError as exc:
                out.errors[p] = f"cannot read: {exc.strerror or exc}"
                continue
            cached = self._path(sha)
            if cached.is_file():
                try:
                    out.features[p] = np.load(cached, allow_pickle=False).astype(np.float32)
                    continue
                except (OSError, ValueError):
                    cached.unlink(missing_ok=True)   # a torn write: compute it again
            try:
                vec = self._compute(p)
            except Exception as exc:  # noqa: BLE001 - one unusable video is left out with its reason
                from vbench_suite.errors import MetricUnavailable

                if isinstance(exc, MetricUnavailable):
                    raise
                out.errors[p] = f"{type(exc).__name__}: {exc}"
                continue
            out.features[p] = vec
            _save_atomic(cached, vec)
        return out

    def _compute(self, path: str) -> np.ndarray:
        from vbench_suite.metrics.fvd import I3DFeatureExtractor, stream_clip

        clip, _ = stream_clip(path, self.profile)        # (T, 224, 224, 3) in [-1, 1]
        if self._extractor is None:
            self._extractor = I3DFeatureExtractor(self.profile, device=self._device, weights=self._weights)
        return self._extractor.clip_logits([clip])[0].astype(np.float32)


def _save_atomic(path: Path, vec: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, vec)
    os.replace(tmp, path)
