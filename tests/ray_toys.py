"""Backends and metrics for the Ray engine's fault tests: real work, plus a way to kill the process doing it.

They run inside Ray actors, which do not see a test's monkeypatched environment: what they need comes as backend
options, or from environment variables the Ray fixture sets before the cluster starts (`CRASH_DIR_ENV`).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from toy_backends import ToyBackend

from vbench_suite.backends.base import GenerationContext
from vbench_suite.metrics.lpips import LPIPSTemporal
from vbench_suite.types import GenerationRequest, GenerationResult

CRASH_DIR_ENV = "VBENCH_TEST_CRASH_DIR"
"""Folder where `CrashOnceTemporal` keeps its once-only marker files (set by the Ray test fixture)."""


def _crash_once(marker: Path) -> None:
    """Exit this process at once, without cleanup (like an OOM kill), the first time only."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    os._exit(1)


class RayToy(ToyBackend):
    """The toy, logging each attempt as 'prompt_id pid' to `calls_file`, and killing its own process the first time
    it is given `crash_prompt` (the once-only marker is `crash_marker`)."""

    name = "ray-toy"

    def __init__(self, calls_file: str = "", crash_marker: str = "", crash_prompt: str = "", **options: Any) -> None:
        super().__init__(**options)
        self.calls_file, self.crash_marker, self.crash_prompt = calls_file, crash_marker, crash_prompt

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        if self.calls_file:
            with open(self.calls_file, "a", encoding="utf-8") as f:
                f.write(f"{request.prompt_id} {os.getpid()}\n")
        if self.crash_prompt and request.prompt_id == self.crash_prompt and self.crash_marker:
            _crash_once(Path(self.crash_marker))
        return super().generate(request, ctx)


class CrashOnceTemporal(LPIPSTemporal):
    """`lpips_temporal` under the name 'crashy_temporal', except that the process scoring prompt 'p1' the first
    time dies on it."""

    info = dataclasses.replace(LPIPSTemporal.info, name="crashy_temporal")

    def _score(self, items: Any, ctx: Any) -> Any:
        crash_dir = os.environ.get(CRASH_DIR_ENV)
        if crash_dir and any(it.prompt_id == "p1" for it in items):
            _crash_once(Path(crash_dir) / "scoring-p1")
        return super()._score(items, ctx)
