"""Analytic prompt-adherence checks for videos of the shapes world: are the requested colours, shapes, counts,
motions and background in the pixels?

Per frame: estimate the background colour from the frame border, segment pixels that differ from it, split them
into connected objects, classify each object's colour by the nearest palette colour of its core pixels and its
shape from moments of its coverage map, corrected for an unknown amount of blur (see `shape_features`).
Per video: follow each requested colour group's centroid and area through time and fit straight lines.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from vbench_suite.shapes.grammar import BACKGROUNDS, COLOURS, SHAPES, SceneSpec

ANALYSIS_SHORT_SIDE = 64
"""Frames are box-downscaled by an integer factor until their short side is below twice this."""
FOREGROUND_DISTANCE = 40.0
"""RGB distance from the background (0..441) above which a pixel may belong to an object."""
MIN_OBJECT_AREA = 0.0015
"""Smallest object, as a fraction of the frame area (and at least 4 analysis pixels); smaller blobs are noise."""
STILL_TOLERANCE = 0.10
"""Largest centroid travel over the clip (fraction of the frame) still counted as not moving."""
SCALE_TOLERANCE = 2.0
"""Smallest fitted area ratio (last/first frame) counted as growing (or 1/ratio as shrinking)."""

SHAPE_FEATURE_SCALES = (0.08, 0.2, 0.2, 0.12)
"""Tolerances of the four shape features (see `shape_features`) in the nearest-prototype distance."""

_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in _PALETTE_NAMES], dtype=np.float64)  # (K, 3)
_BG_NAMES = tuple(BACKGROUNDS)
_BG_PALETTE = np.array([BACKGROUNDS[b] for b in _BG_NAMES], dtype=np.float64)


@dataclass(frozen=True)
class DetectedObject:
    """One object found in one frame. Coordinates are fractions of the frame (x right, y down)."""

    colour: str
    """Nearest palette colour of the object's core pixels."""
    shape: str
    """Nearest shape prototype."""
    centroid: tuple[float, float]
    """(x, y) centroid in [0, 1]."""
    area: float
    """Area as a fraction of the frame area."""
    rgb: tuple[float, float, float]
    """Median core colour, 0..255."""
    features: tuple[float, ...]
    """Blur-corrected shape features (see `shape_features`)."""


@dataclass(frozen=True)
class GroupMeasurement:
    """What the video shows for one requested object group."""

    colour: str
    """The requested colour this group was matched by."""
    frames_seen: int
    """Frames containing at least one object of this colour."""
    count: int
    """Most common number of objects of this colour per frame (frames where it appears)."""
    shape: str | None
    """Area-weighted majority shape over all frames, None if never seen."""
    motion: str | None
    """Classified motion, None if seen in fewer than two frames."""
    dx: float
    """Fitted centroid travel over the clip, fraction of the frame width (positive = right)."""
    dy: float
    """Fitted centroid travel over the clip, fraction of the frame height (positive = down)."""
    area_ratio: float
    """Fitted area at the last frame over area at the first frame."""


