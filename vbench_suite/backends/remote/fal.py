"""fal's queue protocol, one generic adapter (`fal`), and Pika on it (`pika`; fal is Pika's official API).

Submit `POST /{owner}/{alias}[/{path}]` -> {"request_id", status_url, response_url, cancel_url}; status
`GET /{owner}/{alias}/requests/{id}/status` -> IN_QUEUE (with queue_position; over-concurrency requests wait
here, never rejected) / IN_PROGRESS / COMPLETED; result `GET /{owner}/{alias}/requests/{id}` -> the model's
output JSON ({"video": {"url"}}). A failed generation may report COMPLETED and then answer the result call with
HTTP 422 and `{"detail": [{"type": "content_policy_violation", "msg"}]}`. The status/result URLs are built
from our own base URL (never from the answer) so the key is only ever sent to the configured host.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import httpx

from vbench_suite.backends.remote.base import (ErrorVerdict, HttpCall, JobPhase, JobStatus, RemoteBackend,
                                               aspect_ratio, image_data_uri, ratio_resolutions,
                                               single_image)
from vbench_suite.backends.base import GenerationContext
from vbench_suite.errors import BackendNotConfigured, ConfigError
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, GenerationResult, ModeCapabilities

FAL_NAMESPACES: tuple[str, ...] = ("workflows", "comfy")
"""Endpoint prefixes whose app id has three parts (namespace/owner/alias)."""
STATUS_PHASE: dict[str, JobPhase] = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "succeeded"}
"""fal queue status -> harness phase (COMPLETED is terminal; the result call decides success)."""
REFUSAL_TYPES: frozenset[str] = frozenset({"content_policy_violation"})
"""fal model-error types that mean moderation."""
RETRYABLE_HEADER = "x-fal-retryable"
DURATION_FORMATS = ("int", "str", "none")
DEFAULT_DURATION_S = 5.0
"""Duration `generate` asks for when the user names none (most fal video models offer 5 s)."""
DEFAULT_RESOLUTION = (1280, 720)
"""Size `generate` asks for when the user names none (720p 16:9, offered by every fal video model we know)."""


IMAGE_INPUTS: dict[str, Any] = {"min_images": 1, "max_images": 1}
"""i2v / hybrid endpoints take one image (`image_url`)."""
KEYFRAME_INPUTS: dict[str, Any] = {"keyframes": "first_and_last"}
"""Keyframe endpoints (Pika's pikaframes: `image_urls`, 2 to 5 images) need a first and a last frame."""


def first_and_last(request: GenerationRequest) -> list[str]:
    """`image_urls` of a keyframes request; ValueError unless it has both frames (see `KEYFRAME_INPUTS`)."""
    if not (request.first_frame and request.last_frame):
        raise ValueError("fal keyframe endpoints take image_urls of at least two frames: first and last")
    return [image_data_uri(request.first_frame), image_data_uri(request.last_frame)]


def app_id(endpoint: str) -> str:
    """owner/alias (or namespace/owner/alias) of an endpoint id: the part the queue's status URLs use."""
    parts = endpoint.strip("/").split("/")
    n = 3 if parts[0] in FAL_NAMESPACES else 2
    if len(parts) < n:
        raise ConfigError(f"fal endpoint '{endpoint}' must look like owner/alias[/path]")
    return "/".join(parts[:n])


class FalQueueBackend(RemoteBackend):
    """Any fal-hosted video model through the queue.

    Options: endpoint (text-to-video endpoint id), image_endpoint (image-to-video endpoint id, optional),
    keyframes_endpoint (optional), durations (allowed seconds, e.g. [5, 10]), duration_format ('int' | 'str' |
    'none': how `duration` is sent), arguments (fixed extra fields, e.g. {"negative_prompt": "..."}),
    image_field ('image_url'), plus the common remote options.
    """

    name = "fal"
    vendor = "fal"
    api_key_env = "FAL_KEY"
    default_base_url = "https://queue.fal.run"
    api_version = "queue-v1"
    dashboard_hint = ("the request history of this endpoint in fal's dashboard around the request's time (the "
                      "queue API cannot find a request without its id)")
    default_max_concurrency = 2

    def __init__(self, *, endpoint: str = "", image_endpoint: str | None = None,
                 keyframes_endpoint: str | None = None, durations: list[float] | None = None,
                 duration_format: str = "int", arguments: Mapping[str, Any] | None = None,
                 image_field: str = "image_url", **options: Any) -> None:
        if duration_format not in DURATION_FORMATS:
            raise ConfigError(f"backend '{self.name}': duration_format must be one of {DURATION_FORMATS}")
        self.endpoints: dict[str, str] = {}
        if endpoint:
            self.endpoints["t2v"] = endpoint
        if image_endpoint:
            self.endpoints["i2v"] = self.endpoints["hybrid"] = image_endpoint
        if keyframes_endpoint:
            self.endpoints["keyframes"] = keyframes_endpoint
        for ep in self.endpoints.values():
            app_id(ep)
        self.durations = tuple(float(d) for d in durations or ())
        self.duration_format = duration_format
        self.arguments = dict(arguments or {})
        self.image_field = image_field
        super().__init__(**options)

    def not_configured_reason(self) -> str | None:
        if not self.endpoints:
            return (f"backend '{self.name}' needs an 'endpoint' option naming the fal model (e.g. "
                    "fal-ai/kling-video/v2.5-turbo/pro/text-to-video)")
        return super().not_configured_reason()

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        if not self.endpoints:
            raise BackendNotConfigured(self.not_configured_reason() or "")
        return super().generate(request, ctx)

    def model_id(self, request: GenerationRequest | None = None) -> str:
        if not self.endpoints:
            return ""
        mode = request.mode if request is not None else next(iter(self.endpoints))
        return self.endpoints.get(mode) or next(iter(self.endpoints.values()))

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint("|".join(f"{m}={e}" for m, e in sorted(self.endpoints.items())),
                                 arguments=tuple(sorted(self.arguments.items())) or None,
                                 duration_format=self.duration_format)

    def capabilities(self) -> Capabilities:
        """One entry per configured endpoint's modes; any size (the aspect ratio is sent), `durations` if given.
        Image modes send one image; keyframes send `image_urls` [first, last], so both frames are required."""
        limits = self.mode_limits()
        per_mode = {"i2v": IMAGE_INPUTS, "hybrid": IMAGE_INPUTS, "keyframes": KEYFRAME_INPUTS}
        return Capabilities.of({mode: dataclasses.replace(limits, **per_mode.get(mode, {}))
                                for mode in tuple(self.endpoints) or ("t2v",)})

    def mode_limits(self) -> ModeCapabilities:
        """The limits every mode of this endpoint set shares."""
        default = DEFAULT_DURATION_S if not self.durations or DEFAULT_DURATION_S in self.durations \
            else min(self.durations)
        return ModeCapabilities(durations_s=self.durations, max_duration_s=max(self.durations, default=60.0),
                                default_duration_s=default, default_resolution=DEFAULT_RESOLUTION)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Key {key}"}

    def build_arguments(self, request: GenerationRequest) -> dict[str, Any]:
        """The model input JSON (pure). Subclasses for specific models override this."""
        args: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed, **self.arguments}
        if self.duration_format == "int":
            args["duration"] = int(request.duration_s)
        elif self.duration_format == "str":
            args["duration"] = str(int(request.duration_s))
        if request.mode in ("i2v", "hybrid"):
            args[self.image_field] = image_data_uri(single_image(request))
        elif request.mode == "keyframes":
            args["image_urls"] = first_and_last(request)
        else:
            args.setdefault("aspect_ratio", aspect_ratio(*request.resolution))
        return args

    def build_create(self, request: GenerationRequest) -> HttpCall:
        return HttpCall("POST", f"/{self.model_id(request)}", json=self.build_arguments(request))

    def parse_create(self, body: Any) -> dict[str, Any]:
        # The endpoint is needed again to build the status URL on resume, so it goes into the job record.
        return {"job_id": str(body["request_id"])}

    def _app_for(self, job: Mapping[str, Any]) -> str:
        return app_id(str(job.get("model") or self.model_id()))

    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/{self._app_for(job)}/requests/{job['job_id']}/status", params={"logs": "0"})

    def parse_poll(self, body: Any) -> JobStatus:
        status = str(body["status"])
        if status not in STATUS_PHASE:
            raise ValueError(f"unknown fal queue status '{status}'")
        metrics = body.get("metrics") or {}
        times = (("inference_time_s", metrics.get("inference_time")),) if metrics.get("inference_time") else ()
        if status == "IN_QUEUE":
            return JobStatus("queued", status, queue_position=body.get("queue_position"))
        if status == "IN_PROGRESS":
            return JobStatus("running", status)
        if body.get("error"):
            return JobStatus("failed", status, reason=str(body["error"]), code=body.get("error_type"),
                             vendor_times=times)
        return JobStatus("succeeded", status, needs_result=True, vendor_times=times)

    def build_result(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/{self._app_for(job)}/requests/{job['job_id']}")

    def parse_result(self, response: httpx.Response) -> JobStatus:
        if response.status_code == 200:
            body = response.json()
            video = body.get("video") or (body.get("videos") or [None])[0]
            url = video.get("url") if isinstance(video, Mapping) else None
            if not url:
                return JobStatus("failed", "COMPLETED", reason="result has no video.url", retriable=True)
            return JobStatus("succeeded", "COMPLETED", output_url=url)
        verdict = self.classify_http_error(response, during="result")
        return JobStatus(verdict.phase, f"COMPLETED/HTTP {response.status_code}", reason=verdict.reason,
                         code=verdict.code, retriable=verdict.retriable)

    def classify_http_error(self, response: httpx.Response, *, during: str) -> ErrorVerdict:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, Mapping) else None
        if isinstance(detail, list):
            types = [str(d.get("type")) for d in detail if isinstance(d, Mapping)]
            message = "; ".join(str(d.get("msg")) for d in detail if isinstance(d, Mapping))
            code = types[0] if types else None
            if REFUSAL_TYPES.intersection(types):
                return ErrorVerdict("refused", message or "content policy violation", code=code)
            retryable = response.headers.get(RETRYABLE_HEADER, "").lower() == "true"
            return ErrorVerdict("failed", f"HTTP {response.status_code} during {during}: {message}",
                                retriable=retryable, code=code)
        return super().classify_http_error(response, during=during)


