"""Small real videos for the fake vendors to serve: a coloured square moving across a dark background."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

VARIANTS = 8
"""How many distinct videos the fake serves (chosen per request, so sha256s identify requests)."""
SIZE = 64
"""Width and height in pixels."""
FRAMES = 8
FPS = 8
SQUARE = 16
_COLOURS = ((230, 60, 60), (60, 200, 90), (70, 110, 240), (240, 200, 40), (200, 80, 220), (40, 210, 220),
            (250, 140, 40), (235, 235, 235))

_lock = threading.Lock()
_cache: list[bytes] = []


def videos() -> list[bytes]:
    """The VARIANTS mp4 files as bytes (encoded once per process with PyAV)."""
    with _lock:
        if not _cache:
            _cache.extend(_encode_variant(i) for i in range(VARIANTS))
        return list(_cache)


def _frames(variant: int):  # -> (T, H, W, 3) uint8
    import numpy as np

    frames = np.full((FRAMES, SIZE, SIZE, 3), 16, dtype=np.uint8)  # (T, H, W, 3)
    colour = _COLOURS[variant % len(_COLOURS)]
    for t in range(FRAMES):
        x = (t * (SIZE - SQUARE)) // max(1, FRAMES - 1)
        y = (variant * 6) % (SIZE - SQUARE)
        frames[t, y:y + SQUARE, x:x + SQUARE] = colour
    return frames


def _encode_variant(variant: int) -> bytes:
    frames = _frames(variant)
    with tempfile.TemporaryDirectory(prefix="vbench-fake-") as tmp:
        path = Path(tmp) / f"v{variant}.mp4"
        try:
            from vbench_suite.video.write import write_video
        except ImportError:  # the lead's writer not present: a minimal PyAV encode
            _encode_pyav(path, frames)
        else:
            write_video(path, frames, FPS, pix_fmt="yuv420p", crf=23)
        return path.read_bytes()


def _encode_pyav(path: Path, frames) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