@dataclass(frozen=True)
class AdherenceResult:
    """Whether a video shows what a `SceneSpec` asks for, with the measurements behind each answer."""

    colour_ok: bool
    """Every requested colour appears in most frames, and no other object colour does."""
    shape_ok: bool
    """Every group's majority shape is the requested shape."""
    motion_ok: bool
    """Every group's classified motion is the requested motion."""
    count_ok: bool
    """Every group's typical per-frame count is the requested count."""
    background_ok: bool
    """The background is nearest to the requested background colour."""
    background: str
    """Measured background colour name."""
    unexpected_colours: tuple[str, ...]
    """Object colours seen in most frames that the spec does not ask for."""
    groups: tuple[GroupMeasurement, ...]
    """One measurement per requested group, in spec order."""

    @property
    def passed(self) -> bool:
        """True when every requested attribute is present."""
        return self.colour_ok and self.shape_ok and self.motion_ok and self.count_ok and self.background_ok

    def as_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for `ScoreRecord.extra`)."""
        d = asdict(self)
        d["passed"] = self.passed
        d["unexpected_colours"] = list(self.unexpected_colours)
        return d


def _downscale(video: np.ndarray) -> np.ndarray:
    """Box-average uint8 (T, H, W, 3) by an integer factor, one frame at a time; returns float64 (T, h, w, 3)."""
    t, h, w, _ = video.shape
    f = max(1, min(h, w) // ANALYSIS_SHORT_SIDE)
    if f == 1:
        return video.astype(np.float64)
    h2, w2 = h // f, w // f
    out = np.empty((t, h2, w2, 3), dtype=np.float64)
    for k in range(t):
        out[k] = video[k, :h2 * f, :w2 * f].reshape(h2, f, w2, f, 3).mean(axis=(1, 3))
    return out


def _check_video(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim == 3:
        video = video[None]
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or video.shape[0] < 1:
        raise ValueError(f"expected uint8 video (T, H, W, 3), got {video.dtype} {video.shape}")
    return video


def estimate_background(frames: np.ndarray) -> np.ndarray:
    """Median colour of the 2-pixel border of float frames (T, H, W, 3) or (H, W, 3). Returns (3,) 0..255."""
    f = frames if frames.ndim == 4 else frames[None]
    border = np.concatenate([f[:, :2].reshape(-1, 3), f[:, -2:].reshape(-1, 3),
                             f[:, :, :2].reshape(-1, 3), f[:, :, -2:].reshape(-1, 3)])
    return np.median(border, axis=0)


def nearest_colour(rgb: np.ndarray, exclude: tuple[str, ...] = ()) -> str:
    """Name of the palette colour nearest to `rgb` (3,) in RGB distance, skipping names in `exclude`."""
    d = np.linalg.norm(_PALETTE - np.asarray(rgb, dtype=np.float64), axis=1)
    for i, name in enumerate(_PALETTE_NAMES):
        if name in exclude:
            d[i] = np.inf
    return _PALETTE_NAMES[int(np.argmin(d))]


def nearest_background(rgb: np.ndarray) -> str:
    """Name of the background colour nearest to `rgb` (3,)."""
    return _BG_NAMES[int(np.argmin(np.linalg.norm(_BG_PALETTE - np.asarray(rgb, dtype=np.float64), axis=1)))]


def _moments(weights: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """Central moments (E x^2, E y^2, E x^2 y^2, E x^4, E y^4, E y^3) of a non-negative weight map (h, w), in pixels."""
    h, w = weights.shape
    total = weights.sum()
    ys = np.arange(h, dtype=np.float64)[:, None]
    xs = np.arange(w, dtype=np.float64)[None, :]
    x = xs - (weights * xs).sum() / total
    y = ys - (weights * ys).sum() / total
    x2, y2 = x * x, y * y

    def e(f: np.ndarray) -> float:
        return float((weights * f).sum() / total)

    return e(x2), e(y2), e(x2 * y2), e(x2 * x2), e(y2 * y2), e(y2 * y)


def _normalised(a: float, b: float, c: float, kx: float, ky: float, s3: float) -> np.ndarray:
    return np.array([c / (a * b), kx / (a * a), ky / (b * b), s3 / b ** 1.5])


@lru_cache(maxsize=1)
def shape_prototypes() -> dict[str, np.ndarray]:
    """Feature vector of every shape, measured on the renderer's own geometry at 256 px (no blur)."""
    from vbench_suite.shapes.render import _coverage  # the one definition of each shape's outline

    n = 256
    grid = np.arange(n) + 0.5 - n / 2
    return {shape: _normalised(*_moments(_coverage(shape, grid[None, :], grid[:, None], 0.4 * n)))
            for shape in SHAPES}


