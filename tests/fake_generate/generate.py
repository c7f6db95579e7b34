"""Stand-in for a model's own generation script (the way Wan's or HunyuanVideo's `generate.py` is used), for the
`command` backend's tests: flags in, one H.264 video out, drawn from (seed, prompt) and starting on the given image.

Flags: --prompt TEXT --seed N --frames N --width W --height H --fps F [--image PATH] [--first PATH --last PATH]
(--out FILE | --out-dir DIR, where it names the file itself). Test knobs (environment): FAKE_GEN_BEHAVIOUR = ok | fail
| nothing | hang | garbage | straggler (exits 0 but leaves a child running in its process group); FAKE_GEN_RECORD =
a file to write {argv, env, cwd} to; FAKE_GEN_PIDFILE = where `hang` / `straggler` write their child's pid.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any


def frames_for(args: argparse.Namespace) -> Any:
    import numpy as np  # imported here, so that `hang` starts hanging at once, well inside a short timeout
    from PIL import Image

    rng = np.random.default_rng([args.seed, zlib.crc32(args.prompt.encode("utf-8"))])
    video = np.empty((args.frames, args.height, args.width, 3), dtype=np.uint8)
    video[:] = rng.integers(0, 256, size=3, dtype=np.uint8)
    for t in range(args.frames):
        video[t, :, : 1 + t * args.width // max(1, args.frames)] = rng.integers(0, 256, size=3, dtype=np.uint8)
    for index, path in ((0, args.image or args.first), (-1, args.last)):
        if path:
            with Image.open(path) as img:
                video[index] = np.asarray(img.convert("RGB").resize((args.width, args.height)), dtype=np.uint8)
    return video


def write(video: Any, path: Path, fps: int) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = video.shape[2], video.shape[1], "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast", "threads": "1"}
        for frame in video:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--image")
    parser.add_argument("--first")
    parser.add_argument("--last")
    parser.add_argument("--out")
    parser.add_argument("--out-dir")
    args = parser.parse_args()
    behaviour = os.environ.get("FAKE_GEN_BEHAVIOUR", "ok")
    if os.environ.get("FAKE_GEN_RECORD"):
        Path(os.environ["FAKE_GEN_RECORD"]).write_text(json.dumps({"argv": sys.argv, "env": dict(os.environ),
                                                                   "cwd": os.getcwd()}))
    if behaviour in ("hang", "straggler"):
        child = subprocess.Popen(["sleep", "300"])
        if os.environ.get("FAKE_GEN_PIDFILE"):
            Path(os.environ["FAKE_GEN_PIDFILE"]).write_text(str(child.pid))
        if behaviour == "hang":
            time.sleep(300)
    if behaviour == "fail":
        print(f"loading model...\nRuntimeError: stand-in failure for prompt {args.prompt!r}", file=sys.stderr)
        return 2
    if behaviour == "nothing":
        print("done (but saved nothing)")
        return 0
    out = Path(args.out) if args.out else Path(args.out_dir) / f"sample_seed{args.seed}.mp4"
    if behaviour == "garbage":
        out.write_bytes(b"\x00" * 100)
        return 0
    write(frames_for(args), out, args.fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
