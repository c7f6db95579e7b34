"""Real videos for the fake vendors to serve, at the size, frame rate and duration the request asked for.

Content: the shapes-world render of the prompt when it is in the shapes grammar (so quality metrics have a known
clean answer), otherwise a coloured square moving across a dark background. A scenario's `Quality` corrupts it with
a known amount of noise, blur, dropped and frozen frames. Encoding uses x264's ultrafast preset and results are
cached per (content, size, frames, corruption), so repeated requests cost nothing.
"""
from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
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
RENDER_SHORT_SIDE = 240
"""Content is drawn with at most this many pixels on the short side and scaled up (bilinear) to the requested size:
the file has the requested size, and drawing a 720p clip at full size would cost seconds for no extra information."""
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


PREBUILD_WORKERS = 1
"""Threads that build files in the background while jobs are still queued/running (so downloads seldom wait)."""

_lock = threading.Lock()
_building: dict[VideoSpec, threading.Lock] = {}
_cache: OrderedDict[VideoSpec, bytes] = OrderedDict()
_pool: ThreadPoolExecutor | None = None


def prebuild(spec: VideoSpec) -> None:
    """Start building `spec` in the background (a no-op if it is cached); `video_bytes` then waits for that build."""
    global _pool
    with _lock:
        if spec in _cache:
            return
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PREBUILD_WORKERS, thread_name_prefix="fake-vendors-encode")
        pool = _pool
    pool.submit(video_bytes, spec)


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
        data = encode(corrupted_frames(spec), spec.width, spec.height, spec.fps)
        with _lock:
            _cache[spec] = data
            _building.pop(spec, None)
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        return data


def render_size(width: int, height: int) -> tuple[int, int]:
    """Size the content is drawn at: the requested size, shrunk so the short side is at most RENDER_SHORT_SIDE."""
    scale = min(1.0, RENDER_SHORT_SIDE / min(width, height))
    return max(16, round(width * scale)), max(16, round(height * scale))


def clean_frames(spec: VideoSpec) -> np.ndarray:
    """(T, h, w, 3) uint8: the shapes-world render of the prompt at `render_size`, or the fallback moving square at
    the requested size."""
    from vbench_suite.shapes.parse import parse_prompt
    from vbench_suite.shapes.render import render

    frames = max(1, min(spec.frames, MAX_FRAMES))
    width, height = render_size(spec.width, spec.height)
    scene = parse_prompt(spec.prompt)
    if scene is not None:
        return render(scene, num_frames=frames, size=(width, height), seed=spec.seed)
    # a flat square is as cheap to draw at full size as small, and then needs no scaling per frame
    return _square(frames, spec.width, spec.height, spec.seed % VARIANTS)


def _square(frames: int, width: int, height: int, variant: int) -> np.ndarray:
    video = np.full((frames, height, width, 3), 16, dtype=np.uint8)  # (T, H, W, 3)
    side = max(2, int(min(width, height) * _SQUARE_FRACTION))
    y = (variant * max(1, height // 10)) % max(1, height - side)
    for t in range(frames):
        x = (t * (width - side)) // max(1, frames - 1)
        video[t, y:y + side, x:x + side] = _COLOURS[variant % len(_COLOURS)]
    return video


def frame_indices(n: int, quality: Quality, rng: np.random.Generator) -> list[int]:
    """Which clean frame each output frame shows: frozen frames repeat the previous output frame, dropped frames
    are left out (the clip gets shorter; at least the first frame stays)."""
    idx = list(range(n))
    if quality.frozen_frames > 0:
        for t in range(1, n):
            if rng.random() < quality.frozen_frames:
                idx[t] = idx[t - 1]
    if quality.dropped_frames > 0:
        keep = rng.random(n) >= quality.dropped_frames
        keep[0] = True
        idx = [i for i, k in zip(idx, keep) if k]
    return idx


def corrupted_frames(spec: VideoSpec, clean: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Yield the output frames, (height, width, 3) uint8 each, at the requested size with `spec.quality` applied:
    frozen/dropped frames, blur (sigma = blur x short side), Gaussian noise, then scale-up to the requested size.
    Blur and noise act at the drawing size (`render_size`), so a scenario means the same at any requested size."""
    quality = spec.quality
    rng = np.random.default_rng(spec.noise_seed)
    clean = clean_frames(spec) if clean is None else clean
    if quality.blur > 0:
        from scipy.ndimage import gaussian_filter

        sigma = quality.blur * min(clean.shape[1], clean.shape[2])
        clean = gaussian_filter(clean.astype(np.float32), sigma=(0, sigma, sigma, 0)).round().clip(0, 255).astype(
            np.uint8)
    noise_sigma = quality.noise
    cache: dict[int, np.ndarray] = {}
    for i in frame_indices(len(clean), quality, rng):
        frame = clean[i]
        if noise_sigma > 0:  # fresh, independent per pixel of the drawn frame (one grain = one drawn pixel)
            noisy = frame + rng.standard_normal(frame.shape, dtype=np.float32) * noise_sigma
            frame = noisy.round().clip(0, 255).astype(np.uint8)
            yield _resize(frame, spec.width, spec.height)
            continue
        if i not in cache:
            cache.clear()
            cache[i] = _resize(frame, spec.width, spec.height)
        yield cache[i]


def corrupt(video: np.ndarray, quality: Quality, noise_seed: int) -> np.ndarray:
    """`quality` applied to (T, H, W, 3) uint8 frames at their own size: exactly what a served file holds before
    encoding (used by tests to check the declared amounts)."""
    if quality == Quality():
        return video
    spec = VideoSpec(prompt="", width=video.shape[2], height=video.shape[1], frames=len(video), quality=quality,
                     noise_seed=noise_seed)
    return np.stack(list(corrupted_frames(spec, clean=video)))


def _resize(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BILINEAR))


def encode(frames: Iterable[np.ndarray], width: int, height: int, fps: int) -> bytes:
    """H.264 mp4 bytes of (height, width, 3) uint8 frames (yuv420p needs even sizes: odd ones get an edge pixel)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for frame in frames:
            even = np.ascontiguousarray(_even(frame[None])[0])
            for packet in stream.encode(av.VideoFrame.from_ndarray(even, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _even(video: np.ndarray) -> np.ndarray:
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if not pad_h and not pad_w:
        return video
    return np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
