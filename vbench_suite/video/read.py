"""Decoding videos into RGB uint8 arrays: one function, one convention, for every metric.

Convention (part of every metric profile that reads pixels):
- PyAV (FFmpeg) decodes; frames are converted to RGB24 with swscale, **full range** (0..255), using the matrix the
  stream declares (BT.601 when it declares none, which is FFmpeg's own default).
- Every decoded frame is kept, in presentation order; nothing is resampled in time. `fps` records the stream's
  average frame rate so a metric can state (or enforce) the temporal sampling it assumes.
- `.npy` files hold the frames themselves, uint8 (T, H, W, 3); they carry no frame rate (`fps` is 0.0).
- Still images (.png/.jpg/.jpeg/.bmp/.webp) read as one-frame videos with `fps` 0.0 (reference frames for LPIPS).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
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


def read_video(path: str | Path, *, max_frames: int | None = None) -> DecodedVideo:
    """Decode `path` to RGB uint8 frames (T, H, W, 3).

    `max_frames` keeps only the first `max_frames` frames (and stops decoding there). Raises `VideoError` with the
    reason for a missing, empty, corrupt, truncated or unsupported file, or one with no frames.
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
        return _read_npy(p, max_frames)
    if suffix in IMAGE_SUFFIXES:
        return _read_image(p)
    if suffix in VIDEO_SUFFIXES:
        return _read_av(p, max_frames)
    raise VideoError(f"{p}: unsupported file type '{suffix}' (supported: {', '.join(READABLE_SUFFIXES)})")


def _finish(frames: np.ndarray, fps: float, p: Path) -> DecodedVideo:
    frames = np.ascontiguousarray(frames)
    t, h, w, _ = frames.shape
    return DecodedVideo(frames=frames, fps=float(fps), num_frames=int(t), width=int(w), height=int(h), path=str(p))


def _read_npy(p: Path, max_frames: int | None) -> DecodedVideo:
    try:
        # mmap: a slice of a long array is read without loading the rest.
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise VideoError(f"{p}: not a readable .npy array ({exc})") from exc
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise VideoError(f"{p}: .npy video must be uint8 (T, H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise VideoError(f"{p}: .npy video has no frames or no pixels, shape {tuple(arr.shape)}")
    if max_frames is not None:
        arr = arr[:max_frames]
    return _finish(np.array(arr), 0.0, p)


def _read_image(p: Path) -> DecodedVideo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise VideoError(f"{p}: not a readable image ({exc})") from exc
    return _finish(rgb[None], 0.0, p)


def _read_av(p: Path, max_frames: int | None) -> DecodedVideo:
    import av  # deferred: importing the package must stay light

    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{p}: cannot open as a video ({_av_reason(exc)})") from exc
    with container:
        if not container.streams.video:
            raise VideoError(f"{p}: no video stream in the file")
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frames: list[np.ndarray] = []
        # One reformatter per video keeps swscale's context (and its tables) across frames.
        reformatter = av.video.reformatter.VideoReformatter()
        try:
            # A loop per decoded frame is the decoder's API; each step is one C call returning a whole frame.
            for frame in container.decode(stream):
                frames.append(_to_rgb(frame, reformatter))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except (av.error.FFmpegError, ValueError) as exc:
            raise VideoError(f"{p}: corrupt or truncated video: decoding failed after {len(frames)} frame(s) "
                             f"({_av_reason(exc)})") from exc
    if not frames:
        raise VideoError(f"{p}: no decodable frames (empty or corrupt video stream)")
    wanted = declared if max_frames is None else min(declared, max_frames)
    # Containers with a sample table (mp4/mov) declare their frame count; decoding clearly fewer means the data was
    # cut off. The slack tolerates edit lists that legitimately hide a frame or two. Streams that declare nothing
    # (webm, some gif) cannot be checked this way.
    if declared > 0 and len(frames) < wanted - TRUNCATION_SLACK_FRAMES:
        raise VideoError(f"{p}: truncated video: decoded {len(frames)} of {declared} frames the container declares")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoError(f"{p}: frame size changes within the video ({sorted(shapes)}); not supported")
    return _finish(np.stack(frames), fps, p)


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
