"""`dit-local`: the built-in latent video Diffusion Transformer, run on this machine (CPU, or a GPU when present).

Request modes: t2v, i2v (the source image `images[0]` only; the prompt is not used), hybrid (prompt + `images[0]`),
keyframes (prompt + `first_frame` and/or `last_frame`). Options in `request.extra`:

- `steps` (int, default from the checkpoint) and `guidance` (float) for the sampler;
- `segments`: [[first_frame, last_frame, prompt], ...] for token masking (different prompts for different frames;
  each latent frame follows the segment covering most of its frames, so changes land on the first frame of a
  latent frame: 1, 3, 5, ... with the shipped 2-frame packing);
- `interpolate`: {"prompt": str, "seed": int, "alpha": float, "method": "slerp" | "linear"}: the video decoded from
  the latent between this request's generation (alpha 0) and the generation of the other prompt/seed (alpha 1).

Constructor options (`--option dit-local.KEY=VALUE`): `weights` (checkpoint folder), `device`, `batch_size`,
`price_per_hour` (USD per hour of the machine; default a 2-vCPU cloud instance), `price_vcpus` (vCPUs of that
machine), `threads`, `steps`, `guidance`.
Stage latencies are the batch's wall time divided by its size (what a user waits). `hardware_s` is the compute the
generation used, not wall time: on CPU the CPU seconds of the generating thread and torch's worker threads
(`compute.CpuMeter`), charged at `price_per_hour / price_vcpus` per CPU-hour; on a GPU the synchronised wall time of
the batch (the GPU is held for it), charged at `price_per_hour`. A batch's compute is shared equally by its requests.
"""
from __future__ import annotations

import dataclasses
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.backends.base import Backend, GenerationContext, Resources
from vbench_suite.backends.compute import CpuMeter
from vbench_suite.keys import file_sha256
from vbench_suite.types import (Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency,
                                ModeCapabilities)

DEFAULT_PRICE_PER_HOUR = 0.085
"""US dollars per hour of the machine running the model: a 2-vCPU cloud instance on demand (e.g. AWS c6i.large)."""
DEFAULT_PRICE_VCPUS = 2
"""vCPUs of the machine `DEFAULT_PRICE_PER_HOUR` prices: one CPU-hour costs price_per_hour / price_vcpus."""
EXTRA_KEYS = ("steps", "guidance", "segments", "interpolate")
MODES = ("t2v", "i2v", "hybrid", "keyframes")
FPS = 8
"""The frame rate the model was trained for (its motions span num_frames / FPS seconds)."""


class RequestError(ValueError):
    """A request this backend cannot serve; becomes a 'failed' result (not retriable)."""


