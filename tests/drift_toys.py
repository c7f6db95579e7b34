"""A toy 'vendor' for drift tests, whose reproducibility and output can change behind an unchanged declared model.

Videos are shapes-world renders of the prompt (a grey gradient for prompts outside the grammar) plus Gaussian pixel
noise. What the vendor does is read from the environment at each request, the way a vendor changes its service
without telling anyone, while `fingerprint()` stays the same:

- `DRIFT_TOY_NOISE`: noise sigma in uint8 levels (default 4): the 'model'. Changing it is a silent model swap.
- `DRIFT_TOY_SHIFT`: brightness offset in uint8 levels (default 0): another kind of silent model swap, one that
  leaves the replay noise as it was.
- `DRIFT_TOY_REPLAY`: 'exact' (default: the seed fixes layout and noise: bit-exact), 'noise' (the seed fixes the
  layout, the noise is fresh each time: seed-faithful within noise), 'random' (layout and noise fresh each time:
  non-deterministic). 'Fresh' draws come from the generation key and `DRIFT_TOY_SALT`, so tests are reproducible.
- `DRIFT_TOY_CALLS`: a file that gets one line per request (to count replays and resumes).
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.keys import file_sha256
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, GenerationResult, Latency, ModeCapabilities
from vbench_suite.video.write import write_video

COST_USD = 0.01


class DriftToy(Backend):
    name = "drift-toy"
    remote = True          # a vendor: `--reuse local` never copies its results
    bills_usd = True
    max_concurrency = 2

    def fingerprint(self) -> Fingerprint:
        return Fingerprint(backend=self.name, model="toy-vendor-model", version="2026-11")

    def capabilities(self) -> Capabilities:
        return Capabilities.same(("t2v",), ModeCapabilities(max_duration_s=10.0))

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        return COST_USD

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        from vbench_suite.shapes.parse import parse_prompt
        from vbench_suite.shapes.render import render

        ctx = ctx or self.default_context(request)
        start = time.perf_counter()
        calls = os.environ.get("DRIFT_TOY_CALLS")
        if calls:
            with open(calls, "a", encoding="utf-8") as f:
                f.write(f"{request.prompt_id}:{request.seed}\n")
        mode = os.environ.get("DRIFT_TOY_REPLAY", "exact")
        sigma = float(os.environ.get("DRIFT_TOY_NOISE", "4"))
        # 'Fresh' randomness, reproducible for a test: drawn from the generation key (a replay has its own) and
        # DRIFT_TOY_SALT (set it per run to make runs differ).
        salt = os.environ.get("DRIFT_TOY_SALT", "")
        fresh = np.random.default_rng(int.from_bytes(hashlib.sha256(f"{salt}|{ctx.key}".encode()).digest()[:8], "big"))
        layout_seed = int(fresh.integers(0, 2**31)) if mode == "random" else request.seed
        noise_rng = np.random.default_rng(request.seed) if mode == "exact" else fresh
        w, h = request.resolution
        scene = parse_prompt(request.prompt)
        if scene is not None:
            video = render(scene, num_frames=request.num_frames, size=(w, h), seed=layout_seed)
        else:
            ramp = np.linspace(40, 200, w, dtype=np.float32)[None, None, :, None]
            video = np.broadcast_to(ramp, (request.num_frames, h, w, 3)).astype(np.uint8)
        shift = float(os.environ.get("DRIFT_TOY_SHIFT", "0"))
        noisy = video.astype(np.float32) + shift + noise_rng.standard_normal(video.shape, dtype=np.float32) * sigma
        write_video(ctx.out_path, noisy.round().clip(0, 255).astype(np.uint8), request.fps)
        elapsed = time.perf_counter() - start
        return GenerationResult(status="ok", fingerprint=self.fingerprint(), video_path=str(ctx.out_path),
                                latency=Latency(generating_s=elapsed, total_s=elapsed), cost_usd=COST_USD,
                                video_seconds=request.num_frames / request.fps, billed_units=1.0,
                                billing_unit="calls", video_sha256=file_sha256(ctx.out_path))


def write_shapes_suite(path: Path, n: int = 8, name: str = "drift-suite", size: int = 64, frames: int = 16) -> Path:
    """A suite of `n` shapes-world prompts (distinct colours, shapes and motions) at size x size, `frames` frames."""
    colours = ["red", "blue", "yellow", "green", "white", "cyan", "purple", "orange"]
    shapes = ["circle", "square", "diamond", "triangle"]
    motions = ["moves left", "moves up", "grows", "moves right", "stays still", "moves down", "shrinks"]
    backgrounds = ["black", "gray", "white"]
    lines = [f"name: {name}", 'version: "1.0"', "description: drift test suite", "defaults:",
             f"  duration_s: {frames / 8}", "  fps: 8", f"  resolution: [{size}, {size}]", "prompts:"]
    for i in range(n):
        bg = backgrounds[i % 3]
        colour = colours[i % 8] if colours[i % 8] != bg else colours[(i + 1) % 8]
        lines += [f"  - id: p{i}", f"    text: a {colour} {shapes[i % 4]} {motions[i % 7]} on a {bg} background",
                  f"    category: c{i % 3}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
