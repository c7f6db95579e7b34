"""Writing generated videos to disk, atomically."""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from vbench_suite.tempfiles import make_temp

# H.264 in 4:4:4 at CRF 0 is lossless in YUV space: local backends' videos are scored as generated, not as
# re-compressed (only RGB<->YUV rounding remains, at most 1-2 levels per channel).
DEFAULT_CODEC = "libx264"
DEFAULT_PIX_FMT = "yuv444p"
DEFAULT_CRF = 0


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, codec: str = DEFAULT_CODEC,
                pix_fmt: str = DEFAULT_PIX_FMT, crf: int = DEFAULT_CRF) -> Path:
    """Encode uint8 RGB frames (T, H, W, 3) to `path` (.mp4 via PyAV, or .npy as the raw array).

    The file appears atomically: it is written beside the target under a temporary name, then renamed, so a
    killed process never leaves a truncated video under the final name. Returns the final path.
    """
    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, path.stem, path.suffix or ".mp4")
    os.close(fd)
    try:
        if path.suffix == ".npy":
            np.save(tmp, frames)
        else:
            _encode(tmp, frames, fps, codec=codec, pix_fmt=pix_fmt, crf=crf)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _encode(path: Path, frames: np.ndarray, fps: float, *, codec: str, pix_fmt: str, crf: int) -> None:
    import av  # deferred: keeps `vbench-suite --help` light

    t, h, w, _ = frames.shape
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise ValueError(f"yuv420p needs even width and height, got {w}x{h}")
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            # Single-threaded, no B-frame lookahead randomness: identical frames give identical bytes.
            stream.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        for frame_array in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_array), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
