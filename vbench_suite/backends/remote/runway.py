"""Runway's developer API (https://api.dev.runwayml.com, version header 2024-11-06).

Create `POST /v1/text_to_video` or `/v1/image_to_video` -> {"id"}; poll `GET /v1/tasks/{id}`. Task statuses
PENDING / THROTTLED (over the org's concurrency: queued, not failed) / RUNNING / SUCCEEDED / FAILED / CANCELLED.
Failures carry `failure` and `failureCode`; `SAFETY.*` codes are moderation refusals. Output URLs expire after
24-48 h; polling the task again returns fresh ones. Running tasks carry `estimatedCost.credits`, terminal ones
`cost.credits` (what was charged; 0 when refunded): that figure is the result's cost when present.
"""
from __future__ import annotations

from typing import Any, Mapping

from vbench_suite.backends.remote.base import (ErrorVerdict, HttpCall, JobPhase, JobStatus, RemoteBackend, image_data_uri,
                                               single_image)
from vbench_suite.errors import ConfigError
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, ModeCapabilities

RUNWAY_VERSION = "2024-11-06"
CREDIT_USD = 0.01
"""One Runway credit in US dollars."""
GEN_DURATIONS = tuple(float(d) for d in range(2, 11))
"""gen4.5 / gen4_turbo: any whole number of seconds from 2 to 10."""
VEO_DURATIONS = (4.0, 6.0, 8.0)
T2V_RATIOS_GEN45 = ((1280, 720), (720, 1280))
"""gen4.5 text-to-video accepts only these two ratios (image-to-video accepts the six of `I2V_RATIOS_GEN`)."""
I2V_RATIOS_GEN = ((1280, 720), (720, 1280), (1104, 832), (960, 960), (832, 1104), (1584, 672))
VEO_RATIOS = ((1280, 720), (720, 1280), (1080, 1920), (1920, 1080))
DEFAULT_DURATION_S = 5.0
"""Runway requires a duration and has no default of its own; the adapter's choice (its documented example)."""


def _limits(durations: tuple[float, ...], ratios: tuple[tuple[int, int], ...], images: int = 0) -> ModeCapabilities:
    """One mode's limits; `images` is how many conditioning images the mode takes (exactly that many).
    Keyframes (veo3.1 models): `promptImage` positions 'first' and 'last', a last frame only with a first."""
    default = DEFAULT_DURATION_S if DEFAULT_DURATION_S in durations else max(durations)
    return ModeCapabilities(durations_s=durations, max_duration_s=max(durations), resolutions=ratios,
                            default_duration_s=default, default_resolution=ratios[0], keyframes="first",
                            min_images=images, max_images=images)


def _veo_modes() -> Capabilities:
    return Capabilities.of({"t2v": _limits(VEO_DURATIONS, VEO_RATIOS), "i2v": _limits(VEO_DURATIONS, VEO_RATIOS, 1),
                            "hybrid": _limits(VEO_DURATIONS, VEO_RATIOS, 1),
                            "keyframes": _limits(VEO_DURATIONS, VEO_RATIOS)})


