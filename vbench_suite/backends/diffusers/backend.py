"""`diffusers`: open video models (Wan 2.1/2.2, LTX-Video, CogVideoX, HunyuanVideo, ...) run through diffusers.

`--option diffusers.model=PATH_OR_REPO_ID` names a `save_pretrained` folder or a Hugging Face repo id in the local
cache (`loading`); nothing downloads. `model_index.json` decides the family and what each request mode runs
(`families`). Options (`--option diffusers.KEY=VALUE`):

- `steps`, `guidance`, `negative_prompt`: sampler settings for requests that do not set them in `extra` (default: the
  pipeline family's own steps and guidance, no negative prompt);
- `dtype` (auto = bf16 on CUDA, fp32 on CPU | bf16 | fp16 | fp32), `device` (auto = CUDA when present | cpu | cuda |
  cuda:N), `cpu_offload` (diffusers' model CPU offload onto `device`), `vae_tiling` (tiled VAE decoding);
- `batch_size` (text-to-video requests with the same settings generated in one call, default 1), `threads` (torch
  CPU threads), `max_frames` (longest clip accepted, default the family's native length), `revision` (of a repo id);
- `usd_per_gpu_hour` / `usd_per_cpu_hour`: price of one GPU-hour / one CPU-hour of compute, turning `hardware_s` into
  `cost_usd`. Unset, they are assumptions, recorded as such in every result (`info.price_source`): $2/GPU-hour (the
  same placeholder the report assumes for an unpriced GPU; not a quote) and dit-local's default CPU-hour price.

Request `extra` keys: `steps`, `guidance`, `negative_prompt`, and `last_frame_index` (LTX keyframes: the frame the
`last_frame` image is pinned to, default the last frame). Every output-changing setting is in the fingerprint.

Accounting per result: latency stages (`timing`: text_encoding, conditioning, denoising, decoding, plus writing the
file), per-step seconds in `info.step_s`; `hardware_s` = GPU-seconds (synchronised wall time x GPUs holding the
model) on CUDA, CPU-seconds (`compute.CpuMeter`) on CPU; `cost_usd` = hardware_s x the hourly price / 3600; peak
memory. A batch's time and compute are shared equally by its requests. Each request samples from its own CPU
`torch.Generator` seeded with the request's seed, so its video does not depend on the batch it ran in (up to
floating-point differences of batched kernels) nor on the device's random number generator.
"""
from __future__ import annotations

import functools
import importlib.util
import inspect
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.backends.compute import CpuMeter
from vbench_suite.backends.diffusers import devices
from vbench_suite.backends.diffusers.families import (CONDITIONS, IMAGE, IMAGE_AND_LAST, FamilyPlan, ModePlan,
                                                      plan_family)
from vbench_suite.backends.diffusers.loading import DTYPES, ModelNotFound, ModelSource, read_configs, resolve_model
from vbench_suite.backends.dit_local import DEFAULT_PRICE_PER_HOUR, DEFAULT_PRICE_VCPUS
from vbench_suite.errors import ConfigError
from vbench_suite.keys import file_sha256
from vbench_suite.types import (Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency,
                                ModeCapabilities, make_extra)

DEFAULT_USD_PER_GPU_HOUR = 2.0
"""Assumed price of one GPU-hour when `usd_per_gpu_hour` is not given: the placeholder the report also assumes
for an unpriced GPU (`report.economics.ASSUMED_GPU_USD_PER_HOUR`), not a quote."""
DEFAULT_USD_PER_CPU_HOUR = DEFAULT_PRICE_PER_HOUR / DEFAULT_PRICE_VCPUS
"""Assumed price of one CPU-hour when `usd_per_cpu_hour` is not given: dit-local's, a vCPU's share of an on-demand
2-vCPU cloud instance."""
EXTRA_KEYS = ("steps", "guidance", "negative_prompt", "last_frame_index")
"""Request `extra` keys this backend reads."""
NO_MODEL = ("no model given: set --option diffusers.model=PATH_OR_REPO_ID (a save_pretrained folder, or a Hugging "
            "Face repo id in the local cache, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers)")


