"""Detection and false-alarm rates of the drift tests on fake-vendor videos whose truth is known by construction.

    python benchmarks/bench_drift.py [--draws 10] [--swap-draws 5] [--comparisons 200] [--size 640x360]

What is measured: the two drift tests exactly as `report.drift` runs them (`drift.mmd.mmd_test`, `excess_test`), on
I3D features (`drift.features`) and LPIPS distances (`drift.distance`) of videos made by the fake vendors' own
renderer (`fake_vendors.media`: the shapes-world render of each canary prompt, or its fallback picture, with the
scenario's corruption for Runway's `gen4.5`, H.264-encoded as the fake serves it), for the 12 canary prompts.
Scenarios: tests/scenarios/drift_base.yaml (before), drift_swap.yaml (the model behind the same name swapped), and a
milder inline swap (noise 2 -> 4, nothing else).

What is resampled (honestly): the fake is deterministic per request, so a vendor's randomness is emulated by drawing
new seeds. For each prompt and scenario a pool of videos is rendered once; each comparison then draws, per prompt,
one video per side at random from the pools (two different draws for a null comparison). Comparisons share videos,
so they are not independent: the test's exactness (a permutation test) is what bounds its size; the rates here check
it and measure power.

- `I3D MMD` (every backend): non-deterministic vendor: every draw has a new layout seed and new noise.
- `same-seed LPIPS` (seed-faithful vendors): every draw keeps the request's layout and gets new noise; the probe's
  floor is 6 replay pairs (the 3 prompts `canary` probes, in each run), the between-run values one pair per prompt.
Rates are of single tests at alpha (no Holm: in a canary comparison each is one of about 8 rows). A bit-exact vendor
(the fake as it serves) gives p = 1 under the null and the smallest p under any pixel change; the end-to-end tests
(tests/test_drift_fakes.py) cover that path through the HTTP fake and the `canary` command.
Video files, features and distances are cached under $VBENCH_CACHE_DIR/bench_drift/, so a rerun only resamples.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "tests" / "scenarios"
FPS, FRAMES = 24, 48
"""2 s at the fake's 24 fps: what a canary request to Runway gets."""


def _int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def video(spec_args: dict, cache: Path) -> Path:
    """Render + encode one fake video (cached by its spec)."""
    from vbench_suite.fake_vendors import media

    spec = media.VideoSpec(**spec_args)
    path = cache / "videos" / f"{hashlib.sha256(repr(spec).encode()).hexdigest()[:24]}.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(media.encode(media.corrupted_frames(spec), spec.width, spec.height, spec.fps))
        tmp.replace(path)
    return path


def pool(quality, prompts, draws: int, same_layout: bool, size: tuple[int, int], cache: Path, tag: str) -> dict:
    """{(prompt id, draw): video path}. Layout seed per draw (or fixed), noise seed per draw; fallback prompts keep
    the fake's 8 looks (seed % 8), as `fake_vendors.state` does."""
    from vbench_suite.shapes.parse import parse_prompt

    out = {}
    for it in prompts:
        for d in range(draws):
            seed = _int(f"layout/{it.id}/{0 if same_layout else d}")
            if parse_prompt(it.text) is None:
                seed %= 8
            out[(it.id, d)] = video(dict(prompt=it.text, width=size[0], height=size[1], frames=FRAMES, fps=FPS,
                                         seed=seed, quality=quality, noise_seed=_int(f"noise/{tag}/{it.id}/{d}")),
                                    cache)
    return out


