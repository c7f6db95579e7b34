"""The DiT evaluation harness (`backends/dit/evaluate.py`) on stand-in pipelines whose answers are known."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import torch

from vbench_suite.backends.dit.evaluate import adherence, held_out_specs, other_shape, prompt_steering
from vbench_suite.shapes.grammar import HELD_OUT_TRIPLES, to_prompt
from vbench_suite.shapes.render import render


class RenderingPipe:
    """Answers each prompt with the renderer's video of a chosen spec: a perfect generator, or a wrong one."""

    def __init__(self, specs, answer=lambda spec: spec):
        self.by_prompt = {to_prompt(s): answer(s) for s in specs}
        self.cfg = SimpleNamespace(num_frames=17)
        self.seeds_seen: list[int] = []

    def generate(self, samples):
        self.seeds_seen += [s.seed for s in samples]
        return np.stack([render(self.by_prompt[s.segments[0].prompt], 17, 64, seed=s.seed) for s in samples])


def test_held_out_specs_are_the_held_out_single_object_scenes():
    specs = held_out_specs(10_000)
    assert len(specs) == 46
    assert all(len(s.objects) == 1 and s.objects[0].count == 1 and s.objects[0].triple in HELD_OUT_TRIPLES
               for s in specs)
    assert held_out_specs(5) == specs[:5]  # fixed order, so a prefix is reproducible
    assert not any(s.held_out for s in held_out_specs(20, "train"))


def test_adherence_of_a_perfect_generator_is_one_with_every_seed():
    specs = held_out_specs(6)
    pipe = RenderingPipe(specs)
    out = adherence(pipe, specs, steps=1, guidance=1.0, batch=4, seeds=2)
    assert out["videos"] == 12
    assert sorted(pipe.seeds_seen) == sorted([i for i in range(6)] + [1000 + i for i in range(6)])
    for k in ("colour", "shape", "motion", "colour_shape_motion"):
        assert out[k]["rate"] == 1.0
        low, high = out[k]["ci95"]
        assert 0.7 < low < 1.0 and high == 1.0  # Wilson interval of 12/12
    assert sum(out["confusion"]["shape"].values()) == 12
    assert all(k.split("->")[0] == k.split("->")[1] for k in out["confusion"]["shape"])


def test_adherence_counts_a_wrong_shape_in_the_confusion_table():
    specs = [s for s in held_out_specs(46) if s.objects[0].shape == "square"][:3]
    def to_circle(spec):
        return dataclasses.replace(spec, objects=(dataclasses.replace(spec.objects[0], shape="circle"),))

    out = adherence(RenderingPipe(specs, to_circle), specs, steps=1, guidance=1.0)
    assert out["shape"]["rate"] == 0.0 and out["colour_shape_motion"]["rate"] == 0.0
    assert out["colour"]["rate"] == 1.0
    assert out["confusion"]["shape"] == {"square->circle": 3}


def test_other_shape_changes_only_the_shape():
    spec = held_out_specs(1)[0]
    other = other_shape(spec)
    assert other.objects[0].shape != spec.objects[0].shape
    assert (other.objects[0].colour, other.objects[0].motion, other.background) == (
        spec.objects[0].colour, spec.objects[0].motion, spec.background)


class PromptFollowingPipe(RenderingPipe):
    """SDEdit stand-in that ignores the starting latent and draws exactly what its prompt says."""

    def __init__(self, specs):
        super().__init__(list(specs) + [other_shape(s) for s in specs])
        self.cfg = SimpleNamespace(num_frames=17, autoencoder=SimpleNamespace(image_size=64))

    def encode_video(self, video):
        return torch.zeros(1)

    def sample_latents(self, samples, init, start):
        assert len(init) == len(samples) and 0 < start < 1
        self._pending = samples
        return torch.zeros(len(samples))

    def decode(self, latents):
        return self.generate(self._pending)


def test_prompt_steering_of_a_generator_that_follows_the_prompt():
    specs = held_out_specs(3, "train")
    out = prompt_steering(PromptFollowingPipe(specs), specs, [0.5, 0.9], steps=1, guidance=1.0)
    assert out == {t: {"own_prompt": 1.0, "other_prompt_follows_prompt": 1.0, "other_prompt_keeps_latent": 0.0}
                   for t in ("0.5", "0.9")}
