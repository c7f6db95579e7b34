"""Real videos for the fake vendors to serve, at the size, frame rate and duration the request asked for.

Content: the shapes-world render of the prompt when it is in the shapes grammar (so quality metrics have a known
clean answer), otherwise a coloured square moving across a dark background. A scenario's `Quality` corrupts it with
a known amount of noise, blur, dropped and frozen frames.

Memory and time are bounded whatever the requests: frames are drawn one at a time and streamed into the encoder
(never a whole clip in memory), at most ENCODE_SLOTS files are built at once, a clip has at most MAX_FRAMES frames,
and finished files are cached (CACHE_BYTES in all) under `cache_key`, which leaves out what does not change the
bytes (the text of a non-shapes prompt, the noise seed of a clip without random corruption), so identical requests
reuse one file. Encoding uses x264's ultrafast preset.
"""
from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import lru_cache

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
"""Shapes scenes (and corrupted fallback content) are drawn with at most this many pixels on the short side and
scaled up (bilinear) to the requested size: the file has the requested size, and drawing a 720p clip at full size
would cost seconds for no extra information."""
ENCODE_SLOTS = 2
"""Files built at the same time, whatever the number of concurrent requests (each build holds an encoder and a few
frames: tens of MB at 1080p); other builds wait their turn."""
CACHE_BYTES = 256 * 2**20
"""Encoded files kept in memory, in bytes of mp4 (least recently used dropped first)."""
_SQUARE_FRACTION = 0.25
_COLOURS = ((230, 60, 60), (60, 200, 90), (70, 110, 240), (240, 200, 40), (200, 80, 220), (40, 210, 220),
            (250, 140, 40), (235, 235, 235))


@dataclass(frozen=True)
class VideoSpec:
    """What a served file shows (size, frames, content, corruption); `cache_key` says which fields decide its bytes."""

    prompt: str
    width: int
    height: int
    frames: int
    fps: int = FPS
    seed: int = 0
    """Shapes-world layout seed (or the fallback variant)."""
    quality: Quality = Quality()
    noise_seed: int = 0


PREBUILD_WORKERS = ENCODE_SLOTS
"""Threads that build files in the background while jobs are still queued/running (they share ENCODE_SLOTS with
builds started by downloads)."""

_lock = threading.Lock()
_encode_slots = threading.BoundedSemaphore(ENCODE_SLOTS)
_building: dict[VideoSpec, threading.Lock] = {}
_queued: set[VideoSpec] = set()
_cache: OrderedDict[VideoSpec, bytes] = OrderedDict()
_cache_bytes = 0
_pool: ThreadPoolExecutor | None = None


@lru_cache(maxsize=4096)
def _scene(prompt: str):  # SceneSpec | None
    from vbench_suite.shapes.parse import parse_prompt

    return parse_prompt(prompt)


def is_shapes_prompt(text: str) -> bool:
    """True when `text` is in the shapes grammar (the fake then serves its shapes-world render)."""
    return _scene(text) is not None


def _is_random(quality: Quality) -> bool:
    return quality.noise > 0 or quality.dropped_frames > 0 or quality.frozen_frames > 0


def cache_key(spec: VideoSpec) -> VideoSpec:
    """The one function that decides which specs share a file: `spec` with everything that does not change the
    bytes normalised (a non-shapes prompt's text and its seed beyond the variant, the noise seed of a clip without
    random corruption, frames beyond MAX_FRAMES)."""
    key = replace(spec, frames=max(1, min(spec.frames, MAX_FRAMES)))
    if not is_shapes_prompt(spec.prompt):
        key = replace(key, prompt="", seed=spec.seed % VARIANTS)
    if not _is_random(spec.quality):
        key = replace(key, noise_seed=0)
    return key


def prebuild(spec: VideoSpec) -> None:
    """Queue building `spec` in the background (a no-op if it is built or queued); `video_bytes` waits for that
    build when it has started."""
    global _pool
    key = cache_key(spec)
    with _lock:
        if key in _cache or key in _queued:
            return
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=PREBUILD_WORKERS, thread_name_prefix="fake-vendors-encode")
        _queued.add(key)
        pool = _pool
    pool.submit(_prebuilt, key)


def _prebuilt(key: VideoSpec) -> None:
    try:
        video_bytes(key)
    finally:
        with _lock:
            _queued.discard(key)


def is_built(spec: VideoSpec) -> bool:
    """Is the file for `spec` in the cache (ready to serve without encoding)?"""
    with _lock:
        return cache_key(spec) in _cache


