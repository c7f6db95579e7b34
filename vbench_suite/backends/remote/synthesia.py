"""Synthesia API v2 (self-described unsupported beta): talking-head videos from a script and an avatar.

Create `POST /v2/videos` with `Authorization: <key>` (no scheme) -> the video object {"id", "status"};
poll `GET /v2/videos/{id}`: in_progress / complete (with a time-limited `download` URL and `duration`
"H:MM:SS.ffffff") / error / rejected (moderation). 429 answers carry `RateLimit-Reset` (seconds).
"""
from __future__ import annotations

from typing import Any, Mapping

from vbench_suite.backends.remote.base import HttpCall, JobPhase, JobStatus, aspect_ratio
from vbench_suite.backends.remote.talking_head import TalkingHeadBackend
from vbench_suite.types import Fingerprint, GenerationRequest

STATUS_PHASE: dict[str, JobPhase] = {"in_progress": "running", "complete": "succeeded", "error": "failed",
                                "rejected": "refused", "deleted": "failed"}
"""Synthesia status -> harness phase (Synthesia reports no separate queue state)."""
RATIOS = ("16:9", "9:16", "1:1", "4:5", "5:4")
"""Slow speaking rate used for the pre-submit upper estimate of a script's duration."""
DEFAULT_AVATAR = "anna_costume1_cameraA"
DEFAULT_BACKGROUND = "off_white"


def parse_duration(text: str | None) -> float | None:
    """'0:00:59.000000' -> 59.0 (None when absent or unparsable)."""
    if not text:
        return None
    try:
        h, m, s = str(text).split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


class SynthesiaBackend(TalkingHeadBackend):
    """Synthesia avatar videos. The request's prompt is the script.

    Options: avatar, background, test (True renders free with a watermark), plus the common remote options.
    """

    aspect_ratios = RATIOS

    name = "synthesia"
    vendor = "synthesia"
    api_key_env = "SYNTHESIA_API_KEY"
    default_base_url = "https://api.synthesia.io"
    api_version = "v2"
    dashboard_hint = ("the video library in Synthesia's web app (API videos are titled 'vbench <prompt id>') "
                      "and the account's credit usage")
    default_max_concurrency = 2

    def __init__(self, *, avatar: str = DEFAULT_AVATAR, background: str = DEFAULT_BACKGROUND, test: bool = False,
                 **options: Any) -> None:
        self.avatar, self.background, self.test = avatar, background, bool(test)
        super().__init__(**options)

    def model_id(self, request: GenerationRequest | None = None) -> str:
        return "avatar"

    def fingerprint(self) -> Fingerprint:
        return self._fingerprint(f"avatar:{self.avatar}", background=self.background, test=self.test)

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": key}

    def build_create(self, request: GenerationRequest) -> HttpCall:
        body = {"test": self.test, "title": f"vbench {request.prompt_id}", "visibility": "private",
                "aspectRatio": aspect_ratio(*request.resolution),
                "input": [{"scriptText": request.prompt, "avatar": self.avatar, "background": self.background}]}
        return HttpCall("POST", "/v2/videos", json=body)

    def parse_create(self, body: Any) -> dict[str, Any]:
        return {"job_id": str(body["id"])}

    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        return HttpCall("GET", f"/v2/videos/{job['job_id']}")

    def parse_poll(self, body: Any) -> JobStatus:
        status = str(body["status"])
        if status not in STATUS_PHASE:
            raise ValueError(f"unknown Synthesia video status '{status}'")
        phase = STATUS_PHASE[status]
        times = (("created_at", body.get("createdAt")), ("last_updated_at", body.get("lastUpdatedAt")))
        if phase == "succeeded":
            return JobStatus("succeeded", status, output_url=body.get("download"),
                             video_seconds=parse_duration(body.get("duration")), vendor_times=times)
        if phase == "refused":
            return JobStatus("refused", status, reason=str(body.get("error") or "video rejected by moderation"),
                             code="rejected", vendor_times=times)
        if phase == "failed":
            return JobStatus("failed", status, reason=str(body.get("error") or f"video {status}"), code=status,
                             retriable=False, vendor_times=times)
        return JobStatus("running", status, vendor_times=times)