class RequestError(ValueError):
    """A request this backend cannot serve; becomes a 'failed' result (not retriable)."""


@dataclass
class _Call:
    """One request, translated: the mode's plan and the pipeline keyword arguments other than prompt/generator."""

    index: int
    request: GenerationRequest
    ctx: GenerationContext
    plan: ModePlan
    kwargs: dict[str, Any] = field(default_factory=dict)

    def group(self) -> tuple[Any, ...] | None:
        """Calls with equal groups may share one pipeline call (text-to-video only); None: run alone."""
        if self.plan.inputs != "text":
            return None
        return (self.plan.pipeline_class, tuple(sorted((k, repr(v)) for k, v in self.kwargs.items())))


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"backend 'diffusers': {name} must be true or false, got {value!r}")


def _as_number(name: str, value: Any, kind: type, minimum: float, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"backend 'diffusers': {name} must be a number, got {value!r}") from None
    if not number >= minimum:
        raise ConfigError(f"backend 'diffusers': {name} must be >= {minimum:g}, got {value!r}")
    return number


class DiffusersBackend(Backend):
    """A diffusers video pipeline loaded once from disk and reused for every request."""

    name = "diffusers"
    max_concurrency = 1

    def __init__(self, model: str | None = None, revision: str | None = None, steps: int | None = None,
                 guidance: float | None = None, dtype: str = "auto", device: str = "auto", cpu_offload: Any = False,
                 vae_tiling: Any = False, negative_prompt: str | None = None, batch_size: int = 1,
                 usd_per_gpu_hour: float | None = None, usd_per_cpu_hour: float | None = None,
                 threads: int | None = None, max_frames: int | None = None) -> None:
        """Options are validated here (ConfigError naming the option); the model is found and loaded on first use."""
        self.model = None if model in (None, "") else str(model)
        self.revision = None if revision in (None, "") else str(revision)
        self.steps = _as_number("steps", steps, int, 1)
        self.guidance = _as_number("guidance", guidance, float, 0.0)
        if dtype not in ("auto", *DTYPES):
            raise ConfigError(f"backend 'diffusers': dtype must be one of auto, {', '.join(DTYPES)}; got {dtype!r}")
        self.dtype_option = str(dtype)
        self.device_option = str(device)
        self.cpu_offload = _as_bool("cpu_offload", cpu_offload)
        self.vae_tiling = _as_bool("vae_tiling", vae_tiling)
        self.negative_prompt = None if negative_prompt is None else str(negative_prompt)
        self.batch_size = _as_number("batch_size", batch_size, int, 1, allow_none=False)
        self.usd_per_gpu_hour = _as_number("usd_per_gpu_hour", usd_per_gpu_hour, float, 0.0)
        self.usd_per_cpu_hour = _as_number("usd_per_cpu_hour", usd_per_cpu_hour, float, 0.0)
        self.threads = _as_number("threads", threads, int, 1)
        self.max_frames = _as_number("max_frames", max_frames, int, 1)
        self._lock = threading.RLock()
        self._source: ModelSource | None = None
        self._plan: FamilyPlan | None = None
        self._pipe: Any = None
        self._mode_pipes: dict[str, Any] = {}
        self._fingerprint: Fingerprint | None = None
        self._device: str | None = None
        self._device_name: str | None = None
        self._gpus = 1  # GPUs holding the loaded weights (1 with CPU offload, which streams them onto one)

    # -- model, plan and capabilities (cheap: JSON files only) ---------------------------------------------------
    @property
    def source(self) -> ModelSource:
        """Where the model is on disk; `ModelNotFound` (a user error, exit 2) when it is not."""
        if self._source is None:
            if self.model is None:
                raise ModelNotFound(NO_MODEL)
            self._source = resolve_model(self.model, self.revision)
        return self._source

    @property
    def plan(self) -> FamilyPlan:
        if self._plan is None:
            self._plan = plan_family(read_configs(self.source.folder), self.max_frames)
        return self._plan

    def capabilities(self) -> Capabilities:
        """The configured model's modes and limits, from its JSON configs. Without a model: every mode the backend
        family can serve, unconstrained (what a given model supports shows once it is set)."""
        if self.model is None:
            return Capabilities.same(("t2v", "i2v", "hybrid", "keyframes"), ModeCapabilities())
        return self.plan.capabilities()

    def readiness(self) -> str | None:
        """Cheap: libraries installed, model on disk, its configs readable (nothing loaded, torch not imported)."""
        for module in ("torch", "diffusers", "transformers"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install 'vbench-suite[diffusers]')"
        try:
            _ = self.plan
        except ModelNotFound as exc:
            return str(exc)
        return None

    def not_configured_reason(self) -> str | None:
        """`readiness`, then load the pipeline (once; later calls reuse it) so a broken model is reported here."""
        reason = self.readiness()
        if reason is not None:
            return reason
        try:
            self._load()
        except (ModelNotFound, ConfigError) as exc:
            return str(exc)
        return None

    # -- loading ---------------------------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        if self._device is None:
            self._device = devices.resolve_device(self.device_option)
        return self._device

    @property
    def dtype(self) -> str:
        return devices.resolve_dtype(self.dtype_option, self.device)

    @property
    def device_name(self) -> str:
        if self._device_name is None:
            self._device_name = devices.device_name(self.device)
        return self._device_name

    def _load(self) -> Any:
        with self._lock:
            if self._pipe is None:
                from vbench_suite.backends.diffusers.loading import load_pipeline, quiet_acquire

                if self.threads:
                    import torch

                    torch.set_num_threads(self.threads)
                if self.cpu_offload and not self.device.startswith("cuda"):
                    raise ConfigError(f"backend 'diffusers': cpu_offload streams the model onto a GPU, but the device "
                                      f"is {self.device}; drop cpu_offload or use --option diffusers.device=cuda")
                plan = self.plan
                pipe = load_pipeline(self.source, self.dtype, self.device, self.cpu_offload, self.vae_tiling)
                if plan.family == "generic":
                    params = _call_parameters(type(pipe))
                    missing = [p for p in ("prompt", "num_frames", "height", "width", "generator") if p not in params]
                    if missing:
                        raise ModelNotFound(f"{type(pipe).__name__} takes no {', '.join(missing)}: the diffusers "
                                            "backend cannot drive it as text-to-video")
                on_gpus = sum(d.startswith("cuda") for d in devices.pipeline_devices(pipe))
                self._gpus = 1 if self.cpu_offload else max(1, on_gpus)
                quiet_acquire()  # while the model is loaded: its calls log only errors (see quiet_acquire)
                self._pipe = pipe
            return self._pipe

    def _pipeline_for(self, plan: ModePlan) -> Any:
        """The pipeline serving `plan`'s mode, derived once from the loaded one (shared weights)."""
        with self._lock:
            pipe = self._load()
            if plan.pipeline_class not in self._mode_pipes:
                from vbench_suite.backends.diffusers.loading import derive_pipeline

                self._mode_pipes[plan.pipeline_class] = derive_pipeline(pipe, plan.pipeline_class, self.dtype,
                                                                        self.device, self.cpu_offload)
            return self._mode_pipes[plan.pipeline_class]

    # -- identity --------------------------------------------------------------------------------------------------
    def fingerprint(self) -> Fingerprint:
        """Model identity (repo + commit, or the content digest of the folder), library versions, pipeline class,
        device, dtype, scheduler config and every output-changing option. Computed once (no model loading)."""
        if self._fingerprint is None:
            from vbench_suite.backends.diffusers.fingerprint import library_versions, model_digest
            from vbench_suite.backends.diffusers.loading import _read_json

            src, plan = self.source, self.plan
            digest = model_digest(src.folder)
            settings = {
                "family": plan.family, "pipeline_class": plan.pipeline_class,
                "mode_pipelines": {p.mode: p.pipeline_class for p in plan.modes},
                "model_source": "hf-cache" if src.repo_id else "folder", "model_digest": digest,
                "revision": src.commit, **library_versions(),
                "device": self.device.split(":")[0],
                "device_name": self.device_name, "dtype": self.dtype,
                "scheduler": _read_json(src.folder / "scheduler" / "scheduler_config.json"),
                "default_steps": {p.mode: self.steps or p.steps for p in plan.modes},
                "default_guidance": {p.mode: self.guidance if self.guidance is not None else p.guidance
                                     for p in plan.modes},
                "negative_prompt": self.negative_prompt, "vae_tiling": self.vae_tiling,
            }
            self._fingerprint = Fingerprint(backend=self.name, model=src.name,
                                            version=src.commit or digest[:16], settings=make_extra(settings))
        return self._fingerprint

    # -- requests --------------------------------------------------------------------------------------------------
    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        """Capabilities of the mode, plus request options this backend does not read and LTX keyframe positions."""
        reason = self.capabilities().check(request)
        if reason is not None:
            return reason
        extra = request.extra_dict()
        unknown = sorted(set(extra) - set(EXTRA_KEYS))
        if unknown:
            return (f"request option(s) {', '.join(unknown)} not taken by the diffusers backend (it takes "
                    f"{', '.join(EXTRA_KEYS)})")
        plan = self.plan.plan(request.mode)
        if "last_frame_index" in extra and (plan is None or plan.inputs != CONDITIONS or not request.last_frame):
            return "last_frame_index places a keyframes request's last_frame, in the LTX family only"
        if self.max_frames is not None and request.num_frames > self.max_frames:
            return f"{request.num_frames} frames exceed max_frames={self.max_frames}"
        return None

    def _translate(self, index: int, request: GenerationRequest, ctx: GenerationContext) -> _Call:
        """The pipeline arguments of a supported request; RequestError for values no pipeline could take."""
        plan = self.plan.plan(request.mode)
        assert plan is not None  # unsupported modes never get here
        extra = request.extra_dict()
        width, height = request.resolution
        kwargs: dict[str, Any] = {"height": int(height), "width": int(width), "num_frames": request.num_frames}
        steps = extra.get("steps", self.steps or plan.steps)
        guidance = extra.get("guidance", self.guidance if self.guidance is not None else plan.guidance)
        if steps is not None:
            if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
                raise RequestError(f"steps must be a positive integer, got {steps!r}")
            kwargs["num_inference_steps"] = steps
        if guidance is not None:
            if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance < 0:
                raise RequestError(f"guidance must be a number >= 0, got {guidance!r}")
            kwargs["guidance_scale"] = float(guidance)
        negative = extra.get("negative_prompt", self.negative_prompt)
        if negative is not None:
            kwargs["negative_prompt"] = str(negative)
        if self.plan.takes_frame_rate:
            kwargs["frame_rate"] = request.fps
        size = (int(width), int(height))
        if plan.inputs == IMAGE:
            kwargs["image"] = load_image(request.images[0], size)
        elif plan.inputs == IMAGE_AND_LAST:
            kwargs["image"] = load_image(request.first_frame, size)  # type: ignore[arg-type]
            if request.last_frame:
                kwargs["last_image"] = load_image(request.last_frame, size)
        elif plan.inputs == CONDITIONS:
            kwargs["conditions"] = self._conditions(request, size, extra)
        return _Call(index, request, ctx, plan, kwargs)

    def _conditions(self, request: GenerationRequest, size: tuple[int, int], extra: dict[str, Any]) -> list[Any]:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        last_index = extra.get("last_frame_index", request.num_frames - 1)
        if isinstance(last_index, bool) or not isinstance(last_index, int) or not 0 < last_index < request.num_frames:
            raise RequestError(f"last_frame_index must be a frame of the clip (1..{request.num_frames - 1}), "
                               f"got {last_index!r}")
        conditions = []
        if request.first_frame:
            conditions.append(LTXVideoCondition(image=load_image(request.first_frame, size), frame_index=0))
        if request.last_frame:
            conditions.append(LTXVideoCondition(image=load_image(request.last_frame, size), frame_index=last_index))
        return conditions

    # -- generation ------------------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        return self.generate_batch([request], [ctx or self.default_context(request)])[0]

    def generate_batch(self, requests: Sequence[GenerationRequest],
                       ctxs: Sequence[GenerationContext]) -> list[GenerationResult]:
        """Text-to-video requests with equal settings share pipeline calls of up to `batch_size`; every other request
        runs alone. Results keep the input order."""
        fingerprint = self.fingerprint()
        results: list[GenerationResult | None] = [None] * len(requests)
        groups: dict[Any, list[_Call]] = {}
        for i, (request, ctx) in enumerate(zip(requests, ctxs, strict=True)):
            reason = self.unsupported_reason(request)
            try:
                if reason is not None:
                    raise RequestError(f"unsupported request: {reason}")
                call = self._translate(i, request, ctx)
            except (RequestError, OSError, ValueError) as exc:
                results[i] = GenerationResult(status="failed", fingerprint=fingerprint, error=str(exc))
                continue
            groups.setdefault(call.group() or ("alone", i), []).append(call)
        for calls in groups.values():
            for start in range(0, len(calls), self.batch_size):
                chunk = calls[start:start + self.batch_size]
                for call, result in zip(chunk, self._run(chunk, fingerprint)):
                    results[call.index] = result
        return [r for r in results if r is not None]

    def _run(self, calls: list[_Call], fingerprint: Fingerprint) -> list[GenerationResult]:
        """One pipeline call for `calls` (same plan and arguments but prompt and seed), then one file per video."""
        import torch

        from vbench_suite.backends.diffusers.timing import StageClock

        n, plan = len(calls), calls[0].plan
        try:
            pipe = self._pipeline_for(plan)
        except (ModelNotFound, ConfigError) as exc:
            return [GenerationResult(status="failed", fingerprint=fingerprint, error=str(exc)) for _ in calls]
        params = _call_parameters(type(pipe))
        kwargs = {k: v for k, v in calls[0].kwargs.items() if k in params}
        kwargs["prompt"] = [c.request.prompt for c in calls]
        # CPU generators: the initial noise is the same numbers on every device, and each request has its own.
        kwargs["generator"] = [torch.Generator("cpu").manual_seed(int(c.request.seed)) for c in calls]
        if "output_type" in params:
            kwargs["output_type"] = "np"
        stepped = "callback_on_step_end" in params
        clock = StageClock(devices.synchroniser(self.device))
        if stepped:
            kwargs["callback_on_step_end"] = clock.on_step_end
        with self._lock:
            devices.reset_peak_memory(self.device)
            meter = CpuMeter().start()
            try:
                with clock.attached(pipe, per_forward_sync=not stepped), torch.inference_mode():
                    clock.start()
                    output = pipe(**kwargs)
                    clock.stop()
                videos = to_uint8(output.frames if hasattr(output, "frames") else output[0])  # (B, F, H, W, 3)
                if len(videos) != n:
                    raise ValueError(f"the pipeline returned {len(videos)} videos for {n} prompts")
            except Exception as exc:  # noqa: BLE001 - a failed generation is a value, not an exception
                meter.stop()
                return [GenerationResult(status="failed", fingerprint=fingerprint,
                                         error=f"generation failed: {type(exc).__name__}: {exc}") for _ in calls]
            cpu_s = meter.stop()
            peak_mb, reserved_mb = devices.peak_memory_mb(self.device)
        wall = clock.t_end - clock.t0
        on_gpu = self.device.startswith("cuda")
        gpus = self._gpus
        compute = (wall * gpus if on_gpu else cpu_s) / n
        stages = {k: v / n for k, v in clock.stages().items()}
        info: dict[str, Any] = {
            "batch_size": n, "family": self.plan.family, "pipeline_class": type(pipe).__name__,
            "steps": kwargs.get("num_inference_steps"), "guidance": kwargs.get("guidance_scale"),
            "step_s": [round(s / n, 6) for s in clock.step_s()],
            "device": self.device.split(":")[0], "device_name": self.device_name,
            "device_count": gpus if on_gpu else 1, "dtype": self.dtype, "cpu_offload": self.cpu_offload,
            "hardware_measure": f"gpu_wall_x{gpus}" if on_gpu else meter.method,
            "peak_memory_reserved_mb": reserved_mb, **self._price_info(on_gpu),
        }
        if self.plan.note:
            info["note"] = self.plan.note
        return [self._finish(call, video, stages, compute, peak_mb, info, fingerprint)
                for call, video in zip(calls, videos)]

    def _price_info(self, on_gpu: bool) -> dict[str, Any]:
        """The hourly price applied to `hardware_s` and where it came from (an option, or an assumption)."""
        if on_gpu:
            given = self.usd_per_gpu_hour
            rate = DEFAULT_USD_PER_GPU_HOUR if given is None else given
            key, what = "usd_per_gpu_hour", "GPU-hour"
        else:
            given = self.usd_per_cpu_hour
            rate = DEFAULT_USD_PER_CPU_HOUR if given is None else given
            key, what = "usd_per_cpu_hour", "CPU-hour"
        source = (f"set by --option diffusers.{key}" if given is not None else
                  f"assumed, source: the diffusers backend's default ${rate:g} per {what}, not a quote; set yours "
                  f"with --option diffusers.{key}=USD")
        # rate_source / rate_option: the accounting keys every self-hosted backend records (backends/hardware.py),
        # which break-even and the report read to say whether the price was set or assumed.
        return {key: rate, "hardware_usd_per_hour": rate, "price_assumed": given is None, "price_source": source,
                "rate_source": "default" if given is None else "option", "rate_option": key}

    def _finish(self, call: _Call, video: np.ndarray, stages: dict[str, float], compute_s: float, peak_mb: float,
                info: dict[str, Any], fingerprint: Fingerprint) -> GenerationResult:
        """Check the video against the fitted request, write it, and account for it."""
        from vbench_suite.video.write import write_video

        request = call.request
        want = (request.num_frames, request.resolution[1], request.resolution[0])
        got = video.shape[:3]
        if got[0] < want[0] or got[1:] != want[1:]:
            return GenerationResult(status="failed", fingerprint=fingerprint, info=make_extra(info),
                                    error=f"the pipeline returned {got[0]} frames of {got[2]}x{got[1]} for a request "
                                          f"of {want[0]} frames of {want[2]}x{want[1]}")
        if got[0] > want[0]:
            info = {**info, "frames_returned": int(got[0])}
        t0 = time.perf_counter()
        try:
            path = write_video(call.ctx.out_path, video[:want[0]], request.fps)
        except (OSError, ValueError) as exc:
            return GenerationResult(status="failed", fingerprint=fingerprint, error=f"writing the video failed: {exc}")
        stages = {**stages, "writing": time.perf_counter() - t0}
        total = sum(stages.values())
        return GenerationResult(
            status="ok", fingerprint=fingerprint, video_path=str(path),
            latency=Latency(generating_s=total, total_s=total, stages=tuple(stages.items())),
            cost_usd=compute_s / 3600.0 * info["hardware_usd_per_hour"], hardware_s=compute_s,
            peak_memory_mb=peak_mb, video_seconds=want[0] / request.fps, video_sha256=file_sha256(path),
            info=make_extra(info))

    def close(self) -> None:
        with self._lock:
            if self._pipe is not None:
                from vbench_suite.backends.diffusers.loading import quiet_release

                quiet_release()
            self._pipe = None
            self._mode_pipes = {}


@functools.lru_cache(maxsize=None)
def _call_parameters(cls: type) -> frozenset[str]:
    """Keyword names a pipeline class's `__call__` takes (arguments it lacks are not passed)."""
    return frozenset(inspect.signature(cls.__call__).parameters)


def load_image(path: str | Path, size: tuple[int, int]) -> Any:
    """An RGB PIL image of `size` (width, height), resized with bicubic filtering when it differs."""
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BICUBIC)


def to_uint8(frames: Any) -> np.ndarray:
    """Pipeline frames (B, F, H, W, 3) floats in [0, 1] -> uint8, rounded as diffusers' own `numpy_to_pil` does."""
    array = np.asarray(frames, dtype=np.float32)
    if array.ndim == 4:  # a single video
        array = array[None]
    if array.ndim != 5 or array.shape[-1] != 3:
        raise ValueError(f"expected frames shaped (batch, frames, height, width, 3), got {array.shape}")
    return np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
