"""Backend 'reference-shapes': renders shapes-world prompts exactly as asked.

It is the offline stand-in for real video: FVD uses its renders as the reference distribution, and every
adherence check should pass on its output. It does not look at conditioning images, so it declares text-to-video
only; prompts outside the shapes-world grammar are unsupported (never rendered as something unrelated).
`hardware_s` is the CPU time of the rendering thread (rendering and single-threaded encoding both run in it), so
other work on a loaded machine does not inflate it; wall time stays in the latency.
"""
from __future__ import annotations

import time
from pathlib import Path

from vbench_suite.backends.base import Backend, GenerationContext, Resources
from vbench_suite.keys import file_sha256
from vbench_suite.types import (Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency,
                                ModeCapabilities)

MAX_DURATION_S = 30.0
"""Longest clip this backend renders."""
DEFAULT_RESOLUTION = (64, 64)
DEFAULT_FPS = 8
DEFAULT_DURATION_S = 2.0
GRAMMAR_HINT = ("prompt is not in the shapes world grammar (expected e.g. 'a red circle moves left on a black "
                "background'); the reference-shapes backend renders only such prompts")


class ReferenceShapesBackend(Backend):
    """Deterministic shapes-world renderer as a backend: same request (seed included), same video bytes."""

    name = "reference-shapes"
    max_concurrency = 1

    def resources(self) -> Resources:
        """A quarter of a core: small numpy renders, so it can share a machine with a model's instances."""
        return Resources(num_cpus=0.25)

    def fingerprint(self) -> Fingerprint:
        from vbench_suite.shapes.render import RENDERER_VERSION  # deferred: the shapes package imports SciPy

        return Fingerprint(backend=self.name, model="shapes-world", version=RENDERER_VERSION)

    def capabilities(self) -> Capabilities:
        return Capabilities.of({"t2v": ModeCapabilities(
            max_duration_s=MAX_DURATION_S, default_duration_s=DEFAULT_DURATION_S,
            default_resolution=DEFAULT_RESOLUTION, default_fps=DEFAULT_FPS)})

    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        """Outside the capabilities, smaller than the renderer's minimum, or not a shapes-world prompt."""
        from vbench_suite.shapes.parse import parse_prompt
        from vbench_suite.shapes.render import MIN_SIZE

        reason = self.capabilities().check(request)
        if reason:
            return reason
        width, height = request.resolution
        if width < MIN_SIZE or height < MIN_SIZE:
            return f"resolution {width}x{height} is below the minimum {MIN_SIZE}x{MIN_SIZE}"
        if parse_prompt(request.prompt) is None:
            return GRAMMAR_HINT
        return None

    def _unsupported(self, error: str, started: float) -> GenerationResult:
        total = time.perf_counter() - started
        return GenerationResult(status="failed", fingerprint=self.fingerprint(), error=f"unsupported request: {error}",
                                retriable=False, latency=Latency(total_s=total), info=(("unsupported", True),))

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        """Render `request.prompt` at `request.resolution` for `request.num_frames` frames into `ctx.out_path`."""
        from vbench_suite.shapes.parse import parse_prompt
        from vbench_suite.shapes.render import render
        from vbench_suite.video.write import write_video  # deferred: PyAV is only needed when writing

        started, cpu_started = time.perf_counter(), time.thread_time()
        unsupported = self.unsupported_reason(request)
        if unsupported:
            return self._unsupported(unsupported, started)
        width, height = request.resolution
        spec = parse_prompt(request.prompt)
        if spec is None:  # unreachable after unsupported_reason; kept so a None spec can never reach the renderer
            return self._unsupported(GRAMMAR_HINT, started)
        ctx = ctx or self.default_context(request)
        frames = render(spec, request.num_frames, (width, height), request.seed)  # (T, H, W, 3) uint8
        rendered = time.perf_counter()
        out = write_video(Path(ctx.out_path), frames, request.fps)
        finished = time.perf_counter()
        return GenerationResult(
            status="ok", fingerprint=self.fingerprint(), video_path=str(out),
            latency=Latency(generating_s=finished - started, total_s=finished - started,
                            stages=(("rendering", rendered - started), ("encoding", finished - rendered))),
            cost_usd=0.0, hardware_s=time.thread_time() - cpu_started,
            video_seconds=frames.shape[0] / request.fps, video_sha256=file_sha256(out),
            info=(("num_frames", int(frames.shape[0])),))
