"""Deterministic procedural renderer for shapes-world scenes.

Shapes are drawn from signed distance functions with one pixel of analytic anti-aliasing, inside a window around
each object (numpy masks; loops run only over frames and objects). The seed varies sizes, start positions, travel
distances and slight colour tints within fixed ranges, so many seeds of one prompt form a distribution of videos.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from vbench_suite.shapes.grammar import BACKGROUNDS, COLOURS, GRAMMAR_VERSION, ObjectSpec, SceneSpec, to_prompt

RENDERER_VERSION = f"{GRAMMAR_VERSION}+render-1"
"""Changes whenever the pixels produced for a (spec, seed, size, frames) change."""

MIN_SIZE = 16
"""Smallest accepted width or height in pixels."""

SIZE_RANGE = (0.16, 0.24)
"""Object side (bounding-box side) as a fraction of min(width, height), before grow/shrink scaling."""
TRAVEL_RANGE = (0.35, 0.55)
"""Distance travelled by moving objects over the clip, as a fraction of the frame along the motion axis (crowded
two-group scenes may travel down to 60% of this)."""
SCALE_CHANGE = 2.0
"""grows/shrinks: ratio of the largest to the smallest side over the clip."""
MARGIN = 0.04
"""Free border (fraction of min(width, height)) that objects never enter, so frame borders show background."""
GAP = 0.08
"""Minimum distance (fraction of min(width, height)) between two objects' bounding boxes at any time."""
DRIFT = 0.02
"""Largest sideways drift of moving objects (fraction of the frame), well below the checker's 'still' tolerance."""
TINT = 6
"""Largest per-channel colour jitter (uint8 levels) of objects; backgrounds get half of it."""


@dataclass(frozen=True)
class ObjectTrack:
    """Where one object is in every frame (pixel units, x right, y down, origin at the top-left corner)."""

    spec: ObjectSpec
    """The group this object belongs to."""
    rgb: tuple[float, float, float]
    """Drawn colour (palette colour plus tint), 0..255."""
    centres: np.ndarray
    """(T, 2) float64 bounding-box centres (x, y)."""
    sides: np.ndarray
    """(T,) float64 bounding-box side lengths."""


def _as_wh(size: int | tuple[int, int]) -> tuple[int, int]:
    width, height = (size, size) if isinstance(size, (int, np.integer)) else size
    width, height = int(width), int(height)
    if width < MIN_SIZE or height < MIN_SIZE:
        raise ValueError(f"frame size must be at least {MIN_SIZE}x{MIN_SIZE}, got {width}x{height}")
    return width, height


def scene_rng(spec: SceneSpec, seed: int) -> np.random.Generator:
    """The generator behind every random choice for (spec, seed): different prompts differ even at equal seeds."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(to_prompt(spec).encode())])


@dataclass(frozen=True)
class SceneLayout:
    """Everything `draw` needs: the background colour and one track per object."""

    background_rgb: tuple[float, float, float]
    """Drawn background colour (palette colour plus tint), 0..255."""
    tracks: tuple[ObjectTrack, ...]
    """One track per object, groups in spec order."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    num_frames: int
    """Number of frames T."""


def layout(spec: SceneSpec, num_frames: int = 16, size: int | tuple[int, int] = 64, seed: int = 0) -> SceneLayout:
    """Place every object of `spec` for `num_frames` frames: tracks stay inside the margins and never touch."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    width, height = _as_wh(size)
    rng = scene_rng(spec, seed)
    short = min(width, height)
    margin, gap = MARGIN * short, GAP * short
    t = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    group_params = []
    for obj in spec.objects:
        base = rng.uniform(*SIZE_RANGE) * short
        travel = rng.uniform(*TRAVEL_RANGE)
        tint = rng.integers(-TINT, TINT + 1, size=3)
        group_params.append((obj, base, travel, tint))
    bg_tint = rng.integers(-(TINT // 2), TINT // 2 + 1, size=3)
    background = tuple(float(np.clip(c + d, 0, 255)) for c, d in zip(BACKGROUNDS[spec.background], bg_tint))

    # Crowded scenes (e.g. three objects moving left and three moving down) may need smaller objects and shorter
    # travel; both shrink a little per round, travel never below 60% of its drawn value.
    for attempt_round in range(24):
        shrink = 0.93 ** attempt_round
        travel_scale = max(0.6, 0.95 ** attempt_round)
        paths: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (x, y, side) on _CHECK_T
        tracks: list[ObjectTrack] = []
        ok = True
        for obj, base, travel, tint in group_params:
            side_max = base * shrink * (1.2 if obj.motion in ("grows", "shrinks") else 1.0)
            dx = {"left": -travel * width, "right": travel * width}.get(obj.motion, 0.0) * travel_scale
            dy = {"up": -travel * height, "down": travel * height}.get(obj.motion, 0.0) * travel_scale
            drift = rng.uniform(-DRIFT, DRIFT)
            if obj.motion in ("left", "right"):
                dy = drift * height
            elif obj.motion in ("up", "down"):
                dx = drift * width
            rgb = tuple(float(np.clip(c + d, 0, 255)) for c, d in zip(COLOURS[obj.colour], tint))
            lo_x = margin + side_max / 2 - min(dx, 0.0)
            hi_x = width - margin - side_max / 2 - max(dx, 0.0)
            lo_y = margin + side_max / 2 - min(dy, 0.0)
            hi_y = height - margin - side_max / 2 - max(dy, 0.0)
            if lo_x > hi_x or lo_y > hi_y:
                ok = False
                break
            check_sides = _sides(obj.motion, side_max, _CHECK_T)
            for _ in range(obj.count):
                for _ in range(200):
                    x0, y0 = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
                    path = (x0 + dx * _CHECK_T, y0 + dy * _CHECK_T, check_sides)
                    if not any(_collide(path, other, gap) for other in paths):
                        break
                else:
                    ok = False
                    break
                paths.append(path)
                centres = np.stack([x0 + dx * t, y0 + dy * t], axis=1)  # (T, 2)
                tracks.append(ObjectTrack(obj, rgb, centres, _sides(obj.motion, side_max, t)))
            if not ok:
                break
        if ok:
            return SceneLayout(background, tuple(tracks), width, height, num_frames)  # type: ignore[arg-type]
    raise RuntimeError(f"could not lay out {spec} in {width}x{height}")  # not reached for up to 2 x 3 objects


_CHECK_T = np.linspace(0.0, 1.0, 65)
"""Times at which layouts are checked for collisions (independent of the frame count, so every frame count of
one (spec, seed) shows the same paths)."""


def _sides(motion: str, side_max: float, t: np.ndarray) -> np.ndarray:
    """Bounding-box side at times t in [0, 1]: constant, or scaling by SCALE_CHANGE for grows/shrinks."""
    if motion == "grows":
        return side_max * (1 / SCALE_CHANGE * (1 - t) + t)
    if motion == "shrinks":
        return side_max * (t / SCALE_CHANGE + (1 - t))
    return np.full_like(t, side_max)


def _collide(a: tuple[np.ndarray, np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray, np.ndarray],
             gap: float) -> bool:
    """Do two objects' boxes (x, y, side over time) come closer than `gap` at any common time?"""
    reach = (a[2] + b[2]) / 2 + gap
    return bool(np.any((np.abs(a[0] - b[0]) < reach) & (np.abs(a[1] - b[1]) < reach)))


