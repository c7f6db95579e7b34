"""Measure the trained pipeline on prompt combinations held out of training, with the shapes adherence checker.

    python -m vbench_suite.backends.dit.evaluate [--weights DIR] [--n 48] [--seeds 1] [--steps 20] [--guidance 4]
        [--train-split] [--steering 0.5 0.7 0.9] [--fvd 64]

Prints the fraction of videos whose requested colour, shape and motion (and all three together) the checker finds,
with 95% Wilson intervals and a requested->detected confusion count for shape and motion, for single-object
held-out scenes ((colour, shape, motion) triples never seen in training) and, with --train-split, training-split
scenes. `--steering` measures whether the prompt steers an object's shape (see `prompt_steering`). With `--fvd N`
it also prints FVD (I3D, TF profile) on N held-out videos against N `reference-shapes` renders of the same
prompts, next to the same FVD for the untrained model (the DiT at its initialisation, same autoencoder) and the
floor: reference renders against reference renders of other seeds.
Seeds and scene choice are fixed, so the numbers are reproducible for one checkpoint.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def held_out_specs(n: int, split: str = "held_out", seed: int = 0) -> list:
    """`n` single-object scenes of `split`, drawn without replacement in a fixed order."""
    from vbench_suite.shapes.grammar import enumerate_specs

    specs = list(enumerate_specs(counts=(1,), split=split))
    order = np.random.default_rng(seed).permutation(len(specs))
    return [specs[i] for i in order[:n]]


ATTRIBUTES = ("colour", "shape", "motion", "colour_shape_motion")


def adherence(pipe: object, specs: Sequence, steps: int, guidance: float, batch: int = 8,
              seed: int = 0, seeds: int = 1) -> dict[str, object]:
    """Generate `seeds` videos per spec (canonical prompt, seeds seed, seed + 1000, ...) and score them.

    Returns {attribute: {"rate", "ci95": [low, high]}} for colour, shape, motion and all three (Wilson intervals
    over every video), "videos", and "confusion": {"shape" | "motion": {"requested->detected": count}} so a low
    rate shows what the model draws instead.
    """
    from collections import Counter

    from vbench_suite.backends.dit.pipeline import single_prompt
    from vbench_suite.report.stats import wilson_interval
    from vbench_suite.shapes.checker import check_adherence
    from vbench_suite.shapes.grammar import to_prompt

    jobs = [(spec, seed + 1000 * k + i) for k in range(seeds) for i, spec in enumerate(specs)]
    hits = Counter()
    confusion = {"shape": Counter(), "motion": Counter()}
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        samples = [single_prompt(to_prompt(spec), pipe.cfg.num_frames, seed=s, steps=steps, guidance=guidance)
                   for spec, s in chunk]
        videos = pipe.generate(samples)[:, :16]  # (B, 16, H, W, 3)
        for (spec, _), video in zip(chunk, videos):
            r = check_adherence(video, spec)
            hits["colour"] += r.colour_ok
            hits["shape"] += r.shape_ok
            hits["motion"] += r.motion_ok
            hits["colour_shape_motion"] += r.colour_ok and r.shape_ok and r.motion_ok
            want, got = spec.objects[0], r.groups[0]
            confusion["shape"][f"{want.shape}->{got.shape}"] += 1
            confusion["motion"][f"{want.motion}->{got.motion}"] += 1
    n = len(jobs)
    out: dict[str, object] = {k: {"rate": round(hits[k] / n, 4),
                                  "ci95": [round(x, 4) for x in wilson_interval(hits[k], n)]} for k in ATTRIBUTES}
    out["videos"] = n
    out["confusion"] = {k: dict(sorted(c.items())) for k, c in confusion.items()}
    return out


def other_shape(spec: object) -> object:
    """The same one-group scene with the next shape in `SHAPES` (circle -> square -> triangle -> diamond -> circle)."""
    import dataclasses

    from vbench_suite.shapes.grammar import SHAPES

    obj = spec.objects[0]
    swapped = dataclasses.replace(obj, shape=SHAPES[(SHAPES.index(obj.shape) + 1) % len(SHAPES)])
    return dataclasses.replace(spec, objects=(swapped,))


def prompt_steering(pipe: object, specs: Sequence, starts: Sequence[float], steps: int, guidance: float,
                    batch: int = 8) -> dict[str, dict[str, float]]:
    """Which noise level decides an object's shape, and does the prompt decide it?

    Each spec's reference render is encoded, noised to t = start and denoised (SDEdit) twice: with its own prompt,
    and with a prompt naming another shape. Per start, returns the checker's shape pass rates: "own_prompt" (shape
    kept), "other_prompt_follows_prompt" (the prompt's shape drawn) and "other_prompt_keeps_latent" (the latent's
    shape kept). A model that uses the text moves from the latent's shape to the prompt's as `start` grows.
    """
    import torch

    from vbench_suite.backends.dit.pipeline import single_prompt
    from vbench_suite.shapes.checker import check_adherence
    from vbench_suite.shapes.grammar import to_prompt
    from vbench_suite.shapes.render import render

    frames, size = pipe.cfg.num_frames, pipe.cfg.autoencoder.image_size
    out: dict[str, dict[str, float]] = {}
    for start in starts:
        hits = {"own_prompt": 0, "other_prompt_follows_prompt": 0, "other_prompt_keeps_latent": 0}
        for first in range(0, len(specs), batch):
            chunk = specs[first:first + batch]
            init = torch.stack([pipe.encode_video(render(s, frames, size, seed=first + i)) for i, s in enumerate(chunk)])
            for asked in ("own", "other"):
                prompts = chunk if asked == "own" else [other_shape(s) for s in chunk]
                samples = [single_prompt(to_prompt(p), frames, seed=first + i, steps=steps, guidance=guidance)
                           for i, p in enumerate(prompts)]
                videos = pipe.decode(pipe.sample_latents(samples, init, start))[:, :16]
                for spec, prompt, video in zip(chunk, prompts, videos):
                    # The checker tracks the object by colour, which both prompts share: one check gives its shape.
                    drawn = check_adherence(video, spec).groups[0].shape
                    if asked == "own":
                        hits["own_prompt"] += drawn == spec.objects[0].shape
                    else:
                        hits["other_prompt_follows_prompt"] += drawn == prompt.objects[0].shape
                        hits["other_prompt_keeps_latent"] += drawn == spec.objects[0].shape
        out[f"{start:g}"] = {k: round(v / len(specs), 4) for k, v in hits.items()}
    return out


def fvd_comparison(pipe: object, n: int, steps: int, guidance: float, batch: int = 8) -> dict[str, object]:
    """FVD of the trained model, the untrained model and a second reference set, each against one reference set.

    Every set holds `n` 16-frame 64x64 videos of the held-out single-object prompts (cycled), with distinct seeds per
    set; FVD is computed at equal N on both sides (small-N FVD is biased upwards, so compare these numbers with each
    other, not with published FVDs at N = 2048).
    """
    import copy

    import torch

    from vbench_suite.backends.dit.model import VideoDiT
    from vbench_suite.backends.dit.pipeline import single_prompt
    from vbench_suite.metrics.fvd import FrechetVideoDistance, fd_between
    from vbench_suite.metrics.frechet import FeatureStats
    from vbench_suite.shapes.grammar import to_prompt
    from vbench_suite.shapes.render import render

    base = held_out_specs(10_000, "held_out")
    specs = [base[i % len(base)] for i in range(n)]
    size = pipe.cfg.autoencoder.image_size

    def generated(model_pipe: object, seed0: int) -> np.ndarray:
        out = []
        for start in range(0, n, batch):
            chunk = [single_prompt(to_prompt(s), model_pipe.cfg.num_frames, seed=seed0 + start + i, steps=steps,
                                   guidance=guidance) for i, s in enumerate(specs[start:start + batch])]
            out.append(model_pipe.generate(chunk)[:, :16])
        return np.concatenate(out)  # (n, 16, H, W, 3)

    untrained = copy.copy(pipe)
    a = pipe.cfg.autoencoder
    torch.manual_seed(0)
    untrained.dit = VideoDiT(pipe.cfg.dit, a.latent_channels, pipe.cfg.latent_frames, a.latent_size).eval()
    sets = {
        "reference": np.stack([render(s, 16, size, seed=10_000 + i) for i, s in enumerate(specs)]),
        "reference_other_seeds": np.stack([render(s, 16, size, seed=20_000 + i) for i, s in enumerate(specs)]),
        "trained": generated(pipe, 30_000),
        "untrained": generated(untrained, 30_000),
    }
    fvd = FrechetVideoDistance("tf")
    stats = {}
    for name, videos in sets.items():
        st = FeatureStats(400)
        st.update(fvd.extractor.video_logits(list(videos), [8.0] * len(videos)))
        stats[name] = st
    ref = stats.pop("reference")
    return {"n": n, "profile": fvd.profile.id,
            **{f"fvd_{name}": round(fd_between(st, ref).value, 1) for name, st in stats.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from vbench_suite.backends.dit.pipeline import DiTPipeline

    parser = argparse.ArgumentParser(prog="python -m vbench_suite.backends.dit.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint folder (default: shipped weights)")
    parser.add_argument("--n", type=int, default=48, help="scenes per split (46 held-out single-object scenes exist)")
    parser.add_argument("--seeds", type=int, default=1, help="videos (seeds) per scene")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-split", action="store_true", help="also measure training-split scenes")
    parser.add_argument("--steering", type=float, nargs="*", default=None, metavar="T",
                        help="also measure prompt steering of shape from reference latents noised to these times "
                             "(e.g. 0.5 0.7 0.9; training-split scenes)")
    parser.add_argument("--fvd", type=int, default=0, metavar="N",
                        help="also compute FVD on N videos per set (trained, untrained, reference floor)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="also write the JSON result to FILE (it is always printed)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = DiTPipeline.load(args.weights)
    steps = args.steps or pipe.cfg.default_steps
    guidance = args.guidance if args.guidance is not None else pipe.cfg.default_guidance
    out = {"weights": pipe.version, "steps": steps, "guidance": guidance, "n": args.n, "seeds": args.seeds}
    t0 = time.time()
    out["held_out"] = adherence(pipe, held_out_specs(args.n, "held_out"), steps, guidance, seeds=args.seeds)
    if args.train_split:
        out["train"] = adherence(pipe, held_out_specs(args.n, "train"), steps, guidance, seeds=args.seeds)
    if args.steering:
        out["steering"] = prompt_steering(pipe, held_out_specs(args.n, "train"), args.steering, steps, guidance)
    if args.fvd:
        out["fvd"] = fvd_comparison(pipe, args.fvd, steps, guidance)
    out["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
