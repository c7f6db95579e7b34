"""A side-by-side video of several videos of the same prompt, each in a labelled tile, for sharing.

Normalisation (every choice is reported in `SideBySide.notes`):
- size: every tile has the same box; its height is the tallest source's height, raised to an integer multiple of
  itself when below `MIN_TILE_HEIGHT` (so small videos are scaled up by whole factors, nearest neighbour, pixels stay
  crisp) and capped at `MAX_TILE_HEIGHT`; each source is scaled to that height keeping its aspect ratio (nearest
  neighbour for whole factors, Lanczos otherwise) and centred, the box as wide as the widest scaled source;
- frame rate: the highest source frame rate; a slower source shows, at each output time, its latest frame;
- duration: the longest source; shorter ones hold their last frame to the end;
- tiles without a video (failed, refused, not configured, ...) are grey placeholders that say why.
Tiles run left to right, `MAX_COLUMNS` per row, each under a label bar. Written with `video.web.WebVideoWriter`
(H.264 4:2:0, plays in browsers). Sources are streamed: memory holds one frame per source.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vbench_suite.errors import VideoError
from vbench_suite.video.read import VideoStream, open_video
from vbench_suite.video.web import FALLBACK_FPS, WebVideoWriter

MIN_TILE_HEIGHT = 128
MAX_TILE_HEIGHT = 480
MIN_TILE_WIDTH = 128
"""Narrower boxes would cut most labels short."""
LABEL_HEIGHT = 18
FONT_SIZE = 12
GAP = 4
MAX_COLUMNS = 4
BACKGROUND = (24, 24, 24)
LABEL_BAR = (0, 0, 0)
LABEL_TEXT = (255, 255, 255)
PLACEHOLDER = (72, 72, 72)
PLACEHOLDER_TEXT = (230, 230, 230)


@dataclass(frozen=True)
class Tile:
    """One tile: a label and either a video or the reason there is none."""

    label: str
    video: Path | None = None
    note: str = ""
    """Shown inside a placeholder tile (why there is no video)."""


@dataclass(frozen=True)
class Source:
    """What was measured of one tile's video (a first decoding pass counts its frames)."""

    label: str
    width: int
    height: int
    fps: float
    num_frames: int
    scaled: tuple[int, int]
    """(width, height) of the video inside its tile."""
    filter: str
    """'nearest' (whole-number scale, or none) or 'lanczos'."""

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True)
class SideBySide:
    """The written file and how it was made."""

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    tile_size: tuple[int, int]
    """(width, height) of each tile's video box (the label bar is above it)."""
    boxes: tuple[tuple[int, int, int, int], ...]
    """Per tile, in input order: (x, y, width, height) of its video box in the output frame."""
    sources: dict[int, Source] = field(default_factory=dict)
    """Tile index -> measured source (tiles with a readable video only)."""
    notes: tuple[str, ...] = ()
    """Each normalisation applied, and each tile shown as a placeholder, in words."""


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    """`text` cut (with '…') to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int, max_lines: int) -> list[str]:
    """`text` broken into at most `max_lines` lines of at most `width` pixels (the last one cut with '…')."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not current:
            current = trial
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1] + " …"
    return [_fit_text(draw, line, font, width) for line in lines]


def _measure(tile: Tile) -> tuple[int, int, float, int]:
    """(width, height, fps, frames) of a tile's video, decoding it once. Raises VideoError."""
    assert tile.video is not None
    with open_video(tile.video) as stream:
        return stream.width, stream.height, stream.fps, stream.count_remaining()


def _scaler(w: int, h: int, box_h: int) -> tuple[tuple[int, int], str]:
    factor = box_h / h
    scaled = (max(1, round(w * factor)), box_h)
    if factor >= 1 and float(factor).is_integer():
        return scaled, "nearest"
    return scaled, "lanczos"


def _scale(frame: np.ndarray, size: tuple[int, int], how: str) -> np.ndarray:
    w, h = size
    if (frame.shape[1], frame.shape[0]) == (w, h):
        return frame
    if how == "nearest":
        k = h // frame.shape[0]
        return np.repeat(np.repeat(frame, k, axis=0), k, axis=1)  # (h*k, w*k, 3)
    return np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.LANCZOS))


class _Cursor:
    """A source read forward: `at(i)` is frame i (its last frame past the end)."""

    def __init__(self, stream: VideoStream) -> None:
        self._frames: Iterator[np.ndarray] = stream.frames()
        self.index = -1
        self.frame: np.ndarray | None = None

    def at(self, i: int) -> np.ndarray:
        while self.index < i:
            nxt = next(self._frames, None)
            if nxt is None:
                break
            self.frame, self.index = nxt, self.index + 1
        if self.frame is None:
            raise VideoError("no frames")
        return self.frame


