"""Harness overhead of the `command` backend: the same generation script run directly (subprocess.run, the baseline)
and through `CommandBackend.generate` (temporary folder, process group, environment filtering, decoding the whole
output to check it, sha256, atomic rename), interleaved in the same run, printed as a ratio and as seconds per video.

The script is the tests' stand-in (tests/fake_generate/generate.py), so the absolute overhead matters more than the
ratio: a real model's script runs for minutes, against which a fixed cost of this size vanishes.

    .venv/bin/python benchmarks/bench_command.py [--videos 8] [--frames 33] [--size 256]
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.command import CommandBackend
from vbench_suite.types import GenerationRequest

SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "fake_generate" / "generate.py"
ARGS = "--prompt={prompt} --seed {seed} --frames {frames} --width {width} --height {height} --fps {fps}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=33)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    backend = CommandBackend(template=f"{shlex.quote(sys.executable)} {SCRIPT} {ARGS} --out {{output}}", device="cpu")
    backend.fingerprint()  # hashing the script and the interpreter happens once per run, not per video
    direct, harness = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.videos):
            request = GenerationRequest(f"b{i}", f"bench {i}", seed=i, fps=8, duration_s=args.frames / 8,
                                        resolution=(args.size, args.size))
            argv = [sys.executable, str(SCRIPT), f"--prompt={request.prompt}", "--seed", str(i), "--frames",
                    str(args.frames), "--width", str(args.size), "--height", str(args.size), "--fps", "8", "--out",
                    str(Path(tmp) / f"direct{i}.mp4")]
            t0 = time.perf_counter()
            subprocess.run(argv, check=True)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = backend.generate(request, GenerationContext(out_path=Path(tmp) / f"harness{i}.mp4"))
            harness.append(time.perf_counter() - t0)
            assert result.status == "ok", result.error
    d, h = statistics.median(direct), statistics.median(harness)
    print(f"{args.videos} videos of {args.frames} frames at {args.size}x{args.size}: direct {d:.3f} s, through the "
          f"harness {h:.3f} s (median); overhead {h - d:+.3f} s per video, ratio {h / d:.3f}")


if __name__ == "__main__":
    main()
