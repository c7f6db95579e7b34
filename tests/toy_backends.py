"""Small, real backends for runner tests: deterministic numpy videos, with knobs for cost, delay and failures.

Each generation appends a line to $TOY_CALLS_FILE (when set), so tests can count how often each request was
generated, across processes (the kill-and-resume test).
"""
from __future__ import annotations

from pathlib import Path

import os
import time

import numpy as np

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.keys import file_sha256
from vbench_suite.types import (Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency,
                                ModeCapabilities)
from vbench_suite.video.write import write_video


class ToyBackend(Backend):
    """Video = smooth noise pattern drawn from request.seed (so equal seeds give equal videos)."""

    name = "toy"

    def __init__(self, delay_s: float = 0.0, cost_usd: float = 0.0, fail_prompts: str = "",
                 max_concurrency: int = 2, batch_size: int = 1, modes: str = "t2v,i2v,hybrid,keyframes",
                 durations: str = "", resolutions: str = "", bills: bool = True, version: str = "1") -> None:
        self.delay_s = float(os.environ.get("TOY_DELAY_S", delay_s))
        self.cost_usd = cost_usd
        self.bills_usd = bills
        self.fail_prompts = set(filter(None, fail_prompts.split(",")))
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self.modes = tuple(modes.split(","))
        self.durations = tuple(float(d) for d in durations.split(",") if d)
        self.resolutions = tuple(tuple(int(v) for v in r.split("x")) for r in resolutions.split(",") if r)
        self.version = str(version)

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(backend=self.name, model="toy-noise", version=self.version)

    def capabilities(self) -> Capabilities:
        return Capabilities.same(self.modes, ModeCapabilities(max_duration_s=10.0, durations_s=self.durations,
                                                              resolutions=self.resolutions))  # type: ignore[arg-type]

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        return self.cost_usd

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        ctx = ctx or self.default_context(request)
        start = time.perf_counter()
        calls = os.environ.get("TOY_CALLS_FILE")
        if calls:
            with open(calls, "a", encoding="utf-8") as f:
                f.write(f"{request.prompt_id}:{request.seed}\n")
        if self.delay_s:
            time.sleep(self.delay_s)
        if request.prompt_id in self.fail_prompts:
            return GenerationResult(status="failed", fingerprint=self.fingerprint(), error="toy failure",
                                    retriable=False)
        rng = np.random.default_rng(request.seed)
        w, h = request.resolution
        base = rng.integers(0, 256, size=(1, h // 8, w // 8, 3)).astype(np.float32)
        frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
        shift = np.arange(request.num_frames, dtype=np.float32)[:, None, None, None] * 4.0
        video = np.clip((frames + shift) % 256, 0, 255).astype(np.uint8)
        write_video(ctx.out_path, video, request.fps)
        elapsed = time.perf_counter() - start
        return GenerationResult(status="ok", fingerprint=self.fingerprint(), video_path=str(ctx.out_path),
                                latency=Latency(generating_s=elapsed, total_s=elapsed), cost_usd=self.cost_usd,
                                video_seconds=request.num_frames / request.fps,
                                video_sha256=file_sha256(ctx.out_path))


class RemoteToyBackend(ToyBackend):
    """The toy as if a vendor's service made its videos (`remote`): the runner must not reuse them across runs."""

    name = "toy-remote"
    remote = True


def write_suite(path: Path, n: int = 2, resolution: str = "[32, 32]", duration: float = 1.0) -> Path:
    """A small suite of `n` shapes-grammar prompts (one category) for runner tests; returns `path`."""
    lines = ["name: toy-suite", "version: \"1\"", "description: runner tests", "defaults:",
             f"  duration_s: {duration}", "  fps: 8", f"  resolution: {resolution}", "prompts:"]
    for i in range(n):
        lines += [f"  - id: p{i}", f"    text: a red circle moves left number {i}", "    category: motion"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
