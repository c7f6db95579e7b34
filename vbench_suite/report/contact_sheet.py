"""Still pictures of a video for reports: a poster frame and a contact sheet (a strip of evenly spaced frames).

Frames arrive one at a time (a video is streamed, never held whole): `FrameSampler` keeps at most `KEEP_MAX`
frames, evenly spaced over everything seen so far, by dropping every other kept frame and doubling its stride
whenever it is full. Memory: `KEEP_MAX` frames at poster size, whatever the video's length.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

SHEET_FRAMES = 8
"""Frames in a contact sheet (fewer when the video has fewer)."""
SHEET_TILE_HEIGHT = 72
"""Height in pixels of each contact-sheet frame (smaller videos keep their own height: never upscaled)."""
SHEET_GAP = 2
"""Pixels of white between contact-sheet frames."""
POSTER_MAX_SIDE = 320
"""Posters are downscaled to at most this many pixels on their long side."""
POSTER_PNG_MAX_SIDE = 128
"""Posters up to this size are PNG (exact pixels); larger ones JPEG at `POSTER_JPEG_QUALITY` (a tenth the bytes)."""
POSTER_JPEG_QUALITY = 85
KEEP_MAX = 64
"""Frames `FrameSampler` keeps at most (>= 2 * SHEET_FRAMES so the strip stays evenly spaced)."""


def _fit(frame: np.ndarray, max_side: int) -> np.ndarray:
    """`frame` (H, W, 3) uint8 downscaled (area filter) so its long side is at most `max_side`; never upscaled."""
    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BOX))


class FrameSampler:
    """Collects evenly spaced frames of a stream for `poster` and `contact_sheet`."""

    def __init__(self, keep_max: int = KEEP_MAX) -> None:
        if keep_max < 2:
            raise ValueError("keep_max must be >= 2")
        self.keep_max = keep_max
        self.seen = 0
        """Frames offered so far."""
        self._stride = 1
        self._kept: list[tuple[int, np.ndarray]] = []  # (frame index, frame at poster size)

    def add(self, frame: np.ndarray) -> None:
        """Offer the next frame, uint8 (H, W, 3)."""
        if self.seen % self._stride == 0:
            self._kept.append((self.seen, _fit(frame, POSTER_MAX_SIDE)))
            if len(self._kept) > self.keep_max:
                self._kept = self._kept[::2]
                self._stride *= 2
        self.seen += 1

    @property
    def kept(self) -> list[tuple[int, np.ndarray]]:
        """(frame index, frame) pairs kept, in order."""
        return list(self._kept)

    def pick(self, n: int) -> list[tuple[int, np.ndarray]]:
        """`n` kept frames (fewer if fewer were kept) spread from the first to the last, in order."""
        if not self._kept:
            return []
        if len(self._kept) <= n:
            return list(self._kept)
        idx = np.linspace(0, len(self._kept) - 1, n).round().astype(int)
        return [self._kept[i] for i in idx]

    def middle(self) -> tuple[int, np.ndarray]:
        """The kept frame nearest the middle of the video (raises ValueError when nothing was offered)."""
        if not self._kept:
            raise ValueError("no frames")
        centre = (self.seen - 1) / 2
        return min(self._kept, key=lambda kf: abs(kf[0] - centre))


def encode_image(frame: np.ndarray, fmt: str = "PNG") -> bytes:
    """`frame` (H, W, 3) uint8 as PNG or JPEG bytes."""
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(frame))
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=6)  # measured: 4x faster than optimize=True, 3.5 % larger
    else:
        img.save(buf, format="JPEG", quality=POSTER_JPEG_QUALITY)
    return buf.getvalue()


def poster(sampler: FrameSampler) -> tuple[bytes, str]:
    """The middle frame as (image bytes, MIME type): PNG up to `POSTER_PNG_MAX_SIDE`, else JPEG."""
    _, frame = sampler.middle()
    if max(frame.shape[:2]) <= POSTER_PNG_MAX_SIDE:
        return encode_image(frame, "PNG"), "image/png"
    return encode_image(frame, "JPEG"), "image/jpeg"


def contact_sheet_array(frames: list[np.ndarray], tile_height: int = SHEET_TILE_HEIGHT,
                        gap: int = SHEET_GAP) -> np.ndarray:
    """Frames side by side, each scaled to `tile_height` (or kept smaller), separated by white `gap` columns.

    Returns uint8 (h, W, 3) with h = min(tile_height, frame height); raises ValueError for no frames.
    """
    if not frames:
        raise ValueError("no frames for a contact sheet")
    h0, w0 = frames[0].shape[:2]
    h = min(tile_height, h0)
    w = max(1, round(w0 * h / h0))
    tiles = [f if f.shape[:2] == (h, w) else np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.BOX))
             for f in frames]
    sheet = np.full((h, len(tiles) * w + (len(tiles) - 1) * gap, 3), 255, dtype=np.uint8)  # (h, W, 3)
    for i, tile in enumerate(tiles):
        sheet[:, i * (w + gap): i * (w + gap) + w] = tile
    return sheet


def contact_sheet(sampler: FrameSampler, n: int = SHEET_FRAMES) -> tuple[bytes, list[int]]:
    """PNG bytes of `n` evenly spaced frames in a strip, and the indices of the frames shown."""
    picked = sampler.pick(n)
    return encode_image(contact_sheet_array([f for _, f in picked])), [i for i, _ in picked]
