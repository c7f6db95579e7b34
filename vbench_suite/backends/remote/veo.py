"""Google Veo through the Gemini API's long-running operations.

Create `POST /v1beta/models/{model}:predictLongRunning` with `x-goog-api-key` and
{"instances": [{"prompt", "image"?, "lastFrame"?}], "parameters": {...}} -> {"name": "models/.../operations/x"};
poll `GET /v1beta/{name}` until `done: true`, then either `error: {code, message}` or
`response.generateVideoResponse` with `generatedSamples[].video.uri` (downloaded with the same key header: it
is on the API's host) or `raiMediaFilteredCount > 0` with `raiMediaFilteredReasons` (moderation).
The Gemini API accepts no seed: the request's seed is not sent (results are not seed-reproducible).
google-genai 3.6 no longer offers `generate_videos` on an API key (Vertex only) and polls under `v1`; whether the
REST create still exists on the Gemini API is UNVERIFIED here (`api_version` option: 'v1beta' or 'v1').
"""
from __future__ import annotations

import base64
import dataclasses
import mimetypes
from pathlib import Path
from typing import Any, Mapping

from vbench_suite.backends.remote.base import MAX_INLINE_IMAGE_BYTES, HttpCall, JobStatus, RemoteBackend, single_image
from vbench_suite.errors import ConfigError
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, ModeCapabilities

API_VERSION = "v1beta"
"""Default REST version (the documented one); google-genai >= 3.6 itself talks to 'v1'."""
API_VERSIONS = ("v1beta", "v1")
MODELS = ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview", "veo-3.1-lite-generate-preview",
          "veo-3.0-generate-001", "veo-3.0-fast-generate-001")
DURATIONS = (4.0, 6.0, 8.0)
HD = ((1280, 720), (720, 1280))
FULL_HD = ((1920, 1080), (1080, 1920))
UHD = ((3840, 2160), (2160, 3840))
"""Veo sends `aspectRatio` 16:9 / 9:16 and `resolution` 720p / 1080p / 4k; 4k only on the 3.1 models."""
LONG_ONLY_DURATION_S = 8.0
"""1080p and 4k need 8 s (the adapter enforces it; UNVERIFIED upstream)."""
DEFAULT_DURATION_S = 8.0
"""The Gemini API's own default `durationSeconds` for Veo 3.x (UNVERIFIED; 8 s is the only length every size takes)."""


def model_capabilities(model: str) -> Capabilities:
    """Every mode shares the size and duration limits; the 3.0 models stop at 1080p. Image modes send one
    `image`; keyframes send the first frame as `image` and the last, if any, as `lastFrame` (the API takes
    `lastFrame` only together with `image`)."""
    large = FULL_HD + (UHD if model.startswith("veo-3.1") else ())
    limits = ModeCapabilities(durations_s=DURATIONS, max_duration_s=max(DURATIONS), resolutions=HD + large,
                              durations_by_resolution=tuple((r, (LONG_ONLY_DURATION_S,)) for r in large),
                              default_duration_s=DEFAULT_DURATION_S, default_resolution=HD[0], keyframes="first")
    with_image = dataclasses.replace(limits, min_images=1, max_images=1)
    return Capabilities.of({"t2v": limits, "i2v": with_image, "hybrid": with_image, "keyframes": limits})
RETRIABLE_RPC_CODES: frozenset[int] = frozenset({4, 8, 10, 13, 14, 429, 500, 503, 504})
"""Operation error codes (gRPC or HTTP style) where trying again may succeed."""


def _inline_image(path: str) -> dict[str, str]:
    data = Path(path).read_bytes()
    if len(data) > MAX_INLINE_IMAGE_BYTES:
        raise ValueError(f"image {Path(path).name} is larger than {MAX_INLINE_IMAGE_BYTES} bytes")
    return {"bytesBase64Encoded": base64.b64encode(data).decode("ascii"),
            "mimeType": mimetypes.guess_type(path)[0] or "image/png"}