MODELS: dict[str, Capabilities] = {
    # Per model and mode, from Runway's SDK types (see docs/vendors.md): the payload builder sends exactly these.
    "gen4.5": Capabilities.of({"t2v": _limits(GEN_DURATIONS, T2V_RATIOS_GEN45),
                               "i2v": _limits(GEN_DURATIONS, I2V_RATIOS_GEN, 1),
                               "hybrid": _limits(GEN_DURATIONS, I2V_RATIOS_GEN, 1)}),
    "gen4_turbo": Capabilities.of({"i2v": _limits(GEN_DURATIONS, I2V_RATIOS_GEN, 1),
                                   "hybrid": _limits(GEN_DURATIONS, I2V_RATIOS_GEN, 1)}),
    "veo3.1": _veo_modes(),
    "veo3.1_fast": _veo_modes(),
}
"""Capabilities of each model Runway serves through this adapter."""
STATUS_PHASE: dict[str, JobPhase] = {"PENDING": "queued", "THROTTLED": "queued", "RUNNING": "running",
                                "SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "failed"}
"""Runway task status -> harness phase (the terminal set is SUCCEEDED, FAILED, CANCELLED)."""
REFUSAL_CODE_PREFIXES = ("SAFETY.", "INPUT_PREPROCESSING.SAFETY")
"""failureCode prefixes that mean content moderation."""
RETRIABLE_CODE_PREFIXES = ("INTERNAL", "INPUT_PREPROCESSING.INTERNAL")
"""failureCode prefixes where trying again may succeed."""


def keyframe_images(request: GenerationRequest) -> list[dict[str, str]]:
    """`promptImage` for a keyframes request: the first frame, then the last one if given. ValueError without a
    first frame (Runway takes no last frame alone; capabilities declare `keyframes='first'`)."""
    if not request.first_frame:
        raise ValueError("Runway keyframes need a first frame (a last frame is only accepted with one)")
    images = [{"uri": image_data_uri(request.first_frame), "position": "first"}]
    if request.last_frame:
        images.append({"uri": image_data_uri(request.last_frame), "position": "last"})
    return images


class RunwayBackend(RemoteBackend):
    """Runway text/image-to-video (and first/last keyframes on the veo3.1 models).

    Options: model ('gen4.5'), content_moderation ('auto' | 'low' public-figure threshold, optional), plus the
    common remote options (see RemoteBackend).
    """

    name = "runway"
    vendor = "runway"
    api_key_env = "RUNWAYML_API_SECRET"
    default_base_url = "https://api.dev.runwayml.com"
    api_version = RUNWAY_VERSION
    dashboard_hint = ("the task list and credit usage in Runway's developer portal around the request's time "
                      "(the API cannot find a task without its id; GET /v1/organization shows the credit balance "
                      "and POST /v1/organization/usage the credits used per day)")
    default_max_concurrency = 2

    def __init__(self, *, model: str = "gen4.5", content_moderation: str | None = None, **options: Any) -> None:
        if model not in MODELS:
            raise ConfigError(f"backend 'runway': model '{model}' is not supported; choose one of "
                              f"{', '.join(MODELS)}")
        if content_moderation not in (None, "auto", "low"):
            raise ConfigError(f"backend 'runway': content_moderation must be 'auto' or 'low', got "
                              f"'{content_moderation}'")
        self.model = model
        self.content_moderation = content_moderation
        super().__init__(**options)

    def model_id(self, request: GenerationRequest | None = None) -> str:
        return self.model

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint(self.model, content_moderation=self.content_moderation)

    def capabilities(self) -> Capabilities:
        return MODELS[self.model]

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", "X-Runway-Version": RUNWAY_VERSION}

    def build_create(self, request: GenerationRequest) -> HttpCall:
        w, h = request.resolution
        body: dict[str, Any] = {"model": self.model, "promptText": request.prompt, "ratio": f"{w}:{h}",
                                "duration": int(request.duration_s), "seed": request.seed}
        if self.content_moderation:
            body["contentModeration"] = {"publicFigureThreshold": self.content_moderation}
        if request.mode == "t2v":
            return HttpCall("POST", "/v1/text_to_video", json=body)
        if request.mode == "keyframes":
            body["promptImage"] = keyframe_images(request)
        else:
            body["promptImage"] = image_data_uri(single_image(request))
        return HttpCall("POST", "/v1/image_to_video", json=body)

    def parse_create(self, body: Any) -> dict[str, Any]:
        return {"job_id": str(body["id"])}

    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/v1/tasks/{job['job_id']}")

    def parse_poll(self, body: Any) -> JobStatus:
        status = str(body["status"])
        if status not in STATUS_PHASE:
            raise ValueError(f"unknown Runway task status '{status}'")
        times = (("created_at", body.get("createdAt")),)
        phase = STATUS_PHASE[status]
        credits = (body.get("cost") or {}).get("credits")
        charged = None if credits is None else float(credits) * CREDIT_USD
        if phase == "succeeded":
            output = body.get("output") or []
            return JobStatus("succeeded", status, output_url=output[0] if output else None, vendor_times=times,
                             vendor_cost_usd=charged)
        if status == "FAILED":
            code = body.get("failureCode") or ""
            reason = f"{body.get('failure') or 'task failed'}" + (f" ({code})" if code else "")
            if code.startswith(REFUSAL_CODE_PREFIXES):
                return JobStatus("refused", status, reason=reason, code=code, vendor_times=times,
                                 vendor_cost_usd=charged)
            return JobStatus("failed", status, reason=reason, code=code or None,
                             retriable=code.startswith(RETRIABLE_CODE_PREFIXES), vendor_times=times,
                             vendor_cost_usd=charged)
        if status == "CANCELLED":
            return JobStatus("failed", status, reason="task was cancelled", code="CANCELLED", vendor_times=times)
        return JobStatus(phase, status, progress=body.get("progress"), vendor_times=times)

    def classify_http_error(self, response: Any, *, during: str) -> ErrorVerdict:
        verdict = super().classify_http_error(response, during=during)
        if response.status_code == 429 and during == "create":
            return ErrorVerdict("failed", f"{verdict.reason} (daily generation limit reached)", retriable=True)
        return verdict

    def billing(self, request: GenerationRequest, seconds: float, cost_usd: float) -> tuple[float, str]:
        return round(cost_usd / CREDIT_USD, 3), "credits"
