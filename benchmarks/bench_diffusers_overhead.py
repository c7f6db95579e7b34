"""Harness overhead of the `diffusers` backend per generation, against calling the same pipeline directly.

One tiny random-weight pipeline (from tests/tiny_diffusers.py, saved with `save_pretrained` and loaded from disk) is
run two ways in the same process, alternating, after one warm-up call each:

- direct: the pipeline object the backend loaded (`DiffusionPipeline.from_pretrained(folder)`), called as the backend
  calls it (the same prompt, size, frames, steps, guidance and a seeded CPU generator, `output_type="np"`), frames
  to uint8, the same mp4 writer;
- harness: `DiffusersBackend.generate(request, ctx)`: request checks, argument translation, stage hooks and the
  step callback, CPU-time metering, the result record and the video's sha256.

Printed: medians of both (wall and CPU seconds), the harness's fixed cost (its generate() wall time minus the
pipeline call and the file write it timed itself: what the harness adds around the pipeline) as milliseconds and as
a share of the pipeline time, and the A/B ratios of the medians (these also include what the hooks and the step
callback cost inside the call, but carry the machine's noise: CPU seconds much less than wall time on a shared
machine). The order alternates each round, and both ways must produce the same frames (checked).

    .venv/bin/python benchmarks/bench_diffusers_overhead.py [--model wan_t2v] [--scale 2] [--size 48] [--frames 17]
        [--steps 4] [--reps 8] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny pipeline builders


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="wan_t2v", help="tiny pipeline (tests/tiny_diffusers.BUILDERS)")
    parser.add_argument("--scale", type=int, default=2, help="denoiser width/depth multiplier")
    parser.add_argument("--size", type=int, default=48, help="width = height in pixels")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--reps", type=int, default=8, help="timed calls per way (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch
    from diffusers.utils import logging as dlog

    import tiny_diffusers

    torch.set_num_threads(args.threads)
    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="bench-diffusers-") as tmp:
        return measure(args, Path(tmp), tiny_diffusers.save_tiny(args.model, Path(tmp) / args.model,
                                                                  scale=args.scale))


def measure(args: argparse.Namespace, work: Path, folder: Path) -> int:
    """Run both ways on the saved pipeline in `folder`, writing videos under `work`; print the comparison."""
    import numpy as np
    import torch

    from vbench_suite.backends.base import GenerationContext
    from vbench_suite.backends.compute import CpuMeter
    from vbench_suite.backends.diffusers.backend import DiffusersBackend, to_uint8
    from vbench_suite.types import GenerationRequest
    from vbench_suite.video.write import write_video

    backend = DiffusersBackend(model=str(folder), steps=args.steps, device="cpu", threads=args.threads)
    caps = backend.capabilities()
    fps = caps.for_mode("t2v").default_fps or 8  # type: ignore[union-attr]
    request, _ = caps.fit(GenerationRequest(prompt_id="bench", prompt="a red fox runs through snow", seed=7,
                                            resolution=(args.size, args.size), fps=fps,
                                            duration_s=args.frames / fps))
    assert backend.not_configured_reason() is None
    plan = backend.plan.plan("t2v")
    # the very pipeline object the backend loaded: the two ways differ only by the harness
    pipe = backend._load()
    params = {"height": args.size, "width": args.size, "num_frames": request.num_frames,
              "num_inference_steps": args.steps, "guidance_scale": plan.guidance, "output_type": "np"}

    def direct(out: Path) -> tuple[float, float, float, np.ndarray]:
        """(total wall s, pipeline wall s, total CPU s, frames) of the direct way."""
        meter = CpuMeter().start()
        t0 = time.perf_counter()
        with torch.inference_mode():
            frames = pipe(prompt=[request.prompt], generator=[torch.Generator("cpu").manual_seed(request.seed)],
                          **params).frames
        t1 = time.perf_counter()
        video = to_uint8(frames)[0]
        write_video(out, video, request.fps)
        return time.perf_counter() - t0, t1 - t0, meter.stop(), video

    def harness(out: Path) -> tuple[float, float, float, float]:
        """(generate() wall s, pipeline wall s as the harness timed it, file write s, total CPU s)."""
        meter = CpuMeter().start()
        t0 = time.perf_counter()
        result = backend.generate(request, GenerationContext(out_path=out))
        total = time.perf_counter() - t0
        cpu = meter.stop()
        assert result.status == "ok", result.error
        stages = dict(result.latency.stages)
        return total, sum(v for k, v in stages.items() if k != "writing"), stages["writing"], cpu

    # the same frames both ways (raw arrays, before any encoding)
    reference = direct(work / "ref.mp4")[3]
    check = backend.generate(request, GenerationContext(out_path=work / "check.npy"))
    identical = bool(np.array_equal(np.load(check.video_path), reference))
    harness(work / "warm.mp4")

    d_wall, d_pipe, d_cpu, h_wall, h_pipe, h_cpu, h_fixed = [], [], [], [], [], [], []
    for i in range(args.reps):
        for way in ("direct", "harness") if i % 2 == 0 else ("harness", "direct"):  # alternate who goes first
            if way == "direct":
                wall, pipe_s, cpu, _ = direct(work / f"d{i}.mp4")
                d_wall.append(wall)
                d_pipe.append(pipe_s)
                d_cpu.append(cpu)
            else:
                wall, pipe_s, write_s, cpu = harness(work / f"h{i}.mp4")
                h_wall.append(wall)
                h_pipe.append(pipe_s)
                h_cpu.append(cpu)
                h_fixed.append(wall - pipe_s - write_s)
    med = statistics.median
    n_params = sum(p.numel() for p in pipe.transformer.parameters())
    print(f"tiny {type(pipe).__name__} (--scale {args.scale}: denoiser {n_params / 1e6:.2f} M parameters), "
          f"{request.num_frames} frames of {args.size}x{args.size}, {args.steps} steps, CPU x{args.threads} thread(s), "
          f"{args.reps} alternating calls per way")
    print(f"same frames both ways: {identical}")
    print(f"direct:  median {med(d_wall):.4f} s wall per video (pipeline call {med(d_pipe):.4f} s), "
          f"{med(d_cpu):.4f} CPU-s")
    print(f"harness: median {med(h_wall):.4f} s wall per video (pipeline call as timed inside {med(h_pipe):.4f} s), "
          f"{med(h_cpu):.4f} CPU-s")
    fixed = med(h_fixed)
    print(f"harness fixed cost around the pipeline: median {fixed * 1e3:.2f} ms per video "
          f"(min {min(h_fixed) * 1e3:.2f}, max {max(h_fixed) * 1e3:.2f}) = {fixed / med(d_pipe):.2%} of the pipeline "
          "time (target <= 2%)")
    print(f"A/B ratio harness / direct, medians (includes the hooks and the step callback inside the call): "
          f"wall {med(h_wall) / med(d_wall):.4f}, CPU {med(h_cpu) / med(d_cpu):.4f}")
    backend.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
