"""Decoding videos into RGB uint8 arrays: one function, one convention, for every metric.

Convention (part of every metric profile that reads pixels):
- PyAV (FFmpeg) decodes; frames are converted to RGB24 with swscale, **full range** (0..255), using the matrix the
  stream declares (BT.601 when it declares none, which is FFmpeg's own default).
- Every decoded frame is kept, in presentation order; nothing is resampled in time. `fps` records the stream's
  average frame rate so a metric can state (or enforce) the temporal sampling it assumes.
- `.npy` files hold the frames themselves, uint8 (T, H, W, 3); they carry no frame rate (`fps` is 0.0).
- Still images (.png/.jpg/.jpeg/.bmp/.webp) read as one-frame videos with `fps` 0.0 (reference frames for LPIPS).
- Frames over `MAX_FRAME_PIXELS` are refused from the header, before decoding (decompression bombs).
- `open_video` streams frames in chunks (memory: one chunk); `read_video` is that stream read whole.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from vbench_suite.errors import VideoError

VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".webm", ".mov", ".gif", ".mkv", ".avi", ".m4v")
"""Container suffixes decoded with PyAV."""
ARRAY_SUFFIXES: tuple[str, ...] = (".npy",)
"""Raw frame arrays, uint8 (T, H, W, 3)."""
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""Still images, read as one-frame videos."""
READABLE_SUFFIXES: tuple[str, ...] = VIDEO_SUFFIXES + ARRAY_SUFFIXES + IMAGE_SUFFIXES
TRUNCATION_SLACK_FRAMES = 2
"""Frames a container may declare beyond what decodes before the file counts as truncated."""


@dataclass(frozen=True)
class DecodedVideo:
    """A decoded video. `frames` is uint8 RGB (T, H, W, 3), full range, C-contiguous."""

    frames: np.ndarray
    """uint8 array (T, H, W, 3), RGB, 0..255."""
    fps: float
    """Average frame rate in frames per second as declared by the stream; 0.0 when unknown (.npy, images)."""
    num_frames: int
    """T, the number of frames returned (after `max_frames`)."""
    width: int
    """W in pixels."""
    height: int
    """H in pixels."""
    path: str
    """The file that was read."""

    @property
    def duration_s(self) -> float:
        """num_frames / fps in seconds (0.0 when fps is unknown)."""
        return self.num_frames / self.fps if self.fps > 0 else 0.0

    def describe(self) -> dict[str, float | int]:
        """fps, frame count and resolution as plain values, for score records."""
        return {"fps": round(self.fps, 6), "num_frames": self.num_frames, "width": self.width, "height": self.height}


MAX_FRAME_PIXELS = 1 << 26
"""Largest frame accepted (67 megapixels, twice 8K UHD): a header claiming more is a decompression bomb or a
mislabelled file, and is refused before any pixel is decoded."""


@dataclass(frozen=True)
class _Source:
    """What opening a file learned before its frames are decoded."""

    frames: Iterator[np.ndarray]
    """Yields uint8 (H, W, 3) frames in order, raising `VideoError` for a corrupt or truncated file."""
    fps: float
    close: Callable[[], None]
    length: int | None = None
    """The frame count when known without decoding (.npy, images), else None."""


