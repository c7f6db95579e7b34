"""Backend 'reference-shapes': renders shapes-world prompts exactly as asked.

It is the offline stand-in for real video: FVD uses its renders as the reference distribution, and every
adherence check should pass on its output. It does not look at conditioning images, so it declares text-to-video
only; prompts outside the shapes-world grammar fail (not retriable) instead of producing something unrelated.
"""
from __future__ import annotations

import time
from pathlib import Path

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.keys import file_sha256
from vbench_suite.shapes.parse import parse_prompt
from vbench_suite.shapes.render import MIN_SIZE, RENDERER_VERSION, render
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency

MAX_DURATION_S = 30.0
"""Longest clip this backend renders."""


class ReferenceShapesBackend(Backend):
    """Deterministic shapes-world renderer as a backend: same request (seed included), same video bytes."""

    name = "reference-shapes"
    max_concurrency = 1

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(backend=self.name, model="shapes-world", version=RENDERER_VERSION)

    def capabilities(self) -> Capabilities:
        return Capabilities(modes=("t2v",), max_duration_s=MAX_DURATION_S)

    def _failed(self, error: str, started: float) -> GenerationResult:
        total = time.perf_counter() - started
        return GenerationResult(status="failed", fingerprint=self.fingerprint(), error=error, retriable=False,
                                latency=Latency(total_s=total))

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        """Render `request.prompt` at `request.resolution` for `request.num_frames` frames into `ctx.out_path`."""
        from vbench_suite.video.write import write_video  # deferred: PyAV is only needed when writing

        started, cpu_started = time.perf_counter(), time.process_time()
        unsupported = self.capabilities().check(request)
        if unsupported:
            return self._failed(unsupported, started)
        width, height = request.resolution
        if width < MIN_SIZE or height < MIN_SIZE:
            return self._failed(f"resolution {width}x{height} is below the minimum {MIN_SIZE}x{MIN_SIZE}", started)
        spec = parse_prompt(request.prompt)
        if spec is None:
            return self._failed("prompt is not in the shapes world grammar (expected e.g. 'a red circle moves left "
                                "on a black background'); the reference-shapes backend renders only such prompts",
                                started)
        ctx = ctx or self.default_context(request)
        frames = render(spec, request.num_frames, (width, height), request.seed)  # (T, H, W, 3) uint8
        rendered = time.perf_counter()
        out = write_video(Path(ctx.out_path), frames, request.fps)
        finished = time.perf_counter()
        return GenerationResult(
            status="ok", fingerprint=self.fingerprint(), video_path=str(out),
            latency=Latency(generating_s=finished - started, total_s=finished - started,
                            stages=(("rendering", rendered - started), ("encoding", finished - rendered))),
            cost_usd=0.0, hardware_s=time.process_time() - cpu_started,
            video_seconds=frames.shape[0] / request.fps, video_sha256=file_sha256(out),
            info=(("num_frames", int(frames.shape[0])),))
