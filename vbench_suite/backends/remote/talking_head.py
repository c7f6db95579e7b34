"""Shared shape of the script-to-presenter APIs (Synthesia, HeyGen): text-to-video only, length set by the script."""
from __future__ import annotations

from vbench_suite.backends.remote.base import RemoteBackend, aspect_ratio
from vbench_suite.types import Capabilities, GenerationRequest

WORDS_PER_SECOND = 2.0
"""Typical speaking rate; a script's spoken length bounds the video's length (for cost estimates)."""


class TalkingHeadBackend(RemoteBackend):
    """A presenter reads `request.prompt`. Subclasses set `aspect_ratios` and the vendor hooks."""

    aspect_ratios: tuple[str, ...] = ()
    """Aspect ratios the vendor renders, e.g. ('16:9', '9:16', '1:1')."""

    def capabilities(self) -> Capabilities:
        return Capabilities(modes=("t2v",), max_duration_s=600.0)

    def check_request(self, request: GenerationRequest) -> str | None:
        ratio = aspect_ratio(*request.resolution)
        if ratio in self.aspect_ratios:
            return None
        return f"aspect ratio {ratio} not offered (one of {', '.join(self.aspect_ratios)})"

    def estimate_seconds(self, request: GenerationRequest) -> float:
        return max(float(request.duration_s), len(request.prompt.split()) / WORDS_PER_SECOND)
