"""Where one pipeline call's time goes: text encoding, conditioning, denoising (step by step) and decoding.

The pipeline runs as diffusers wrote it (its own VAE decoding included: each family denormalises, unpacks or adds
decode noise to its latents differently, so decoding them here would copy that code). Marks are taken from inside
the call instead, and the stages are the intervals between consecutive marks, so they add up to the call exactly:

    start ─ text_encoding ─ last text-encoder forward ends ─ conditioning ─ first denoiser forward starts ─
    denoising (per-step: `callback_on_step_end`) ─ last step ends ─ decoding ─ the call returns

`conditioning` covers everything between the prompt and the first denoising step (encoding conditioning images with
the VAE or an image encoder, scheduler set-up, initial noise); `decoding` covers the VAE decode and the conversion
to frames. On CUDA every mark synchronises the device first, so a mark is when the work ended, not when it was
queued (one synchronisation per step and per text-encoder call).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")
DENOISERS = ("transformer", "transformer_2", "unet")
STAGES = ("text_encoding", "conditioning", "denoising", "decoding")


class StageClock:
    """Marks for one pipeline call. Use: `with clock.attached(pipe): clock.start(); pipe(..., callback_on_step_end=
    clock.on_step_end); clock.stop()`, then `stages()` and `step_s()` (seconds)."""

    def __init__(self, sync: Callable[[], None] = lambda: None) -> None:
        self.sync = sync
        self.t0 = self.t_end = 0.0
        self.text_ends: list[float] = []
        self.denoise_start: float | None = None
        self.denoise_last_end: float | None = None
        self.step_ends: list[float] = []

    def _now(self) -> float:
        self.sync()
        return time.perf_counter()

    @contextmanager
    def attached(self, pipe: Any, per_forward_sync: bool = False) -> Iterator[None]:
        """Hooks on the pipeline's text encoders and denoisers for the duration of the block. `per_forward_sync`:
        also mark the end of every denoiser forward (for pipelines without `callback_on_step_end`)."""
        handles = []
        for name in TEXT_ENCODERS:
            module = getattr(pipe, name, None)
            if module is not None and hasattr(module, "register_forward_hook"):
                handles.append(module.register_forward_hook(lambda *_: self.text_ends.append(self._now())))
        for name in DENOISERS:
            module = getattr(pipe, name, None)
            if module is not None and hasattr(module, "register_forward_pre_hook"):
                handles.append(module.register_forward_pre_hook(self._denoiser_starts))
                if per_forward_sync:
                    handles.append(module.register_forward_hook(self._denoiser_ends))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _denoiser_starts(self, *_: Any) -> None:
        if self.denoise_start is None:
            self.denoise_start = self._now()

    def _denoiser_ends(self, *_: Any) -> None:
        self.denoise_last_end = self._now()

    def start(self) -> None:
        self.t0 = self._now()

    def stop(self) -> None:
        self.t_end = self._now()

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        """diffusers' `callback_on_step_end`: marks the end of a denoising step and changes nothing."""
        self.step_ends.append(self._now())
        return {}

    def stages(self) -> dict[str, float]:
        """Seconds per stage (`STAGES`), contiguous: they sum to the call's wall time."""
        first = self.denoise_start if self.denoise_start is not None else self.t0
        text_end = max((t for t in self.text_ends if t <= first), default=self.t0)
        last = self.step_ends[-1] if self.step_ends else (self.denoise_last_end or first)
        return {"text_encoding": text_end - self.t0, "conditioning": first - text_end,
                "denoising": last - first, "decoding": self.t_end - last}

    def step_s(self) -> list[float]:
        """Wall seconds of each denoising step (empty when the pipeline takes no step callback)."""
        if not self.step_ends or self.denoise_start is None:
            return []
        marks = [self.denoise_start, *self.step_ends]
        return [b - a for a, b in zip(marks, marks[1:])]