class VeoBackend(RemoteBackend):
    """Veo 3.x on the Gemini API: text-to-video, image-to-video, first+last frame keyframes.

    Options: model ('veo-3.1-fast-generate-preview'), negative_prompt, person_generation ('allow_adult' |
    'dont_allow'), plus the common remote options.
    """

    name = "veo"
    vendor = "veo"
    api_key_env = "GEMINI_API_KEY"
    default_base_url = "https://generativelanguage.googleapis.com"
    api_version = API_VERSION
    dashboard_hint = ("the Gemini API usage and billing of the key's Google project (AI Studio or Cloud "
                      "console) around the request's time (the API cannot find an operation without its name)")
    default_max_concurrency = 2

    def __init__(self, *, model: str = "veo-3.1-fast-generate-preview", negative_prompt: str | None = None,
                 person_generation: str | None = None, api_version: str = API_VERSION, **options: Any) -> None:
        if model not in MODELS:
            raise ConfigError(f"backend 'veo': model '{model}' is not supported; choose one of {', '.join(MODELS)}")
        if person_generation not in (None, "allow_adult", "dont_allow"):
            raise ConfigError("backend 'veo': person_generation must be 'allow_adult' or 'dont_allow'")
        if api_version not in API_VERSIONS:
            raise ConfigError(f"backend 'veo': api_version must be one of {', '.join(API_VERSIONS)}")
        self.model, self.negative_prompt, self.person_generation = model, negative_prompt, person_generation
        self.api_version = api_version
        super().__init__(**options)

    def model_id(self, request: GenerationRequest | None = None) -> str:
        return self.model

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint(self.model, negative_prompt=self.negative_prompt,
                                 person_generation=self.person_generation, seed_supported=False)

    def capabilities(self) -> Capabilities:
        return model_capabilities(self.model)

    def check_request(self, request: GenerationRequest) -> str | None:
        if min(request.resolution) > 720 and request.duration_s != LONG_ONLY_DURATION_S:
            return "1080p and 4k need 8 s"
        return None

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def build_create(self, request: GenerationRequest) -> HttpCall:
        w, h = request.resolution
        instance: dict[str, Any] = {"prompt": request.prompt}
        if request.mode in ("i2v", "hybrid"):
            instance["image"] = _inline_image(single_image(request))
        elif request.mode == "keyframes":
            if not request.first_frame:
                raise ValueError("Veo keyframes need a first frame (`lastFrame` is only accepted with `image`)")
            instance["image"] = _inline_image(request.first_frame)
            if request.last_frame:
                instance["lastFrame"] = _inline_image(request.last_frame)
        parameters: dict[str, Any] = {"aspectRatio": "16:9" if w >= h else "9:16",
                                      "resolution": self.resolution_label(request),
                                      "durationSeconds": int(request.duration_s), "sampleCount": 1}
        if self.negative_prompt:
            parameters["negativePrompt"] = self.negative_prompt
        if self.person_generation:
            parameters["personGeneration"] = self.person_generation
        return HttpCall("POST", f"/{self.api_version}/models/{self.model}:predictLongRunning",
                        json={"instances": [instance], "parameters": parameters})

    def parse_create(self, body: Any) -> dict[str, Any]:
        return {"job_id": str(body["name"])}

    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/{self.api_version}/{job['job_id']}")

    def parse_poll(self, body: Any) -> JobStatus:
        if not body.get("done"):
            meta = body.get("metadata") or {}
            return JobStatus("running", "running", progress=meta.get("progressPercent"))
        if body.get("error"):
            err = body["error"]
            code = err.get("code")
            return JobStatus("failed", "done/error", reason=f"{err.get('message') or 'operation failed'} "
                             f"(code {code}, {err.get('status') or ''})".replace(", )", ")"),
                             code=str(code), retriable=code in RETRIABLE_RPC_CODES)
        response = (body.get("response") or {}).get("generateVideoResponse") or {}
        samples = response.get("generatedSamples") or []
        if samples:
            return JobStatus("succeeded", "done", output_url=samples[0]["video"]["uri"])
        if response.get("raiMediaFilteredCount"):
            reasons = response.get("raiMediaFilteredReasons") or ["filtered by responsible-AI checks"]
            return JobStatus("refused", "done/filtered", reason="; ".join(map(str, reasons)), code="rai_filtered")
        return JobStatus("failed", "done/empty", reason="operation finished without a video", retriable=True)