class DiTLocalBackend(Backend):
    """The local DiT generator. `weights`: checkpoint folder (default: the one shipped in the package)."""

    name = "dit-local"
    max_concurrency = 1

    def __init__(self, weights: str | Path | None = None, device: str | None = None, batch_size: int = 4,
                 price_per_hour: float = DEFAULT_PRICE_PER_HOUR, threads: int | None = None,
                 steps: int | None = None, guidance: float | None = None,
                 price_vcpus: int = DEFAULT_PRICE_VCPUS) -> None:
        """`steps` / `guidance` replace the checkpoint's defaults for requests that do not set them in `extra`;
        `price_per_hour` (USD for the whole machine of `price_vcpus` vCPUs) turns compute seconds into `cost_usd`."""
        self.weights = weights
        self.steps = None if steps is None else int(steps)
        self.guidance = None if guidance is None else float(guidance)
        self.device = device
        self.batch_size = int(batch_size)
        self.price_per_hour = float(price_per_hour)
        self.price_vcpus = int(price_vcpus)
        if self.price_vcpus < 1:
            from vbench_suite.errors import ConfigError

            raise ConfigError(f"backend 'dit-local': price_vcpus must be >= 1, got {price_vcpus}")
        self.threads = threads
        self._pipeline: Any = None

    # -- identity ------------------------------------------------------------------------------------------------
    @property
    def pipeline(self) -> Any:
        if self._pipeline is None:
            import torch

            from vbench_suite.backends.dit.pipeline import DiTPipeline

            if self.threads:
                torch.set_num_threads(int(self.threads))
            pipeline = DiTPipeline.load(self.weights, self.device)
            _ = pipeline.text_encoder  # load it now, so per-request stage latencies exclude one-time loading
            self._pipeline = pipeline
        return self._pipeline

    def fingerprint(self) -> Fingerprint:
        p = self.pipeline
        settings = {"default_steps": self.default_steps, "default_guidance": self.default_guidance,
                    "num_frames": p.cfg.num_frames, "device": p.device.type}
        from vbench_suite.types import make_extra

        return Fingerprint(backend=self.name, model="vbench-dit-shapes", version=p.version,
                           settings=make_extra(settings))

    @property
    def default_steps(self) -> int:
        return self.steps if self.steps is not None else self.pipeline.cfg.default_steps

    @property
    def default_guidance(self) -> float:
        return self.guidance if self.guidance is not None else self.pipeline.cfg.default_guidance

    def capabilities(self) -> Capabilities:
        """Read from the checkpoint's config.json (the weights are not loaded, torch is not imported)."""
        from vbench_suite.backends.dit.config import WEIGHTS_DIR, PipelineConfig

        cfg = self._pipeline.cfg if self._pipeline is not None else PipelineConfig.load(self.weights or WEIGHTS_DIR)
        size = cfg.autoencoder.image_size
        clip_s = cfg.num_frames / FPS
        limits = ModeCapabilities(max_duration_s=clip_s, resolutions=((size, size),), fps=(FPS,),
                                  default_duration_s=clip_s, default_resolution=(size, size), default_fps=FPS,
                                  keyframes="first_or_last")
        # One conditioning image in i2v / hybrid; keyframes hold whichever of first / last is given (`to_spec`).
        with_image = dataclasses.replace(limits, min_images=1, max_images=1)
        return Capabilities.of({m: with_image if m in ("i2v", "hybrid") else limits for m in MODES})

    def resources(self) -> Resources:
        """One CPU core, or one GPU when `device` names CUDA (with `device` unset, an instance given a GPU by
        `--option dit-local.num_gpus=1` uses it, one given none runs on the CPU)."""
        on_gpu = str(self.device or "").startswith("cuda")
        return Resources(num_cpus=1.0, num_gpus=1.0 if on_gpu else 0.0)

    def not_configured_reason(self) -> str | None:
        try:
            _ = self.pipeline
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, not raised, here
            return str(exc)
        return None

    def readiness(self) -> str | None:
        """Cheap check for listings: torch installed, checkpoint files present, config valid (nothing loaded)."""
        import importlib.util

        from vbench_suite.backends.dit.config import WEIGHTS_DIR, WEIGHTS_FILE

        if importlib.util.find_spec("torch") is None:
            return "torch is not installed (pip install torch)"
        folder = Path(self.weights) if self.weights is not None else WEIGHTS_DIR
        if not (folder / WEIGHTS_FILE).is_file():
            return f"no {WEIGHTS_FILE} in {folder}"
        try:
            self.capabilities()
        except Exception as exc:  # noqa: BLE001 - a broken config is reported, not raised, here
            return str(exc)
        return None

    # -- request -> sample spec ----------------------------------------------------------------------------------
    def to_spec(self, request: GenerationRequest) -> Any:
        """Translate a request into a `SampleSpec`; raises RequestError naming what is wrong."""
        from vbench_suite.backends.dit.pipeline import SampleSpec, Segment

        cfg = self.pipeline.cfg
        extra = request.extra_dict()
        unknown = sorted(set(extra) - set(EXTRA_KEYS))
        if unknown:
            raise RequestError(f"unknown option(s) {', '.join(unknown)} for dit-local (known: {', '.join(EXTRA_KEYS)})")
        if request.mode not in MODES:
            raise RequestError(f"mode '{request.mode}' not supported (supports {', '.join(MODES)})")
        size = cfg.autoencoder.image_size
        if tuple(request.resolution) != (size, size):
            raise RequestError(f"resolution {tuple(request.resolution)} not supported: the model makes {size}x{size}")
        if not 1 <= request.num_frames <= cfg.num_frames:
            raise RequestError(f"{request.num_frames} frames requested; the model makes at most {cfg.num_frames}")
        steps = int(extra.get("steps", self.default_steps))
        guidance = float(extra.get("guidance", self.default_guidance))
        if steps < 1:
            raise RequestError(f"steps must be >= 1, got {steps}")
        n = cfg.num_frames
        if "segments" in extra:
            segments = []
            for item in extra["segments"]:
                first, last, prompt = item
                if not (0 <= int(first) <= int(last) < n):
                    raise RequestError(f"segment frames {first}..{last} outside 0..{n - 1}")
                segments.append(Segment(int(first), int(last), str(prompt)))
            if not segments:
                raise RequestError("'segments' is empty")
        else:
            segments = [Segment(0, n - 1, request.prompt)]
        image = first = last = None
        if request.mode in ("i2v", "hybrid"):
            if len(request.images) != 1:
                raise RequestError(f"mode '{request.mode}' needs a conditioning image in request.images (exactly "
                                   f"one), got {len(request.images)}")
            image = load_image(request.images[0], size)
        if request.mode == "keyframes":
            if request.first_frame is None and request.last_frame is None:
                raise RequestError("mode 'keyframes' needs first_frame and/or last_frame")
            first = load_image(request.first_frame, size) if request.first_frame else None
            last = load_image(request.last_frame, size) if request.last_frame else None
        return SampleSpec(segments=tuple(segments), seed=int(request.seed), steps=steps, guidance=guidance,
                          use_text=request.mode != "i2v", image=image, first_frame=first, last_frame=last)

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        return self.generate_batch([request], [ctx or self.default_context(request)])[0]

    def generate_batch(self, requests: Sequence[GenerationRequest],
                       ctxs: Sequence[GenerationContext]) -> list[GenerationResult]:
        """Generate in chunks of `batch_size` requests sharing a step count; results keep the input order."""
        fingerprint = self.fingerprint()
        results: list[GenerationResult | None] = [None] * len(requests)
        specs: dict[int, Any] = {}
        for i, request in enumerate(requests):
            try:
                specs[i] = self.to_spec(request)
            except (RequestError, OSError, ValueError) as exc:
                results[i] = GenerationResult(status="failed", fingerprint=fingerprint, error=str(exc))
        plain = [i for i in specs if "interpolate" not in requests[i].extra_dict()]
        for i in specs:
            if i not in plain:
                results[i] = self._interpolated(requests[i], ctxs[i], specs[i], fingerprint)
        by_steps: dict[int, list[int]] = {}
        for i in plain:
            by_steps.setdefault(specs[i].steps, []).append(i)
        for group in by_steps.values():
            for start in range(0, len(group), max(1, self.batch_size)):
                chunk = group[start:start + max(1, self.batch_size)]
                for i, result in zip(chunk, self._run_chunk([requests[i] for i in chunk], [ctxs[i] for i in chunk],
                                                            [specs[i] for i in chunk], fingerprint)):
                    results[i] = result
        return [r for r in results if r is not None]

    def _run_chunk(self, requests: Sequence[GenerationRequest], ctxs: Sequence[GenerationContext],
                   specs: Sequence[Any], fingerprint: Fingerprint) -> list[GenerationResult]:
        p = self.pipeline
        meter = CpuMeter().start()
        start = time.perf_counter()
        try:
            p.encode_text([seg.prompt for s in specs for seg in s.segments] + [""])
            t_text = time.perf_counter()
            latents = p.sample_latents(specs)
            _sync(p.device)
            t_denoise = time.perf_counter()
            videos = p.decode(latents)  # (B, F, H, W, 3)
            t_decode = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a failed generation is a value, not an exception
            return [GenerationResult(status="failed", fingerprint=fingerprint, error=f"generation failed: {exc}")
                    for _ in requests]
        n = len(requests)
        compute = self._compute_s(meter, t_decode - start) / n
        stages = {"text_encoding": (t_text - start) / n, "denoising": (t_denoise - t_text) / n,
                  "decoding": (t_decode - t_denoise) / n}
        return [self._finish(r, c, v, stages, compute, {"batch_size": n, "steps": s.steps, "guidance": s.guidance,
                                                        "hardware_measure": meter.method}, fingerprint)
                for r, c, v, s in zip(requests, ctxs, videos, specs)]

    def _compute_s(self, meter: CpuMeter, wall_s: float) -> float:
        """Compute seconds of a finished batch: GPU wall time on CUDA, else the CPU seconds the meter saw."""
        cpu_s = meter.stop()
        if self.pipeline.device.type == "cuda":
            meter.method = "gpu_wall"
            return wall_s
        return cpu_s

    def _hardware_price_per_hour(self) -> float:
        """USD per hour of the measured resource: the machine per GPU-hour, a vCPU's share per CPU-hour."""
        return self.price_per_hour if self.pipeline.device.type == "cuda" else self.price_per_hour / self.price_vcpus

    def _interpolated(self, request: GenerationRequest, ctx: GenerationContext, spec: Any,
                      fingerprint: Fingerprint) -> GenerationResult:
        import dataclasses

        from vbench_suite.backends.dit.pipeline import Segment

        options = dict(request.extra_dict()["interpolate"])
        p = self.pipeline
        try:
            unknown = sorted(set(options) - {"prompt", "seed", "alpha", "method"})
            if unknown:
                raise RequestError(f"unknown interpolate option(s) {', '.join(unknown)}")
            other = dataclasses.replace(spec, seed=int(options.get("seed", spec.seed)),
                                        segments=(Segment(0, p.cfg.num_frames - 1,
                                                          str(options.get("prompt", request.prompt))),))
            meter = CpuMeter().start()
            start = time.perf_counter()
            p.encode_text([seg.prompt for s in (spec, other) for seg in s.segments] + [""])
            t_text = time.perf_counter()
            latents = p.sample_latents([spec, other])
            t_denoise = time.perf_counter()
            video = p.interpolate(latents[0], latents[1], [float(options.get("alpha", 0.5))],
                                  str(options.get("method", "slerp")))[0]
            t_decode = time.perf_counter()
        except Exception as exc:  # noqa: BLE001
            return GenerationResult(status="failed", fingerprint=fingerprint, error=f"interpolation failed: {exc}")
        stages = {"text_encoding": t_text - start, "denoising": t_denoise - t_text, "decoding": t_decode - t_denoise}
        compute = self._compute_s(meter, t_decode - start)
        return self._finish(request, ctx, video, stages, compute,
                            {"batch_size": 1, "steps": spec.steps, "guidance": spec.guidance, "interpolated": True,
                             "hardware_measure": meter.method}, fingerprint)

    def _finish(self, request: GenerationRequest, ctx: GenerationContext, video: np.ndarray,
                stages: dict[str, float], compute_s: float, info: dict[str, Any],
                fingerprint: Fingerprint) -> GenerationResult:
        """Write the video; `compute_s` is this request's share of the batch's compute (CPU or GPU seconds)."""
        from vbench_suite.types import make_extra
        from vbench_suite.video.write import write_video

        t0 = time.perf_counter()
        frames = video[:request.num_frames]
        path = write_video(ctx.out_path, frames, request.fps)
        stages = {**stages, "writing": time.perf_counter() - t0}
        total = sum(stages.values())
        rate = self._hardware_price_per_hour()
        return GenerationResult(
            status="ok", fingerprint=fingerprint, video_path=str(path),
            latency=Latency(generating_s=total, total_s=total, stages=tuple(stages.items())),
            cost_usd=compute_s / 3600.0 * rate, hardware_s=compute_s,
            peak_memory_mb=peak_memory_mb(self.pipeline.device), video_seconds=len(frames) / request.fps,
            video_sha256=file_sha256(path),
            info=make_extra({**info, "device": self.pipeline.device.type, "hardware_usd_per_hour": rate}))

    def close(self) -> None:
        self._pipeline = None


def load_image(path: str | Path, size: int) -> np.ndarray:
    """Read an image file as uint8 RGB (size, size, 3), resized with bicubic filtering if needed."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(rgb, dtype=np.uint8).copy()


def peak_memory_mb(device: Any) -> float:
    """Peak memory in MiB: allocated GPU memory on CUDA, else the process's peak resident set size."""
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _sync(device: Any) -> None:
    if getattr(device, "type", "cpu") == "cuda":
        import torch

        torch.cuda.synchronize(device)
