"""The metric interface. Importing this module must not import torch (reports and the CLI use it)."""
from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbench_suite.types import ScoreRecord


@dataclass(frozen=True)
class MetricInfo:
    """Static description of a metric; copied into every ScoreRecord it produces."""

    name: str
    """Registered name, e.g. 'lpips_ref'."""
    display_name: str
    """Human name for tables, e.g. 'LPIPS vs reference (AlexNet)'."""
    higher_is_better: bool
    """Direction used by reports for sorting and highlighting."""
    unit: str = ""
    """Display unit ('' for unitless)."""
    scope: str = "video"
    """'video' (one value per video) or 'set' (one value per backend / category distribution)."""
    description: str = ""
    """One or two sentences: what it measures and which convention it follows."""


@dataclass(frozen=True)
class ScoringItem:
    """One video to score, with what metrics may need to know about it."""

    video_path: str
    """Path of the video (mp4/webm/mov/gif or .npy uint8 (T,H,W,3))."""
    key: str = ""
    """Generation cache key ('' for bring-your-own videos)."""
    backend: str = ""
    """Backend that made it ('' for bring-your-own videos)."""
    prompt_id: str = ""
    """Prompt id (or the file stem for bring-your-own videos)."""
    prompt: str = ""
    """Prompt text (CLIP score, shapes adherence)."""
    category: str = ""
    """Prompt category."""
    sample: int = 0
    """Sample index for this prompt."""
    reference_path: str | None = None
    """Paired reference video or image for reference-based metrics, if any."""
    simulated: bool = False
    """Video came from a fake vendor server."""


@dataclass
class ScoringContext:
    """Run-wide settings for scoring."""

    cache_dir: Path
    """Where feature/statistics caches live (user cache dir by default)."""
    device: str = "cpu"
    """Torch device string."""
    reference_videos: Sequence[str] = ()
    """Reference set for set-level metrics (FVD), if the suite or the user names one."""
    reference_id: str = ""
    """Human id of the reference set (e.g. 'shapes-world' or a folder path)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Metric options from config (e.g. {'clip': {'weights': '/path/to/file'}})."""


class Metric(abc.ABC):
    """A metric scores a batch of items and returns records (one per video, or per set for set-level metrics).

    Per-item failures (corrupt video, too short) are records with status 'error', never exceptions; a metric that
    cannot run at all returns records with status 'unavailable' and a reason saying what to install or download.
    """

    info: MetricInfo

    @abc.abstractmethod
    def score(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        """Score `items`; the returned records carry `self.info`'s direction and unit."""
