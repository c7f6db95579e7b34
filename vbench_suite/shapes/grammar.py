"""The shapes-world vocabulary as data, the scene description type, and the prompt templates.

A scene is one or two groups of identical objects (same colour, shape and motion) on a flat background. Every
attribute in the vocabulary can be verified from pixels by `vbench_suite.shapes.checker`, which is why there is
no rotation (a rotated square is a diamond) and no colour that could be confused with a background.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

GRAMMAR_VERSION = "shapes-grammar-1"
"""Bump when the vocabulary or the canonical wording changes (changes every prompt and every reference video)."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 40),
    "green": (40, 196, 64),
    "blue": (44, 84, 240),
    "yellow": (240, 230, 40),
    "purple": (152, 58, 208),
    "orange": (250, 130, 10),
    "cyan": (36, 218, 228),
    "white": (242, 242, 242),
}
"""Object colours as sRGB uint8 triples; pairwise Euclidean distance >= 100 so mild colour shifts stay separable."""

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (12, 12, 14),
    "gray": (112, 112, 116),
    "white": (246, 246, 246),
}
"""Flat background colours (sRGB uint8)."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")
"""Shapes. Triangles point up; diamonds are squares standing on a corner; bounding boxes are square."""

MOTIONS: tuple[str, ...] = ("left", "right", "up", "down", "still", "grows", "shrinks")
"""Motions over the whole clip. Moves travel 35-55% of the frame along their axis; grows/shrinks scale the
object's side by 2x (area 4x) in place; 'still' does not move at all."""

MAX_COUNT = 3
"""At most this many objects per group."""

NUMBER_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}

# Singular / plural verb phrases per motion, canonical form first. Index 1.. are paraphrases used by `to_prompt`.
MOTION_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "left": (("moves left", "move left"), ("drifts to the left", "drift to the left"),
             ("slides left", "slide left"), ("travels leftward", "travel leftward")),
    "right": (("moves right", "move right"), ("drifts to the right", "drift to the right"),
              ("slides right", "slide right"), ("travels rightward", "travel rightward")),
    "up": (("moves up", "move up"), ("rises", "rise"), ("floats upward", "float upward"),
           ("travels upward", "travel upward")),
    "down": (("moves down", "move down"), ("falls", "fall"), ("sinks downward", "sink downward"),
             ("drops down", "drop down")),
    "still": (("stays still", "stay still"), ("does not move", "do not move"),
              ("remains motionless", "remain motionless"), ("stays in place", "stay in place")),
    "grows": (("grows", "grow"), ("gets bigger", "get bigger"), ("expands", "expand"),
              ("grows larger", "grow larger")),
    "shrinks": (("shrinks", "shrink"), ("gets smaller", "get smaller"), ("contracts", "contract"),
                ("shrinks away", "shrink away")),
}

# Present-participle phrases for the "with a red circle moving left" templates.
MOTION_GERUNDS: dict[str, str] = {
    "left": "moving to the left", "right": "moving to the right", "up": "moving upward",
    "down": "moving downward", "still": "staying still", "grows": "growing", "shrinks": "shrinking",
}

STYLES: tuple[str, ...] = ("canonical", "fronted", "with", "video_of")
"""Prompt templates accepted by `to_prompt`; all of them parse back with `parse_prompt`."""

HELD_OUT_TRIPLES: frozenset[tuple[str, str, str]] = frozenset({
    ("red", "triangle", "up"), ("green", "circle", "shrinks"), ("blue", "diamond", "left"),
    ("yellow", "square", "down"), ("purple", "triangle", "grows"), ("orange", "circle", "right"),
    ("cyan", "square", "still"), ("white", "diamond", "up"), ("red", "square", "grows"),
    ("green", "diamond", "right"), ("blue", "circle", "still"), ("yellow", "triangle", "left"),
    ("purple", "circle", "down"), ("orange", "diamond", "shrinks"), ("cyan", "triangle", "right"),
    ("white", "square", "left"),
})
"""(colour, shape, motion) triples never shown in training: 16 of the 224, covering every colour twice, every
shape four times and every motion at least twice, so each attribute is seen in training but not these pairings."""


