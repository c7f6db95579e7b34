"""Peak memory of scoring one long full-HD video: it must be bounded by a few frames plus the model, not the length.

    python benchmarks/bench_memory.py [--frames 240] [--metrics lpips_temporal,fvd] [--code DIR] [--video PATH]

Builds an H.264 1920x1080 video of `--frames` frames (a moving square over a gradient, well under 1 MB; what matters is the decoded size, 1.5 GB for 240 frames;
kept at `--video` when given, and reused if it exists), then scores it with each metric in a fresh subprocess and
prints that process's peak resident memory (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) twice: after loading the
model (the floor no streaming can go under) and after scoring. `--code DIR` runs the subprocess against another
checkout of vbench_suite (e.g. `git worktree add /tmp/old <commit>`) to measure before and after a change.
Nothing is asserted; the numbers for the 240-frame file are in docs/metrics.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent

_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from vbench_suite.metrics import create_metric
from vbench_suite.metrics.base import ScoringContext, ScoringItem

name, video, cache = sys.argv[1], sys.argv[2], sys.argv[3]
def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # Linux: KiB
ctx = ScoringContext(cache_dir=Path(cache))
metric = create_metric(name, **({"bootstrap": 0, "fd_inf": False} if name == "fvd" else {}))
if hasattr(metric, "model"):
    metric.model(ctx)                                                        # LPIPS: load the weights first
elif hasattr(metric, "extractor"):
    metric.extractor(ctx)                                                    # FVD: the I3D
loaded = peak_mb()
t = time.perf_counter()
# FVD needs two videos per side to give a value; the same file twice keeps the memory question the same.
items = [ScoringItem(video_path=video, prompt_id=f"v{i}", backend="b") for i in range(1 if name != "fvd" else 2)]
ctx.reference_videos = [video, video] if name == "fvd" else ()
recs = metric.score(items, ctx)
print(json.dumps({"metric": name, "peak_after_model_mb": loaded, "peak_mb": peak_mb(),
                  "seconds": time.perf_counter() - t, "status": [r.status for r in recs],
                  "value": [r.value for r in recs], "reason": [r.reason for r in recs if r.reason][:1]}))
"""


def build_video(path: Path, frames: int, width: int = 1920, height: int = 1080, fps: int = 24) -> Path:
    """A smooth 1080p H.264 clip, encoded one frame at a time (the builder itself holds one frame)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([(xx * 255 // width), (yy * 255 // height), np.full_like(xx, 96)], -1).astype(np.uint8)
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps), options={"preset": "veryfast", "crf": "30"})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = background.copy()
            x, y = (40 + 7 * i) % (width - 200), (60 + 3 * i) % (height - 200)
            frame[y:y + 200, x:x + 200] = (250, 220, 30)
            for pkt in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def measure(metric: str, video: Path, code: Path, cache: Path, timeout_s: float | None) -> dict[str, object]:
    """Run `_CHILD` for one metric in a fresh interpreter with `code` first on the path; its JSON line.

    With `timeout_s`, a child still running then is stopped and the result is its peak so far (`VmHWM`, polled
    every half second): a lower bound, marked `stopped_after_s`.
    """
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    # Output goes to files, not pipes: a child writing more than a pipe holds would block while we only poll it.
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, metric, str(video), str(cache)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    start, hwm_mb = time.monotonic(), 0.0
    while proc.poll() is None:
        hwm_mb = max(hwm_mb, _vm_hwm_mb(proc.pid))
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            proc.kill()
            proc.wait()
            return {"metric": metric, "peak_mb": hwm_mb, "peak_after_model_mb": float("nan"),
                    "seconds": time.monotonic() - start, "status": ["stopped"], "value": [], "reason": [],
                    "stopped_after_s": round(time.monotonic() - start)}
        time.sleep(0.5)
    log.seek(0)
    out = log.read()
    if proc.returncode != 0:
        raise SystemExit(f"{metric}: the scoring process failed:\n{out[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _vm_hwm_mb(pid: int) -> float:
    """Peak resident set of a live process (Linux), 0.0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=240)
    ap.add_argument("--metrics", default="lpips_temporal")
    ap.add_argument("--code", type=Path, default=REPO, help="checkout whose vbench_suite is measured")
    ap.add_argument("--video", type=Path, default=None, help="where to keep the built video (reused if present)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="stop a scoring process after this many seconds and report its peak so far (a lower bound)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbench-mem-") as tmp:
        video = args.video or Path(tmp) / f"hd-{args.frames}.mp4"
        if not video.is_file():
            build_video(video, args.frames)
        print(f"video {video}: 1920x1080, {args.frames} frames, {video.stat().st_size / 1e6:.2f} MB; "
              f"decoded whole it is {args.frames * 1920 * 1080 * 3 / 1e9:.2f} GB of uint8 RGB")
        print(f"code: {args.code}")
        for metric in args.metrics.split(","):
            r = measure(metric, video, args.code, Path(tmp) / "cache", args.timeout)
            if "stopped_after_s" in r:
                print(f"{metric:<16} peak RSS >= {r['peak_mb'] / 1024:6.2f} GiB: stopped after "
                      f"{r['stopped_after_s']} s, still scoring (a lower bound)")
                continue
            print(f"{metric:<16} peak RSS {r['peak_mb'] / 1024:6.2f} GiB (model loaded: "
                  f"{r['peak_after_model_mb'] / 1024:.2f} GiB)  {r['seconds']:.0f} s  status {r['status']} "
                  f"value {r['value']} {r['reason'] or ''}")


if __name__ == "__main__":
    main()
