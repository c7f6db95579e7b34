"""Videos a web browser can play: which files already are, and an encoder for those that are not.

What the harness writes is not always playable in a page: local backends write lossless H.264 in 4:4:4 (High 4:4:4
Predictive profile), which Chromium decodes in software but which platform decoders that other browsers use need not
support, and MPEG-4 Part 2, GIF or .npy files do not play in a `<video>` at all (measured in Chromium 156: MPEG-4
Part 2 in MP4 fails with DEMUXER_ERROR_NO_SUPPORTED_STREAMS). The safe subset (`is_web_playable`) is 8-bit 4:2:0
H.264 in its Baseline/Main/High profiles in MP4, or VP8/VP9 4:2:0 in WebM; anything else is re-encoded by
`WebVideoWriter` to H.264 High, 4:2:0, CRF `WEB_CRF`, with the index at the front of the file (`+faststart`), for
viewing only: metrics always read the original.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.errors import VideoError
from vbench_suite.tempfiles import make_temp

WEB_CRF = 18
"""x264 constant rate factor of re-encoded copies: visually close to the source at small sizes (lower is larger)."""
WEB_PROFILE = f"h264-yuv420p-crf{WEB_CRF}-faststart-1"
"""Identity of the re-encoding recipe: part of the names of re-encoded files, so a new recipe never reuses old ones."""
H264_WEB_PROFILES = frozenset({"Baseline", "Constrained Baseline", "Main", "High"})
"""H.264 profiles every browser's decoder handles (8-bit 4:2:0)."""
WEB_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
MP4_FORMATS = frozenset({"mov", "mp4"})
"""FFmpeg demuxer names of MP4/QuickTime files (PyAV reports 'mov,mp4,m4a,3gp,3g2,mj2')."""
MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/mp4", ".webm": "video/webm"}
FALLBACK_FPS = 8.0
"""Frame rate given to sources that declare none (.npy arrays, still images) when re-encoded."""


@dataclass(frozen=True)
class StreamInfo:
    """What the container says about a file's first video stream (nothing is decoded)."""

    container: str
    """FFmpeg demuxer name, e.g. 'mov,mp4,m4a,3gp,3g2,mj2' or 'matroska,webm'."""
    codec: str
    """Decoder name, e.g. 'h264', 'vp9', 'mpeg4'."""
    profile: str
    """Codec profile as FFmpeg names it ('High', 'High 4:4:4 Predictive'), '' when none."""
    pix_fmt: str
    width: int
    height: int
    fps: float
    """Average frame rate (0.0 when the stream declares none)."""


def probe(path: str | Path) -> StreamInfo:
    """Read the container header of `path`. Raises `VideoError` for a file PyAV cannot open or without video."""
    import av  # deferred: importing the package must stay light

    p = Path(path)
    try:
        with av.open(str(p), mode="r") as container:
            if not container.streams.video:
                raise VideoError(f"{p}: no video stream in the file")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate
            return StreamInfo(container=str(container.format.name), codec=str(ctx.name), profile=str(ctx.profile or ""),
                              pix_fmt=str(ctx.pix_fmt or ""), width=int(ctx.width), height=int(ctx.height),
                              fps=float(rate) if rate else 0.0)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{p}: cannot open as a video ({str(exc).strip()[:300]})") from exc


def is_web_playable(path: str | Path, info: StreamInfo | None) -> tuple[bool, str]:
    """(True, '') when `path` plays in every current browser as it is, else (False, why not). `info` is `probe(path)`
    for container files, None for files PyAV does not read (.npy, images)."""
    suffix = Path(path).suffix.lower()
    if info is None or suffix not in MIME_TYPES:
        return False, f"'{suffix}' files do not play in a <video> element"
    formats = set(info.container.split(","))
    if info.pix_fmt not in WEB_PIX_FMTS:
        return False, f"{info.codec} in {info.pix_fmt or 'an unknown pixel format'} (browsers need 8-bit 4:2:0)"
    if info.codec == "h264" and formats & MP4_FORMATS and suffix != ".webm":
        if info.profile in H264_WEB_PROFILES:
            return True, ""
        return False, f"H.264 profile '{info.profile}' (browsers need Baseline, Main or High)"
    if info.codec in ("vp8", "vp9") and "webm" in formats and suffix == ".webm":
        return True, ""
    return False, f"codec {info.codec} in {info.container} (browsers need H.264 in MP4 or VP8/VP9 in WebM)"


def mime_type(path: str | Path) -> str:
    """MIME type of a web-playable file, by suffix."""
    return MIME_TYPES.get(Path(path).suffix.lower(), "video/mp4")


class WebVideoWriter:
    """Encode RGB frames one at a time to a browser-playable MP4 (H.264 High, 4:2:0, `WEB_CRF`, +faststart).

    The file appears atomically at `path` on `close()` (written beside it under a temporary name). Frames are uint8
    (H, W, 3), all the same size; odd widths or heights are padded by repeating the last column/row, since 4:2:0
    needs even sizes. `frames_written` counts the frames encoded. Use as a context manager: leaving it with an
    exception removes the temporary file and writes nothing.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if fps > 0 else FALLBACK_FPS
        self.frames_written = 0
        self.size: tuple[int, int] | None = None
        """(width, height) of the encoded frames after padding, known after the first frame."""
        self._container: Any = None
        self._stream: Any = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = make_temp(self.path.parent, self.path.stem, ".mp4")
        os.close(fd)

    def __enter__(self) -> WebVideoWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, width: int, height: int) -> None:
        import av

        self._container = av.open(str(self._tmp), mode="w", format="mp4",
                                  options={"movflags": "+faststart"})
        stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(WEB_CRF), "preset": "medium", "profile": "high"}
        self._stream = stream
        self.size = (width, height)

    def add(self, frame: np.ndarray) -> None:
        """Encode one uint8 RGB frame (H, W, 3)."""
        import av

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        pad = ((0, h % 2), (0, w % 2), (0, 0))
        if h % 2 or w % 2:
            frame = np.pad(frame, pad, mode="edge")
        if self._container is None:
            self._open(frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame size changed from {self.size} to {(frame.shape[1], frame.shape[0])}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path:
        """Flush the encoder and move the file into place; returns its path. Raises ValueError with no frames."""
        try:
            if self._container is None:
                raise ValueError(f"{self.path}: no frames to write")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop the temporary file (idempotent)."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
            self._container = None
        self._tmp.unlink(missing_ok=True)