PIKA_VERSION = "v2.2"
PIKA_DURATIONS = (5.0, 10.0)
PIKA_RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4", "3:2", "2:3")
PIKA_SHORT_SIDES = {720: "720p", 1080: "1080p"}


PIKA_RESOLUTIONS = ratio_resolutions(PIKA_RATIOS, tuple(PIKA_SHORT_SIDES))
"""Pika's sizes: 720p or 1080p in each offered ratio (image-to-video follows the image's ratio; the size is sent)."""


class PikaBackend(FalQueueBackend):
    """Pika 2.2 on fal: text-to-video, image-to-video (first frame), pikaframes (first/last keyframes).

    Options: negative_prompt (optional; fal's default applies when unset), plus the common remote options.
    """

    name = "pika"

    def __init__(self, *, negative_prompt: str | None = None, **options: Any) -> None:
        self.negative_prompt = negative_prompt
        base = f"fal-ai/pika/{PIKA_VERSION}"
        super().__init__(endpoint=f"{base}/text-to-video", image_endpoint=f"{base}/image-to-video",
                         keyframes_endpoint=f"{base}/pikaframes", durations=list(PIKA_DURATIONS), **options)

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint(f"pika-{PIKA_VERSION}", negative_prompt=self.negative_prompt)

    def mode_limits(self) -> ModeCapabilities:
        return ModeCapabilities(durations_s=PIKA_DURATIONS, max_duration_s=max(PIKA_DURATIONS),
                                resolutions=PIKA_RESOLUTIONS, default_duration_s=PIKA_DURATIONS[0],
                                default_resolution=PIKA_RESOLUTIONS[0])

    def check_request(self, request: GenerationRequest) -> str | None:
        w, h = request.resolution
        if min(w, h) not in PIKA_SHORT_SIDES or aspect_ratio(w, h) not in PIKA_RATIOS:
            return (f"resolution {w}x{h} not offered by Pika (short side 720 or 1080, ratio one of "
                    f"{', '.join(PIKA_RATIOS)})")
        return None

    def build_arguments(self, request: GenerationRequest) -> dict[str, Any]:
        w, h = request.resolution
        args: dict[str, Any] = {"prompt": request.prompt, "seed": request.seed,
                                "resolution": PIKA_SHORT_SIDES[min(w, h)], "duration": int(request.duration_s)}
        if self.negative_prompt is not None:
            args["negative_prompt"] = self.negative_prompt
        if request.mode == "t2v":
            args["aspect_ratio"] = aspect_ratio(w, h)
        elif request.mode == "keyframes":
            args["image_urls"] = first_and_last(request)
        else:
            args["image_url"] = image_data_uri(single_image(request))
        return args
