"""HeyGen API v3: avatar videos.

Create `POST /v3/videos` with `x-api-key` (body discriminated on `type`) -> {"data": {"video_id"}};
poll `GET /v3/videos/{id}` -> {"data": {"status": pending | processing | completed | failed, "video_url",
"duration", "created_at", "completed_at", "failure_code", "failure_message"}}. Errors:
{"error": {"code", "message"}}; over 10 concurrent jobs -> 429 with Retry-After.
"""
from __future__ import annotations

from typing import Any, Mapping

from vbench_suite.backends.remote.base import HttpCall, JobPhase, JobStatus, aspect_ratio
from vbench_suite.backends.remote.talking_head import TalkingHeadBackend
from vbench_suite.errors import ConfigError
from vbench_suite.types import Fingerprint, GenerationRequest

STATUS_PHASE: dict[str, JobPhase] = {"pending": "queued", "waiting": "queued", "processing": "running",
                                "completed": "succeeded", "failed": "failed"}
"""HeyGen status -> harness phase."""
REFUSAL_MARKERS = ("moderation", "policy", "inappropriate", "nsfw", "violat")
"""Substrings of a failure code/message that mean moderation (HeyGen's codes are not documented)."""
RATIOS = ("16:9", "9:16", "4:5", "5:4", "1:1")
ENGINES = ("avatar_iv", "avatar_v", "avatar_iii")
DEFAULT_AVATAR = "Angela-inblackskirt-20220820"
DEFAULT_VOICE = "1bd001e7e50f421d891986aad5158bc8"


class HeyGenBackend(TalkingHeadBackend):
    """HeyGen v3 avatar videos; the request's prompt is the script.

    Options: avatar_id, voice_id, engine ('avatar_iv' | 'avatar_v' | 'avatar_iii'), background_color, plus the
    common remote options.
    """

    aspect_ratios = RATIOS
    short_sides = (720, 1080, 2160)

    name = "heygen"
    vendor = "heygen"
    api_key_env = "HEYGEN_API_KEY"
    default_base_url = "https://api.heygen.com"
    api_version = "v3"
    dashboard_hint = ("the video list in HeyGen's web app (API videos are titled 'vbench <prompt id>') and the "
                      "API wallet's balance (GET /v3/users/me)")
    default_max_concurrency = 10

    def __init__(self, *, avatar_id: str = DEFAULT_AVATAR, voice_id: str = DEFAULT_VOICE,
                 engine: str = "avatar_iv", background_color: str | None = None, **options: Any) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"backend 'heygen': engine must be one of {', '.join(ENGINES)}, got '{engine}'")
        self.avatar_id, self.voice_id, self.engine, self.background_color = avatar_id, voice_id, engine, \
            background_color
        super().__init__(**options)

    def model_id(self, request: GenerationRequest | None = None) -> str:
        return self.engine

    def resolution_label(self, request: GenerationRequest) -> str:
        short = min(request.resolution)
        return "4k" if short >= 2160 else "1080p" if short >= 1080 else "720p"

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint(self.engine, avatar_id=self.avatar_id, voice_id=self.voice_id,
                                 background_color=self.background_color)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-api-key": key}

    def build_create(self, request: GenerationRequest) -> HttpCall:
        body: dict[str, Any] = {"type": "avatar", "avatar_id": self.avatar_id, "script": request.prompt,
                                "voice_id": self.voice_id, "resolution": self.resolution_label(request),
                                "aspect_ratio": aspect_ratio(*request.resolution), "engine": {"type": self.engine},
                                "title": f"vbench {request.prompt_id}", "output_format": "mp4"}
        if self.background_color:
            body["background"] = {"type": "color", "value": self.background_color}
        return HttpCall("POST", "/v3/videos", json=body)

    def parse_create(self, body: Any) -> dict[str, Any]:
        return {"job_id": str(body["data"]["video_id"])}

    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/v3/videos/{job['job_id']}")

    def parse_poll(self, body: Any) -> JobStatus:
        data = body["data"]
        status = str(data["status"])
        if status not in STATUS_PHASE:
            raise ValueError(f"unknown HeyGen video status '{status}'")
        phase = STATUS_PHASE[status]
        times = (("created_at", data.get("created_at")), ("completed_at", data.get("completed_at")))
        if phase == "succeeded":
            duration = data.get("duration")
            return JobStatus("succeeded", status, output_url=data.get("video_url"),
                             video_seconds=float(duration) if duration else None, vendor_times=times)
        if phase == "failed":
            code = data.get("failure_code") or ""
            message = data.get("failure_message") or "video failed"
            reason = f"{message}" + (f" ({code})" if code else "")
            if any(m in f"{code} {message}".lower() for m in REFUSAL_MARKERS):
                return JobStatus("refused", status, reason=reason, code=code or None, vendor_times=times)
            return JobStatus("failed", status, reason=reason, code=code or None, retriable=False,
                             vendor_times=times)
        return JobStatus(phase, status, vendor_times=times)