def _coverage(shape: str, dx: np.ndarray, dy: np.ndarray, half: float) -> np.ndarray:
    """Fraction of each pixel inside the shape, from a signed distance (pixels) with a 1-pixel linear ramp."""
    if shape == "circle":
        sd = np.hypot(dx, dy) - half
    elif shape == "square":
        sd = np.maximum(np.abs(dx), np.abs(dy)) - half
    elif shape == "diamond":
        sd = (np.abs(dx) + np.abs(dy) - half) / np.sqrt(2.0)
    elif shape == "triangle":  # apex at (0, -half), base corners at (+-half, +half)
        sd = np.maximum((2 * np.abs(dx) - dy - half) / np.sqrt(5.0), dy - half)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.clip(0.5 - sd, 0.0, 1.0)


def draw(scene: SceneLayout) -> np.ndarray:
    """Composite the scene's tracks over its flat background. Returns uint8 (T, H, W, 3)."""
    video = np.empty((scene.num_frames, scene.height, scene.width, 3), dtype=np.uint8)
    for k in range(scene.num_frames):
        draw_frame(scene, k, out=video[k])
    return video


def draw_frame(scene: SceneLayout, k: int, out: np.ndarray | None = None) -> np.ndarray:
    """Frame `k` of the scene as uint8 (H, W, 3), exactly `draw(scene)[k]` (for drawing long clips one frame at a
    time). Writes into `out` when given.

    Each object is blended inside its own window; windows only overlap where coverage is zero, so the
    per-window rounding never changes another object's pixels.
    """
    width, height = scene.width, scene.height
    frame = np.empty((height, width, 3), dtype=np.uint8) if out is None else out
    frame[:] = np.rint(np.asarray(scene.background_rgb)).astype(np.uint8)
    for track in scene.tracks:
        colour = np.asarray(track.rgb, dtype=np.float32)
        cx, cy = track.centres[k]
        half = track.sides[k] / 2
        x_lo, x_hi = max(0, int(np.floor(cx - half - 2))), min(width, int(np.ceil(cx + half + 2)))
        y_lo, y_hi = max(0, int(np.floor(cy - half - 2))), min(height, int(np.ceil(cy + half + 2)))
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        xs = np.arange(x_lo, x_hi) + 0.5 - cx  # pixel centres relative to the object centre
        ys = np.arange(y_lo, y_hi) + 0.5 - cy
        alpha = _coverage(track.spec.shape, xs[None, :], ys[:, None], half).astype(np.float32)[..., None]
        window = frame[y_lo:y_hi, x_lo:x_hi].astype(np.float32)  # (h, w, 3)
        blended = window * (1.0 - alpha) + alpha * colour
        frame[y_lo:y_hi, x_lo:x_hi] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return frame


def render(spec: SceneSpec, num_frames: int = 16, size: int | tuple[int, int] = 64, seed: int = 0) -> np.ndarray:
    """Render `spec` as uint8 RGB video (T, H, W, 3); `size` is a side length or (width, height), each >= 16.

    Deterministic in (spec, num_frames, size, seed). Motions span the whole clip whatever its length.
    """
    return draw(layout(spec, num_frames, size, seed))
