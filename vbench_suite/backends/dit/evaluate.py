"""Measure the trained pipeline on prompt combinations held out of training, with the shapes adherence checker.

    python -m vbench_suite.backends.dit.evaluate [--weights DIR] [--n 48] [--steps 20] [--guidance 4]

Prints the fraction of videos whose requested colour, shape and motion (and all three together) the checker finds,
for single-object held-out scenes ((colour, shape, motion) triples never seen in training) and, for comparison,
training-split scenes. Seeds and scene choice are fixed, so the numbers are reproducible for one checkpoint.
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


def adherence(pipe: object, specs: Sequence, steps: int, guidance: float, batch: int = 8,
              seed: int = 0) -> dict[str, float]:
    """Generate one video per spec (canonical prompt) and return the checker's pass rates."""
    from vbench_suite.backends.dit.pipeline import single_prompt
    from vbench_suite.shapes.checker import check_adherence
    from vbench_suite.shapes.grammar import to_prompt

    hits = {"colour": 0, "shape": 0, "motion": 0, "colour_shape_motion": 0}
    for start in range(0, len(specs), batch):
        chunk = specs[start:start + batch]
        samples = [single_prompt(to_prompt(s), pipe.cfg.num_frames, seed=seed + start + i, steps=steps,
                                 guidance=guidance) for i, s in enumerate(chunk)]
        videos = pipe.generate(samples)[:, :16]  # (B, 16, H, W, 3)
        for spec, video in zip(chunk, videos):
            r = check_adherence(video, spec)
            hits["colour"] += r.colour_ok
            hits["shape"] += r.shape_ok
            hits["motion"] += r.motion_ok
            hits["colour_shape_motion"] += r.colour_ok and r.shape_ok and r.motion_ok
    return {k: v / len(specs) for k, v in hits.items()}


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from vbench_suite.backends.dit.pipeline import DiTPipeline

    parser = argparse.ArgumentParser(prog="python -m vbench_suite.backends.dit.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help="checkpoint folder (default: shipped weights)")
    parser.add_argument("--n", type=int, default=48, help="scenes per split")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-split", action="store_true", help="also measure training-split scenes")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = DiTPipeline.load(args.weights)
    steps = args.steps or pipe.cfg.default_steps
    guidance = args.guidance if args.guidance is not None else pipe.cfg.default_guidance
    out = {"weights": pipe.version, "steps": steps, "guidance": guidance, "n": args.n}
    t0 = time.time()
    out["held_out"] = adherence(pipe, held_out_specs(args.n, "held_out"), steps, guidance)
    if args.train_split:
        out["train"] = adherence(pipe, held_out_specs(args.n, "train"), steps, guidance)
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
