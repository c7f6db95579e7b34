"""Shared shape of the script-to-presenter APIs (Synthesia, HeyGen): text-to-video only, length set by the script."""
from __future__ import annotations

from vbench_suite.backends.remote.base import RemoteBackend, aspect_ratio, ratio_resolutions
from vbench_suite.types import Capabilities, GenerationRequest, ModeCapabilities

MAX_SCRIPT_SECONDS = 600.0
"""Longest video a script may ask for (HeyGen caps audio at 600 s)."""
WORDS_PER_SECOND = 2.0
"""Typical speaking rate; a script's spoken length bounds the video's length (for cost estimates)."""


class TalkingHeadBackend(RemoteBackend):
    """A presenter reads `request.prompt`. Subclasses set `aspect_ratios` and the vendor hooks."""

    aspect_ratios: tuple[str, ...] = ()
    """Aspect ratios the vendor renders, e.g. ('16:9', '9:16', '1:1')."""

    short_sides: tuple[int, ...] = (720, 1080)
    """Shorter sides of the sizes the vendor renders (the script sets the length; `duration_s` is not sent)."""

    def capabilities(self) -> Capabilities:
        sizes = ratio_resolutions(self.aspect_ratios, self.short_sides)
        return Capabilities.of({"t2v": ModeCapabilities(max_duration_s=MAX_SCRIPT_SECONDS, resolutions=sizes,
                                                        default_resolution=sizes[0])})

    def check_request(self, request: GenerationRequest) -> str | None:
        ratio = aspect_ratio(*request.resolution)
        if ratio in self.aspect_ratios:
            return None
        return f"aspect ratio {ratio} not offered (one of {', '.join(self.aspect_ratios)})"

    def estimate_seconds(self, request: GenerationRequest) -> float:
        return max(float(request.duration_s), len(request.prompt.split()) / WORDS_PER_SECOND)
