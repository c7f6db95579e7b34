"""The shapes world: a small prompt grammar, a deterministic renderer, a prompt parser and an adherence checker.

It is the offline reference distribution for FVD (backend 'reference-shapes'), the training data of the built-in
DiT, and an analytic prompt-adherence metric ('shapes_adherence').
"""
from __future__ import annotations

from vbench_suite.shapes.checker import AdherenceResult, DetectedObject, check_adherence, detect_objects, frame_colours
from vbench_suite.shapes.grammar import (BACKGROUNDS, COLOURS, GRAMMAR_VERSION, HELD_OUT_TRIPLES, MOTIONS, SHAPES,
                                         ObjectSpec, SceneSpec, enumerate_specs, sample_spec, single, to_prompt)
from vbench_suite.shapes.parse import parse_prompt
from vbench_suite.shapes.render import RENDERER_VERSION, render

__all__ = ["AdherenceResult", "DetectedObject", "check_adherence", "detect_objects", "frame_colours", "BACKGROUNDS",
           "COLOURS", "GRAMMAR_VERSION", "HELD_OUT_TRIPLES", "MOTIONS", "SHAPES", "ObjectSpec", "SceneSpec",
           "enumerate_specs", "sample_spec", "single", "to_prompt", "parse_prompt", "RENDERER_VERSION", "render"]