class VideoStream:
    """One video's frames, decoded on demand: `chunks(n)` yields uint8 (<= n, H, W, 3) arrays in order.

    Memory holds one chunk (plus the decoder's own buffers), whatever the video's length. Opening decodes the first
    frame, so `width`/`height` are the decoded frame size and a file without a decodable frame fails at open. After
    the chunks are exhausted, `num_frames` is the count decoded and any truncation has been raised as `VideoError`.
    Use as a context manager (or call `close`).
    """

    def __init__(self, path: Path, source: _Source) -> None:
        self.path, self.fps, self.length = str(path), float(source.fps), source.length
        self._source, self._frames = source, source.frames
        self._first: np.ndarray | None = None
        self.num_frames = 0
        """Frames handed out so far (the total once `chunks` is exhausted)."""
        try:
            self._first = next(self._frames, None)
        except BaseException:
            self.close()
            raise
        if self._first is None:
            self.close()
            raise VideoError(f"{path}: no decodable frames (empty or corrupt video stream)")
        self.height, self.width = int(self._first.shape[0]), int(self._first.shape[1])

    def __enter__(self) -> VideoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop decoding and release the file (idempotent)."""
        close_frames = getattr(self._frames, "close", None)
        if close_frames is not None:
            close_frames()   # finish the decoding generator before its container goes
        self._source.close()

    def describe(self) -> dict[str, float | int]:
        """fps, frames decoded so far and resolution, as `DecodedVideo.describe` gives them."""
        return {"fps": round(self.fps, 6), "num_frames": self.num_frames, "width": self.width, "height": self.height}

    def frames(self) -> Iterator[np.ndarray]:
        """Each remaining frame, uint8 (H, W, 3); raises `VideoError` when the size changes within the video."""
        while True:
            if self._first is not None:
                frame, self._first = self._first, None
            else:
                frame = next(self._frames, None)
                if frame is None:
                    return
            if frame.shape != (self.height, self.width, 3):
                raise VideoError(f"{self.path}: frame size changes within the video "
                                 f"({self.width}x{self.height} then {frame.shape[1]}x{frame.shape[0]}); not supported")
            self.num_frames += 1
            yield frame

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The remaining frames as uint8 (n, H, W, 3) arrays of `size` frames (the last one may be shorter)."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        batch: list[np.ndarray] = []
        for frame in self.frames():
            batch.append(frame)
            if len(batch) == size:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    def count_remaining(self) -> int:
        """Decode the rest without keeping it (checks for truncation); returns the total frame count."""
        for _ in self.frames():
            pass
        return self.num_frames


def open_video(path: str | Path, *, max_frames: int | None = None) -> VideoStream:
    """Open `path` for streaming (see `VideoStream`); `max_frames` stops decoding after that many frames.

    Raises `VideoError` with the reason for a missing, empty, corrupt, truncated, oversized or unsupported file, or
    one with no frames. The same checks as `read_video`, which is this stream read whole.
    """
    p = Path(path)
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if not p.is_file():
        raise VideoError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes)")
    suffix = p.suffix.lower()
    if suffix in ARRAY_SUFFIXES:
        return VideoStream(p, _open_npy(p, max_frames))
    if suffix in IMAGE_SUFFIXES:
        return VideoStream(p, _open_image(p))
    if suffix in VIDEO_SUFFIXES:
        return VideoStream(p, _open_av(p, max_frames))
    raise VideoError(f"{p}: unsupported file type '{suffix}' (supported: {', '.join(READABLE_SUFFIXES)})")


def read_video(path: str | Path, *, max_frames: int | None = None) -> DecodedVideo:
    """Decode `path` to RGB uint8 frames (T, H, W, 3): the whole of `open_video(path, max_frames=...)`.

    `max_frames` keeps only the first `max_frames` frames (and stops decoding there). Raises `VideoError` with the
    reason for a missing, empty, corrupt, truncated, oversized or unsupported file, or one with no frames.
    """
    with open_video(path, max_frames=max_frames) as stream:
        frames = list(stream.frames())
        return DecodedVideo(frames=np.ascontiguousarray(np.stack(frames)), fps=stream.fps,
                            num_frames=len(frames), width=stream.width, height=stream.height, path=stream.path)


def check_frame_size(p: Path, width: int, height: int) -> None:
    """Refuse a frame size over `MAX_FRAME_PIXELS` (or a non-positive one) before decoding anything."""
    if width <= 0 or height <= 0:
        raise VideoError(f"{p}: frames have no pixels ({width}x{height})")
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(f"{p}: frame size {width}x{height} ({width * height / 1e6:.0f} megapixels) is over the limit "
                         f"of {MAX_FRAME_PIXELS / 1e6:.0f} megapixels: a decompression bomb or a damaged header; "
                         f"re-encode the file at a normal size")


def _nothing() -> None:
    return None


def _open_npy(p: Path, max_frames: int | None) -> _Source:
    # The header is read and checked first (dtype, shape, and that the file holds the data it claims), so a damaged
    # or hostile header is a VideoError, never an exception from deep inside NumPy (tokenizer errors, overflowing
    # mmap lengths were found by tests/test_fuzz_videos.py).
    dtype, shape = _npy_header(p)
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
        raise VideoError(f"{p}: .npy video must be uint8 (T, H, W, 3), got {dtype} {_short(shape)}")
    if 0 in shape:
        raise VideoError(f"{p}: .npy video has no frames or no pixels, shape {shape}")
    check_frame_size(p, int(shape[2]), int(shape[1]))
    try:
        # mmap: frames are read one at a time, never the whole array.
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except _NPY_ERRORS as exc:
        raise VideoError(f"{p}: not a readable .npy array ({_av_reason(exc)})") from exc
    if max_frames is not None:
        arr = arr[:max_frames]
    return _Source(frames=(np.array(f) for f in arr), fps=0.0, close=_nothing, length=int(arr.shape[0]))


def _npy_header(p: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) from an .npy header, after checking that the file holds as many data bytes as they need."""
    import tokenize

    from numpy.lib import format as npy_format

    try:
        with open(p, "rb") as f:
            version = npy_format.read_magic(f)
            read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
    except (*_NPY_ERRORS, tokenize.TokenError) as exc:
        raise VideoError(f"{p}: not a readable .npy array ({_av_reason(exc)})") from exc
    shape = tuple(int(n) for n in shape)
    need = math.prod(shape) * dtype.itemsize  # Python integers: a hostile shape cannot overflow here
    have = p.stat().st_size - offset
    if dtype == np.uint8 and len(shape) == 4 and need > have:
        raise VideoError(f"{p}: truncated .npy video: its header claims shape {_short(shape)} ({need:,} bytes) but "
                         f"the file holds {have:,} bytes of data")
    return dtype, shape