def wilson(k: int, n: int) -> str:
    from vbench_suite.report.stats import wilson_interval

    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} = {k / n:.1%} [{lo:.1%}, {hi:.1%}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=10, help="base-scenario videos per prompt (default 10)")
    ap.add_argument("--swap-draws", type=int, default=5, help="swapped-scenario videos per prompt (default 5)")
    ap.add_argument("--comparisons", type=int, default=200, help="null and swap comparisons each (default 200)")
    ap.add_argument("--size", default="640x360", help="requested frame size (default 640x360)")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()

    import torch

    from vbench_suite.drift.distance import PairMeter
    from vbench_suite.drift.features import FeatureCache
    from vbench_suite.drift.mmd import excess_test, mmd_test
    from vbench_suite.drift.probe import spread
    from vbench_suite.fake_vendors.scenario import Quality, load_scenario
    from vbench_suite.paths import cache_dir
    from vbench_suite.suites import load_suite

    torch.set_num_threads(2)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    cache = cache_dir() / "bench_drift"
    prompts = load_suite("canary").items
    base_q = load_scenario(SCENARIOS / "drift_base.yaml").truth("runway", "gen4.5").quality
    swaps = {"drift_swap.yaml (noise 2→8, blur 1 %)": load_scenario(SCENARIOS / "drift_swap.yaml").truth(
        "runway", "gen4.5").quality, "mild (noise 2→4)": Quality(noise=4)}
    t0 = time.perf_counter()
    feats_cache = FeatureCache(cache)
    meter = PairMeter()
    rng = np.random.default_rng(0)
    ids = [it.id for it in prompts]
    results: dict[str, dict] = {}

    # ---- I3D MMD: non-deterministic vendor ----------------------------------------------------------------------
    base = pool(base_q, prompts, args.draws, False, size, cache, "base")
    fs = feats_cache.features(list(base.values())).features
    fb = {k: fs[str(p)] for k, p in base.items()}
    print(f"base pool: {len(base)} videos, features in {time.perf_counter() - t0:.0f} s", flush=True)

    def mmd_rate(pick_b, pick_c, n):
        p = []
        for _ in range(n):
            a, b = zip(*[(pick_b(i), pick_c(i)) for i in ids])
            p.append(mmd_test(np.stack(a), ids, np.stack(b), ids, seed=int(rng.integers(1 << 30))).p_value)
        return np.array(p)

    def two_draws(i):
        return rng.choice(args.draws, size=2, replace=False)

    null_picks = {}
    def null_b(i):
        null_picks[i] = two_draws(i)
        return fb[(i, int(null_picks[i][0]))]
    p_null = mmd_rate(null_b, lambda i: fb[(i, int(null_picks[i][1]))], args.comparisons)
    results["I3D MMD, null (base vs base)"] = {"p": p_null.tolist()}
    for name, q in swaps.items():
        sw = pool(q, prompts, args.swap_draws, False, size, cache, f"swap/{name}")
        fsw = feats_cache.features(list(sw.values())).features
        fw = {k: fsw[str(p)] for k, p in sw.items()}
        p_sw = mmd_rate(lambda i: fb[(i, int(rng.integers(args.draws)))],
                        lambda i: fw[(i, int(rng.integers(args.swap_draws)))], args.comparisons)
        results[f"I3D MMD, swap: {name}"] = {"p": p_sw.tolist()}
        print(f"swap pool {name}: done at {time.perf_counter() - t0:.0f} s", flush=True)

    # ---- same-seed LPIPS: seed-faithful vendor ------------------------------------------------------------------
    k = min(args.draws, 6)
    sf = pool(base_q, prompts, k, True, size, cache, "sf-base")
    lp_cache = cache / "lpips.json"
    known = json.loads(lp_cache.read_text()) if lp_cache.is_file() else {}

    def lp(a: Path, b: Path) -> float:
        key = f"{a.name}|{b.name}"
        if key not in known:
            known[key] = meter.measure(a, b).lpips
        return known[key]

    probed = [ids[i] for i in spread(len(ids), 3)]  # the prompts `canary --probe 3` replays
    null_d = {i: {(x, y): lp(sf[(i, x)], sf[(i, y)]) for x, y in itertools.combinations(range(k), 2)} for i in ids}
    lp_cache.write_text(json.dumps(known))

    def floor_pairs():
        vals = []
        for i in probed + probed:  # 3 probed prompts in each run
            x, y = sorted(rng.choice(k, size=2, replace=False))
            vals.append(null_d[i][(int(x), int(y))])
        return vals

    p_lnull = []
    for _ in range(args.comparisons):
        between = []
        for i in ids:
            x, y = sorted(rng.choice(k, size=2, replace=False))
            between.append(null_d[i][(int(x), int(y))])
        p_lnull.append(excess_test(between, floor_pairs(), seed=int(rng.integers(1 << 30))).p_value)
    results["same-seed LPIPS, null (base vs base)"] = {"p": p_lnull}
    for name, q in swaps.items():
        ks = min(args.swap_draws, 4)
        sw = pool(q, prompts, ks, True, size, cache, f"sf-swap/{name}")
        cross = {i: {(x, y): lp(sf[(i, x)], sw[(i, y)]) for x in range(k) for y in range(ks)} for i in ids}
        lp_cache.write_text(json.dumps(known))
        p_ls = []
        for _ in range(args.comparisons):
            between = [cross[i][(int(rng.integers(k)), int(rng.integers(ks)))] for i in ids]
            p_ls.append(excess_test(between, floor_pairs(), seed=int(rng.integers(1 << 30))).p_value)
        results[f"same-seed LPIPS, swap: {name}"] = {"p": p_ls}
    elapsed = time.perf_counter() - t0

    print(f"\nDrift tests on fake-vendor videos ({size[0]}x{size[1]}, 2 s, 12 canary prompts; {args.comparisons} "
          f"resampled comparisons each; alpha {args.alpha}; {elapsed:.0f} s)")
    print(f"{'test, comparison':60s} {'rejected at alpha [95 % Wilson]':34s} {'at 0.01':>10s}")
    for name, r in results.items():
        p = np.array(r["p"])
        r.update(rejected=int((p < args.alpha).sum()), n=len(p), rejected_01=int((p < 0.01).sum()))
        print(f"{name:60s} {wilson(r['rejected'], r['n']):34s} {r['rejected_01'] / r['n']:>10.1%}")
    if args.json:
        args.json.write_text(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "p"} for k, v in
                                         results.items()}, indent=1))


if __name__ == "__main__":
    main()
