"""Real videos for the fake vendors to serve, at the size, frame rate and duration the request asked for.

Content: the shapes-world render of the prompt when it is in the shapes grammar (so quality metrics have a known
clean answer), otherwise a coloured square moving across a dark background. A scenario's `Quality` corrupts it with
a known amount of noise, blur, dropped and frozen frames. Encoding uses x264's ultrafast preset and results are
cached per (content, size, frames, corruption), so repeated requests cost nothing.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from vbench_suite.fake_vendors.scenario import Quality

VARIANTS = 8
"""How many distinct fallback (non-shapes) contents the fake serves (chosen per request)."""
FPS = 24
"""Output frame rate of every fake vendor. The vendor docs do not state one; 24 fps is what these vendors' text-to-
video models deliver in practice, so the fake uses it."""
MAX_FRAMES = 24 * 20
"""Longest clip the fake renders (20 s at 24 fps); longer requests are rejected by the vendors anyway."""
CACHE_ENTRIES = 64
"""Encoded files kept in memory (oldest dropped first)."""
_SQUARE_FRACTION = 0.25
_COLOURS = ((230, 60, 60), (60, 200, 90), (70, 110, 240), (240, 200, 40), (200, 80, 220), (40, 210, 220),
            (250, 140, 40), (235, 235, 235))


@dataclass(frozen=True)
class VideoSpec:
    """Everything that decides the bytes of a served file (the cache key)."""

    prompt: str
    width: int
    height: int
    frames: int
    fps: int = FPS
    seed: int = 0
    """Shapes-world layout seed (or the fallback variant)."""
    quality: Quality = Quality()
    noise_seed: int = 0


_lock = threading.Lock()
_building: dict[VideoSpec, threading.Lock] = {}
_cache: OrderedDict[VideoSpec, bytes] = OrderedDict()


def video_bytes(spec: VideoSpec) -> bytes:
    """The mp4 for `spec` (H.264, yuv420p), built once and cached; concurrent callers of one spec wait for one build."""
    with _lock:
        if spec in _cache:
            _cache.move_to_end(spec)
            return _cache[spec]
        build_lock = _building.setdefault(spec, threading.Lock())
    with build_lock:
        with _lock:
            if spec in _cache:
                return _cache[spec]
        data = encode(corrupt(clean_frames(spec), spec.quality, spec.noise_seed), spec.fps)
        with _lock:
            _cache[spec] = data
            _building.pop(spec, None)
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        return data


def clean_frames(spec: VideoSpec) -> np.ndarray:
    """(T, H, W, 3) uint8: the shapes-world render of the prompt, or the fallback moving square."""
    from vbench_suite.shapes.parse import parse_prompt
    from vbench_suite.shapes.render import render

    frames = max(1, min(spec.frames, MAX_FRAMES))
    scene = parse_prompt(spec.prompt)
    if scene is not None:
        return render(scene, num_frames=frames, size=(spec.width, spec.height), seed=spec.seed)
    return _square(frames, spec.width, spec.height, spec.seed % VARIANTS)


def _square(frames: int, width: int, height: int, variant: int) -> np.ndarray:
    video = np.full((frames, height, width, 3), 16, dtype=np.uint8)  # (T, H, W, 3)
    side = max(2, int(min(width, height) * _SQUARE_FRACTION))
    y = (variant * max(1, height // 10)) % max(1, height - side)
    for t in range(frames):
        x = (t * (width - side)) // max(1, frames - 1)
        video[t, y:y + side, x:x + side] = _COLOURS[variant % len(_COLOURS)]
    return video


def corrupt(video: np.ndarray, quality: Quality, noise_seed: int) -> np.ndarray:
    """Apply `quality` to (T, H, W, 3) uint8 frames, deterministically in `noise_seed`.

    Order: frozen frames (output frame t repeats t-1), blur, noise, then dropped frames are removed (at least one
    frame always remains).
    """
    if quality == Quality():
        return video
    rng = np.random.default_rng(noise_seed)
    out = video.copy()
    if quality.frozen_frames > 0:
        for t in range(1, len(out)):
            if rng.random() < quality.frozen_frames:
                out[t] = out[t - 1]
    if quality.blur > 0:
        from scipy.ndimage import gaussian_filter

        sigma = quality.blur * min(out.shape[1], out.shape[2])
        out = gaussian_filter(out.astype(np.float32), sigma=(0, sigma, sigma, 0)).round().clip(0, 255).astype(np.uint8)
    if quality.noise > 0:
        noisy = out.astype(np.float32) + rng.normal(0.0, quality.noise, out.shape).astype(np.float32)
        out = noisy.round().clip(0, 255).astype(np.uint8)
    if quality.dropped_frames > 0:
        keep = rng.random(len(out)) >= quality.dropped_frames
        keep[0] = True
        out = out[keep]
    return out


def encode(video: np.ndarray, fps: int) -> bytes:
    """H.264 mp4 bytes of (T, H, W, 3) uint8 frames (yuv420p needs even sizes: odd sizes are padded by one pixel)."""
    import av

    frames = _even(video)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _even(video: np.ndarray) -> np.ndarray:
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if not pad_h and not pad_w:
        return video
    return np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