def video_bytes(spec: VideoSpec) -> bytes:
    """The mp4 for `spec` (H.264, yuv420p), built once and cached; concurrent callers of one key wait for one build,
    and at most ENCODE_SLOTS builds run at once."""
    global _cache_bytes
    key = cache_key(spec)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        build_lock = _building.setdefault(key, threading.Lock())
    with build_lock:
        with _lock:
            if key in _cache:
                return _cache[key]
        try:
            with _encode_slots:
                data = encode(corrupted_frames(key), key.width, key.height, key.fps)
        finally:
            with _lock:
                _building.pop(key, None)
        with _lock:
            if key not in _cache:
                _cache[key] = data
                _cache_bytes += len(data)
            while _cache_bytes > CACHE_BYTES and len(_cache) > 1:
                _, dropped = _cache.popitem(last=False)
                _cache_bytes -= len(dropped)
        return data


def render_size(width: int, height: int) -> tuple[int, int]:
    """Size the content is drawn at: the requested size, shrunk so the short side is at most RENDER_SHORT_SIDE."""
    scale = min(1.0, RENDER_SHORT_SIDE / min(width, height))
    return max(16, round(width * scale)), max(16, round(height * scale))


def _frame_source(spec: VideoSpec) -> tuple[int, Callable[[int], np.ndarray]]:
    """(number of clean frames, frame(i) -> (h, w, 3) uint8): the shapes-world render of the prompt at
    `render_size`, or the fallback moving square (at the requested size when clean, else at `render_size`)."""
    from vbench_suite.shapes.render import draw_frame, layout

    frames = max(1, min(spec.frames, MAX_FRAMES))
    scene = _scene(spec.prompt)
    if scene is not None:
        scene_layout = layout(scene, num_frames=frames, size=render_size(spec.width, spec.height), seed=spec.seed)
        return frames, lambda i: draw_frame(scene_layout, i)
    width, height = (spec.width, spec.height) if not _is_random(spec.quality) and spec.quality.blur == 0 else \
        render_size(spec.width, spec.height)
    return frames, lambda i: _square_frame(i, frames, width, height, spec.seed % VARIANTS)


def clean_frames(spec: VideoSpec) -> np.ndarray:
    """(T, h, w, 3) uint8: the whole clean clip as `_frame_source` draws it (tests; serving never holds a clip)."""
    n, frame = _frame_source(spec)
    return np.stack([frame(i) for i in range(n)])


def _square_frame(t: int, frames: int, width: int, height: int, variant: int) -> np.ndarray:
    """Frame t of the fallback content: a flat square crossing a dark background left to right."""
    frame = np.full((height, width, 3), 16, dtype=np.uint8)  # (H, W, 3)
    side = max(2, int(min(width, height) * _SQUARE_FRACTION))
    y = (variant * max(1, height // 10)) % max(1, height - side)
    x = (t * (width - side)) // max(1, frames - 1)
    frame[y:y + side, x:x + side] = _COLOURS[variant % len(_COLOURS)]
    return frame


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
    Frames are drawn when needed (at most one clean frame is held). Blur and noise act at the drawing size, so a
    scenario means the same at any requested size. `clean` (T, h, w, 3): corrupt these frames instead."""
    quality = spec.quality
    rng = np.random.default_rng(spec.noise_seed)
    if clean is None:
        n, source = _frame_source(spec)
    else:
        n, source = len(clean), clean.__getitem__
    held: tuple[int, np.ndarray] | None = None  # (clean index, blurred frame): frozen frames repeat it
    resized: tuple[int, np.ndarray] | None = None
    for i in frame_indices(n, quality, rng):
        if held is None or held[0] != i:
            held = (i, _blur(source(i), quality.blur))
        frame = held[1]
        if quality.noise > 0:  # fresh, independent per pixel of the drawn frame (one grain = one drawn pixel)
            noisy = frame + rng.standard_normal(frame.shape, dtype=np.float32) * quality.noise
            yield _resize(noisy.round().clip(0, 255).astype(np.uint8), spec.width, spec.height)
            continue
        if resized is None or resized[0] != i:
            resized = (i, _resize(frame, spec.width, spec.height))
        yield resized[1]


def _blur(frame: np.ndarray, blur: float) -> np.ndarray:
    """Spatial Gaussian blur with sigma = blur x the frame's short side (none at 0)."""
    if blur <= 0:
        return frame
    from scipy.ndimage import gaussian_filter

    sigma = blur * min(frame.shape[0], frame.shape[1])
    return gaussian_filter(frame.astype(np.float32), sigma=(sigma, sigma, 0)).round().clip(0, 255).astype(np.uint8)


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
    """H.264 mp4 bytes of (height, width, 3) uint8 frames, consumed one at a time (yuv420p needs even sizes: odd
    ones get an edge pixel)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width + width % 2, height + height % 2, "yuv420p"
        # ultrafast has no lookahead or B-frames; two threads keep an encoder's frame buffers few and its memory small
        stream.options = {"preset": "ultrafast", "crf": "23", "threads": "2"}
        for frame in frames:
            even = np.ascontiguousarray(_even(frame))
            for packet in stream.encode(av.VideoFrame.from_ndarray(even, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _even(frame: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if not pad_h and not pad_w:
        return frame
    return np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