def compose_side_by_side(tiles: list[Tile], out_path: str | Path) -> SideBySide:
    """Write the tiles' videos side by side to `out_path` (.mp4), normalised as the module docstring says.

    A tile whose video cannot be read becomes a placeholder saying so. Raises ValueError for no tiles.
    """
    if not tiles:
        raise ValueError("no tiles to compose")
    measured: dict[int, tuple[int, int, float, int]] = {}
    notes: list[str] = []
    placeholders: dict[int, str] = {}
    for i, t in enumerate(tiles):
        if t.video is None:
            placeholders[i] = t.note or "no video"
            continue
        try:
            measured[i] = _measure(t)
        except VideoError as exc:
            placeholders[i] = f"video unreadable: {exc}"
    rates = [m[2] for m in measured.values() if m[2] > 0]
    fps = max(rates) if rates else FALLBACK_FPS
    src_fps = {i: (m[2] if m[2] > 0 else fps) for i, m in measured.items()}
    duration = max((m[3] / src_fps[i] for i, m in measured.items()), default=1.0)
    num_frames = max(1, round(duration * fps))
    tallest = max((m[1] for m in measured.values()), default=MIN_TILE_HEIGHT)
    box_h = tallest * math.ceil(MIN_TILE_HEIGHT / tallest) if tallest < MIN_TILE_HEIGHT else tallest
    box_h = min(box_h, MAX_TILE_HEIGHT)
    sources: dict[int, Source] = {}
    for i, (w, h, f, n) in measured.items():
        scaled, how = _scaler(w, h, box_h)
        sources[i] = Source(tiles[i].label, w, h, src_fps[i], n, scaled, how)
    box_w = max([MIN_TILE_WIDTH] + [s.scaled[0] for s in sources.values()])
    cols = min(len(tiles), MAX_COLUMNS)
    rows = math.ceil(len(tiles) / cols)
    width = cols * box_w + (cols + 1) * GAP
    height = rows * (LABEL_HEIGHT + box_h) + (rows + 1) * GAP
    width, height = width + width % 2, height + height % 2  # 4:2:0 needs even sizes
    boxes = []
    for i in range(len(tiles)):
        r, c = divmod(i, cols)
        boxes.append((GAP + c * (box_w + GAP), GAP + r * (LABEL_HEIGHT + box_h + GAP) + LABEL_HEIGHT, box_w, box_h))

    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for i, t in enumerate(tiles):
        x, y, bw, bh = boxes[i]
        draw.rectangle((x, y - LABEL_HEIGHT, x + bw - 1, y - 1), fill=LABEL_BAR)
        draw.text((x + 3, y - LABEL_HEIGHT + 2), _fit_text(draw, t.label, font, bw - 6), fill=LABEL_TEXT, font=font)
        if i in placeholders:
            draw.rectangle((x, y, x + bw - 1, y + bh - 1), fill=PLACEHOLDER)
            lines = _wrap(draw, placeholders[i], font, bw - 8, max(1, (bh - 8) // (FONT_SIZE + 3)))
            for k, line in enumerate(lines):
                draw.text((x + 4, y + 4 + k * (FONT_SIZE + 3)), line, fill=PLACEHOLDER_TEXT, font=font)
    base = np.asarray(canvas).copy()  # (H, W, 3)

    notes += _notes(sources, fps, num_frames, (box_w, box_h))
    notes += [f"{tiles[i].label}: placeholder ({why})" for i, why in sorted(placeholders.items())]
    streams = {i: open_video(tiles[i].video) for i in sources}  # type: ignore[arg-type]
    try:
        cursors = {i: _Cursor(s) for i, s in streams.items()}
        with WebVideoWriter(out_path, fps) as writer:
            for j in range(num_frames):
                frame = base.copy()
                t = j / fps
                for i, src in sources.items():
                    k = min(int(math.floor(t * src.fps + 1e-6)), src.num_frames - 1)
                    img = _scale(cursors[i].at(k), src.scaled, src.filter)
                    x, y, bw, bh = boxes[i]
                    dx = x + (bw - img.shape[1]) // 2
                    frame[y:y + bh, dx:dx + img.shape[1]] = img
                writer.add(frame)
    finally:
        for s in streams.values():
            s.close()
    return SideBySide(Path(out_path), width, height, fps, num_frames, (box_w, box_h), tuple(boxes), sources,
                      tuple(notes))


def _notes(sources: dict[int, Source], fps: float, num_frames: int, box: tuple[int, int]) -> list[str]:
    """The normalisations applied, in words."""
    if not sources:
        return ["no tile has a readable video: every tile is a placeholder"]
    out = []
    slower = [s for s in sources.values() if s.fps < fps]
    out.append(f"frame rate {fps:g} fps" + ("" if not slower else " (the highest; slower sources show their latest "
                                            "frame at each output time: " + ", ".join(f"{s.label} {s.fps:g} fps"
                                                                                     for s in slower) + ")"))
    duration = num_frames / fps
    shorter = [s for s in sources.values() if s.duration_s < duration - 0.5 / fps]
    out.append(f"duration {duration:.3g} s, {num_frames} frames" + ("" if not shorter else " (the longest; shorter "
               "sources hold their last frame: " + ", ".join(f"{s.label} {s.duration_s:.3g} s" for s in shorter)
               + ")"))
    sizes = []
    for s in sources.values():
        if (s.width, s.height) == s.scaled:
            sizes.append(f"{s.label} {s.width}x{s.height} as is")
        else:
            sizes.append(f"{s.label} {s.width}x{s.height} scaled to {s.scaled[0]}x{s.scaled[1]} ({s.filter})")
    out.append(f"tiles {box[0]}x{box[1]}: " + "; ".join(sizes))
    return out