_NPY_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, EOFError, SyntaxError, OverflowError,
                                                MemoryError, TypeError)
"""What NumPy raises for a damaged .npy file (bad magic, header, dtype or length)."""


def _short(shape: tuple[int, ...]) -> str:
    text = str(tuple(shape))
    return text if len(text) <= 80 else text[:80] + "…"


def _open_image(p: Path) -> _Source:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below Pillow's) decides; Pillow's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                check_frame_size(p, *im.size)
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise VideoError(f"{p}: image header claims an implausible size, refused as a decompression bomb "
                         f"({exc}); re-encode the image at a normal size") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise VideoError(f"{p}: not a readable image ({exc})") from exc
    return _Source(frames=iter([rgb]), fps=0.0, close=_nothing, length=1)


def _open_av(p: Path, max_frames: int | None) -> _Source:
    import av  # deferred: importing the package must stay light

    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{p}: cannot open as a video ({_av_reason(exc)})") from exc
    try:
        if not container.streams.video:
            raise VideoError(f"{p}: no video stream in the file")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # a stream whose codec FFmpeg cannot identify (found by tests/test_fuzz_videos.py)
            raise VideoError(f"{p}: the video stream's codec is unknown or damaged; no frame can be decoded")
        if ctx.width and ctx.height:
            check_frame_size(p, int(ctx.width), int(ctx.height))
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
    except BaseException:
        container.close()
        raise
    return _Source(frames=_av_frames(p, container, stream, max_frames), fps=fps, close=container.close)


def _av_frames(p: Path, container: Any, stream: Any, max_frames: int | None) -> Iterator[np.ndarray]:
    import av

    declared = int(stream.frames or 0)
    # One reformatter per video keeps swscale's context (and its tables) across frames.
    reformatter = av.video.reformatter.VideoReformatter()
    count = 0
    try:
        # A loop per decoded frame is the decoder's API; each step is one C call returning a whole frame.
        for frame in container.decode(stream):
            if count == 0 and frame.width * frame.height > MAX_FRAME_PIXELS:
                check_frame_size(p, frame.width, frame.height)
            count += 1
            yield _to_rgb(frame, reformatter)
            if max_frames is not None and count >= max_frames:
                break
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoError(f"{p}: corrupt or truncated video: decoding failed after {count} frame(s) "
                         f"({_av_reason(exc)})") from exc
    wanted = declared if max_frames is None else min(declared, max_frames)
    # Containers with a sample table (mp4/mov) declare their frame count; decoding clearly fewer means the data was
    # cut off. The slack tolerates edit lists that legitimately hide a frame or two. Streams that declare nothing
    # (webm, some gif) cannot be checked this way.
    if count and declared > 0 and count < wanted - TRUNCATION_SLACK_FRAMES:
        raise VideoError(f"{p}: truncated video: decoded {count} of {declared} frames the container declares")


def _to_rgb(frame: Any, reformatter: Any) -> np.ndarray:
    """One decoded frame -> uint8 (H, W, 3), RGB, full range."""
    fmt = frame.format.name
    if fmt == "rgb24":
        return frame.to_ndarray()
    if fmt.startswith(("yuv", "nv")):
        # Tell swscale which range and matrix the source uses, and ask for full-range RGB: otherwise a stream
        # flagged full-range (yuvj*, colour_range=JPEG) or BT.709 would be converted with the wrong constants.
        src_range = "JPEG" if (fmt.startswith("yuvj") or int(frame.color_range) == 2) else "MPEG"
        src_space = _COLORSPACES.get(int(frame.colorspace), "ITU601")
        rgb = reformatter.reformat(frame, format="rgb24", src_colorspace=src_space, dst_colorspace=src_space,
                                   src_color_range=src_range, dst_color_range="JPEG")
        return rgb.to_ndarray()
    # Palette (gif), bgra, gray and other RGB-like formats: a plain conversion is exact.
    return reformatter.reformat(frame, format="rgb24").to_ndarray()


# AVColorSpace codes (libavutil/pixfmt.h) -> swscale matrices PyAV names. Unspecified (2) falls back to BT.601.
_COLORSPACES: dict[int, str] = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "SMPTE170M", 7: "SMPTE240M", 9: "BT2020",
                                10: "BT2020"}


def _av_reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