@dataclass(frozen=True)
class ObjectSpec:
    """A group of `count` identical objects."""

    colour: str
    """Key of `COLOURS`."""
    shape: str
    """One of `SHAPES`."""
    motion: str
    """One of `MOTIONS`."""
    count: int = 1
    """Number of identical objects in the group, 1..MAX_COUNT."""

    def __post_init__(self) -> None:
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; expected one of {', '.join(COLOURS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {', '.join(SHAPES)}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}; expected one of {', '.join(MOTIONS)}")
        if not 1 <= self.count <= MAX_COUNT:
            raise ValueError(f"count must be 1..{MAX_COUNT}, got {self.count}")

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.colour, self.shape, self.motion)


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene: one or two object groups of different colours on a flat background."""

    objects: tuple[ObjectSpec, ...]
    """Object groups (1 or 2), each with a distinct colour, none the same colour as the background."""
    background: str = "black"
    """Key of `BACKGROUNDS`."""

    def __post_init__(self) -> None:
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"a scene has 1 or 2 object groups, got {len(self.objects)}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"unknown background {self.background!r}; expected one of {', '.join(BACKGROUNDS)}")
        colours = [o.colour for o in self.objects]
        if len(set(colours)) != len(colours):
            raise ValueError("object groups in one scene must have different colours")
        if self.background in colours:
            raise ValueError(f"a {self.background} object on a {self.background} background is invisible")

    @property
    def count(self) -> int:
        """Total number of objects."""
        return sum(o.count for o in self.objects)

    @property
    def held_out(self) -> bool:
        """True if any group's (colour, shape, motion) is in `HELD_OUT_TRIPLES`."""
        return any(o.triple in HELD_OUT_TRIPLES for o in self.objects)


def single(colour: str, shape: str, motion: str, count: int = 1, background: str = "black") -> SceneSpec:
    """Shorthand for a one-group scene."""
    return SceneSpec((ObjectSpec(colour, shape, motion, count),), background)


def _noun_phrase(obj: ObjectSpec) -> str:
    noun = obj.shape + ("s" if obj.count > 1 else "")
    number = NUMBER_WORDS[obj.count]
    if number == "a" and obj.colour[0] in "aeiou":
        number = "an"
    return f"{number} {obj.colour} {noun}"


def _verb_phrase(obj: ObjectSpec, variant: int) -> str:
    phrases = MOTION_PHRASES[obj.motion]
    singular, plural = phrases[variant % len(phrases)]
    return plural if obj.count > 1 else singular


def to_prompt(spec: SceneSpec, style: str = "canonical", variant: int = 0) -> str:
    """English text for `spec`. 'canonical' with variant 0 is the one canonical wording, e.g.
    'a red circle moves left on a black background' / 'two blue squares move up on a white background'.

    Other styles and variants (verb paraphrases) give different sentence structures with the same meaning.
    """
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; expected one of {', '.join(STYLES)}")
    bg = spec.background
    if style == "with":
        parts = [f"{_noun_phrase(o)} {MOTION_GERUNDS[o.motion]}" for o in spec.objects]
        return f"a {bg} background with " + " and ".join(parts)
    clauses = " and ".join(f"{_noun_phrase(o)} {_verb_phrase(o, variant)}" for o in spec.objects)
    if style == "canonical":
        return f"{clauses} on a {bg} background"
    if style == "fronted":
        return f"on a {bg} background, {clauses}"
    return f"a video of {clauses} against a plain {bg} backdrop"


def enumerate_specs(counts: tuple[int, ...] = (1, 2, 3), backgrounds: tuple[str, ...] | None = None,
                    split: str = "all") -> Iterator[SceneSpec]:
    """Every valid one-group scene, in a fixed order. `split`: 'all', 'train' (no held-out triple) or 'held_out'."""
    if split not in ("all", "train", "held_out"):
        raise ValueError(f"split must be 'all', 'train' or 'held_out', got {split!r}")
    for bg, colour, shape, motion, count in itertools.product(
            backgrounds or tuple(BACKGROUNDS), COLOURS, SHAPES, MOTIONS, counts):
        if colour == bg:
            continue
        spec = single(colour, shape, motion, count, bg)
        if split == "all" or (split == "held_out") == spec.held_out:
            yield spec


def sample_spec(rng: np.random.Generator, split: str = "train", max_groups: int = 1) -> SceneSpec:
    """Draw a random valid scene (uniform over attributes, rejection of invalid or wrong-split draws).

    `max_groups` 1 or 2; 'train' never contains a held-out triple, 'held_out' always contains at least one.
    """
    if split not in ("all", "train", "held_out"):
        raise ValueError(f"split must be 'all', 'train' or 'held_out', got {split!r}")
    colours, backgrounds = list(COLOURS), list(BACKGROUNDS)
    while True:
        n_groups = int(rng.integers(1, max_groups + 1))
        chosen = rng.choice(len(colours), size=n_groups, replace=False)
        objects = tuple(ObjectSpec(colours[int(c)], SHAPES[int(rng.integers(len(SHAPES)))],
                                   MOTIONS[int(rng.integers(len(MOTIONS)))], int(rng.integers(1, MAX_COUNT + 1)))
                        for c in chosen)
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        if bg in {o.colour for o in objects}:
            continue
        spec = SceneSpec(objects, bg)
        if split == "all" or (split == "held_out") == spec.held_out:
            return spec