def shape_features(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Blur-corrected features of an object's coverage map (h, w) in [0, 1], and the blur sigma (pixels) assumed.

    Features: E[x^2 y^2] / (E[x^2] E[y^2]), the kurtosis of x, the kurtosis of y and the skewness of y (central
    moments; x right, y down). An isotropic Gaussian blur of variance v adds known terms to these moments
    (E[x^2] + v, E[x^4] + 6 v E[x^2] + 3 v^2, E[x^2 y^2] + v (E[x^2] + E[y^2]) + v^2), so they are undone for each
    candidate v and the caller keeps the v that best matches a prototype.
    """
    a, b, c, kx, ky, s3 = _moments(weights)
    v = np.linspace(0.0, 0.8 * min(a, b), 33)  # candidate blur variances (pixels^2)
    a0, b0 = a - v, b - v
    c0 = c - v * (a0 + b0) - v * v
    kx0 = kx - 6 * v * a0 - 3 * v * v
    ky0 = ky - 6 * v * b0 - 3 * v * v
    valid = (c0 > 0) & (kx0 > 0) & (ky0 > 0)
    valid[0] = True  # no correction is always a candidate
    a0, b0, c0, kx0, ky0, v = a0[valid], b0[valid], c0[valid], kx0[valid], ky0[valid], v[valid]
    feats = np.stack([c0 / (a0 * b0), kx0 / (a0 * a0), ky0 / (b0 * b0), s3 / b0 ** 1.5], axis=1)  # (V, 4)
    protos = np.stack(list(shape_prototypes().values()))  # (S, 4)
    dist = (((feats[:, None, :] - protos[None]) / SHAPE_FEATURE_SCALES) ** 2).sum(-1).min(axis=1)  # (V,)
    best = int(np.argmin(dist))
    return feats[best], float(np.sqrt(v[best]))


def classify_shape(weights: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """Shape of an object's coverage map (h, w) in [0, 1]: the prototype nearest to its blur-corrected features."""
    features, _ = shape_features(weights)
    protos = shape_prototypes()
    best = min(protos, key=lambda s: float(np.sum(((protos[s] - features) / SHAPE_FEATURE_SCALES) ** 2)))
    return best, tuple(float(f) for f in features)


def _objects_in(frame: np.ndarray, background: np.ndarray, exclude: tuple[str, ...]) -> list[DetectedObject]:
    """Objects in one float frame (h, w, 3) over a known background colour."""
    h, w, _ = frame.shape
    dist = np.linalg.norm(frame - background, axis=-1)  # (h, w)
    # Split objects at a fraction of the strongest (noise-smoothed) contrast, so blur halos do not join neighbours.
    threshold = max(FOREGROUND_DISTANCE, 0.4 * float(ndimage.uniform_filter(dist, 3).max()))
    labels, n = ndimage.label(dist > threshold)
    if n == 0:
        return []
    min_area = max(4.0, MIN_OBJECT_AREA * h * w)
    # Contrast that plain background reaches through noise and compression: coverage starts above it.
    border = np.concatenate([dist[:2].ravel(), dist[-2:].ravel(), dist[:, :2].ravel(), dist[:, -2:].ravel()])
    floor = float(np.percentile(border, 95))
    pad = 3
    objects = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        ys = slice(max(0, box[0].start - pad), min(h, box[0].stop + pad))
        xs = slice(max(0, box[1].start - pad), min(w, box[1].stop + pad))
        window_labels = labels[ys, xs]
        own = window_labels == index
        if own.sum() < min_area:
            continue
        d = dist[ys, xs]
        peak = float(np.percentile(d[own], 90))
        # Coverage: share of the object colour in each pixel (blur and anti-aliasing mix it with the background).
        coverage = np.clip((d - floor) / max(peak - floor, 1e-6), 0.0, 1.0)
        support = ndimage.binary_dilation(own, structure=np.ones((3, 3), bool), iterations=pad)
        coverage[~support | ((window_labels != 0) & ~own)] = 0.0  # far away, or another object
        if coverage.sum() < min_area:
            continue
        core = own & (d >= 0.75 * peak)
        rgb = np.median(frame[ys, xs][core if core.any() else own], axis=0)
        shape, features = classify_shape(coverage)
        total = coverage.sum()
        cy = (coverage.sum(axis=1) * (np.arange(coverage.shape[0]) + 0.5)).sum() / total + ys.start
        cx = (coverage.sum(axis=0) * (np.arange(coverage.shape[1]) + 0.5)).sum() / total + xs.start
        objects.append(DetectedObject(nearest_colour(rgb, exclude), shape, (float(cx / w), float(cy / h)),
                                      float(total) / (h * w), tuple(float(c) for c in rgb), features))
    return objects


def detect_objects(frame: np.ndarray, background_rgb: tuple[float, float, float] | None = None) -> list[DetectedObject]:
    """Objects in one uint8 frame (H, W, 3); the background colour is estimated from the border unless given."""
    small = _downscale(_check_video(frame))
    bg = estimate_background(small) if background_rgb is None else np.asarray(background_rgb, dtype=np.float64)
    return _objects_in(small[0], bg, (nearest_background(bg),))


def detect_video(video: np.ndarray) -> tuple[str, list[list[DetectedObject]]]:
    """Measured background name and the objects of every frame of a uint8 video (T, H, W, 3)."""
    small = _downscale(_check_video(video))
    bg = estimate_background(small)
    bg_name = nearest_background(bg)
    # An object the colour of the background would be invisible, so that palette entry is never a candidate.
    return bg_name, [_objects_in(frame, bg, (bg_name,)) for frame in small]


def frame_colours(video: np.ndarray) -> list[str | None]:
    """Per frame, the object colour covering the most area (None for a frame without objects)."""
    _, per_frame = detect_video(video)
    out: list[str | None] = []
    for objects in per_frame:
        areas: Counter[str] = Counter()
        for obj in objects:
            areas[obj.colour] += obj.area
        out.append(areas.most_common(1)[0][0] if areas else None)
    return out


def _fit_travel(t: np.ndarray, values: np.ndarray) -> float:
    """Slope of a least-squares line through (t, values) with t in [0, 1]: the fitted change over the clip."""
    if t.size < 2 or np.ptp(t) == 0:
        return 0.0
    return float(np.polyfit(t, values, 1)[0])


def classify_motion(dx: float, dy: float, area_ratio: float) -> str:
    """Motion name from fitted travel (fractions of the frame) and area ratio (last / first)."""
    if area_ratio >= SCALE_TOLERANCE:
        return "grows"
    if area_ratio <= 1 / SCALE_TOLERANCE:
        return "shrinks"
    if max(abs(dx), abs(dy)) < STILL_TOLERANCE:
        return "still"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _measure_group(colour: str, expected_count: int, per_frame: list[list[DetectedObject]]) -> GroupMeasurement:
    num_frames = len(per_frame)
    t_all = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    counts, shape_votes = [], Counter()
    rows = []  # (t, x, y, area, count)
    for k, objects in enumerate(per_frame):
        mine = [o for o in objects if o.colour == colour]
        if not mine:
            continue
        counts.append(len(mine))
        for o in mine:
            shape_votes[o.shape] += o.area
        area = sum(o.area for o in mine)
        x = sum(o.centroid[0] * o.area for o in mine) / area
        y = sum(o.centroid[1] * o.area for o in mine) / area
        rows.append((t_all[k], x, y, area, len(mine)))
    if not rows:
        return GroupMeasurement(colour, 0, 0, None, None, 0.0, 0.0, 1.0)
    count = Counter(counts).most_common(1)[0][0]
    track = np.array(rows)  # (F, 5)
    # Frames where objects merged or vanished would make the group centroid jump: fit only the complete frames.
    complete = track[track[:, 4] == expected_count]
    if complete.shape[0] >= 2:
        track = complete
    motion = None
    dx = dy = 0.0
    ratio = 1.0
    if track.shape[0] >= 2:
        dx = _fit_travel(track[:, 0], track[:, 1])
        dy = _fit_travel(track[:, 0], track[:, 2])
        ratio = float(np.exp(_fit_travel(track[:, 0], np.log(track[:, 3]))))
        motion = classify_motion(dx, dy, ratio)
    shape = shape_votes.most_common(1)[0][0]
    return GroupMeasurement(colour, len(rows), int(count), shape, motion, dx, dy, ratio)


def check_adherence(video: np.ndarray | None, spec: SceneSpec,
                    detected: tuple[str, list[list[DetectedObject]]] | None = None) -> AdherenceResult:
    """Check a uint8 video (T, H, W, 3) against `spec`. Motion needs T >= 2 (with T == 1 only 'still' passes).

    `detected` may carry `detect_video(video)`'s answer to check one video against several specs without
    measuring it again (then `video` is not read and may be None).
    """
    if detected is None:
        if video is None:
            raise ValueError("check_adherence needs a video or its detect_video() result")
        detected = detect_video(video)
    bg_name, per_frame = detected
    num_frames = len(per_frame)
    groups = tuple(_measure_group(o.colour, o.count, per_frame) for o in spec.objects)
    wanted = {o.colour for o in spec.objects}
    frames_with: Counter[str] = Counter()
    for objects in per_frame:
        for colour in {o.colour for o in objects}:
            frames_with[colour] += 1
    unexpected = tuple(sorted(c for c, n in frames_with.items() if c not in wanted and n > num_frames / 2))
    colour_ok = all(g.frames_seen > num_frames / 2 for g in groups) and not unexpected
    shape_ok = all(g.shape == o.shape for g, o in zip(groups, spec.objects))
    count_ok = all(g.count == o.count for g, o in zip(groups, spec.objects))
    if num_frames >= 2:
        motion_ok = all(g.motion == o.motion for g, o in zip(groups, spec.objects))
    else:
        motion_ok = all(o.motion == "still" and g.frames_seen for g, o in zip(groups, spec.objects))
    return AdherenceResult(colour_ok, shape_ok, motion_ok, count_ok, bg_name == spec.background, bg_name,
                           unexpected, groups)
