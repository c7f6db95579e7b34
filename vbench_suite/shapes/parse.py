"""Recover a `SceneSpec` from prompt text written in (or near) the shapes-world grammar.

The parser reads words into typed tokens (count, colour, shape, direction, motion, background word, filler) and
rejects any text containing a word it does not know, so ordinary prompts ('a drone shot over a foggy forest',
'a woman holds a red square sign') are not mistaken for shapes-world prompts.
"""
from __future__ import annotations

import re

from vbench_suite.shapes.grammar import BACKGROUNDS, COLOURS, MAX_COUNT, ObjectSpec, SceneSpec

DEFAULT_MOTION = "still"
"""Motion of an object whose prompt names none ('a red circle on a black background')."""
DEFAULT_BACKGROUND = "black"
"""Background of a prompt that names none."""

_COUNTS = {"a": 1, "an": 1, "one": 1, "1": 1, "single": 1, "two": 2, "2": 2, "pair of": 2, "three": 3, "3": 3}
_COLOUR_WORDS = {**{c: c for c in COLOURS}, **{b: b for b in BACKGROUNDS}, "grey": "gray", "violet": "purple"}
_SHAPE_WORDS = {"circle": "circle", "disc": "circle", "disk": "circle", "dot": "circle", "square": "square",
                "triangle": "triangle", "diamond": "diamond", "rhombus": "diamond"}
_DIRECTIONS = {}
for _d in ("left", "right", "up", "down"):
    for _form in (_d, _d + "ward", _d + "wards", "to the " + _d, "towards the " + _d, "toward the " + _d):
        _DIRECTIONS[_form] = _d
_DIRECTIONS.update({"upward": "up", "upwards": "up", "downward": "down", "downwards": "down"})

_MOVE_VERBS = ("move", "moves", "moving", "drift", "drifts", "drifting", "slide", "slides", "sliding", "travel",
               "travels", "travelling", "traveling", "go", "goes", "going", "head", "heads", "heading", "glide",
               "glides", "gliding", "float", "floats", "floating", "roll", "rolls", "rolling", "pan", "pans")
_UP_VERBS = ("rise", "rises", "rising", "climb", "climbs", "climbing", "ascend", "ascends", "ascending")
_DOWN_VERBS = ("fall", "falls", "falling", "sink", "sinks", "sinking", "drop", "drops", "dropping", "descend",
               "descends", "descending")
_STILL = ("still", "motionless", "stationary", "in place", "does not move", "do not move", "doesn t move",
          "don t move", "not moving", "without moving", "stay", "stays", "staying", "remain", "remains",
          "remaining", "sit", "sits", "sitting")
_GROWS = ("grow", "grows", "growing", "expand", "expands", "expanding", "get bigger", "gets bigger",
          "getting bigger", "larger", "bigger", "swell", "swells", "swelling")
_SHRINKS = ("shrink", "shrinks", "shrinking", "contract", "contracts", "contracting", "get smaller",
            "gets smaller", "getting smaller", "smaller", "away")
_BACKGROUND_WORDS = ("background", "backdrop", "backgrounds")
_FILLER = ("the", "on", "of", "with", "in", "against", "and", "video", "clip", "animation", "that", "which",
           "while", "is", "are", "it", "its", "their", "slowly", "steadily", "smoothly", "gradually", "plain",
           "solid", "flat", "simple", "across", "screen", "frame", "over", "time", "shows", "showing", "there",
           "shot", "scene", "of a", "all", "both", "each", "together", "side", "by", "at", "constant", "speed",
           "size", "in size", "only", "just")

_PHRASES: dict[tuple[str, ...], tuple[str, str | int]] = {}


def _add(words: str, kind: str, value: str | int) -> None:
    _PHRASES[tuple(words.split())] = (kind, value)


for _w in _FILLER:
    _add(_w, "filler", _w)
for _w, _n in _COUNTS.items():
    _add(_w, "count", _n)
for _w, _c in _COLOUR_WORDS.items():
    _add(_w, "colour", _c)
for _w, _s in _SHAPE_WORDS.items():
    _add(_w, "shape", _s)
    _add(_w + "s", "shapes", _s)
_add("rhombuses", "shapes", "diamond")
_add("discs", "shapes", "circle")
_add("disks", "shapes", "circle")
_add("dots", "shapes", "circle")
for _w, _d in _DIRECTIONS.items():
    _add(_w, "motion", _d)
for _w in _MOVE_VERBS:
    _add(_w, "verb", "")
for _w in _UP_VERBS:
    _add(_w, "motion", "up")
for _w in _DOWN_VERBS:
    _add(_w, "motion", "down")
for _w in _STILL:
    _add(_w, "motion", "still")
for _w in _GROWS:
    _add(_w, "motion", "grows")
for _w in _SHRINKS:
    _add(_w, "motion", "shrinks")
for _w in _BACKGROUND_WORDS:
    _add(_w, "background", "")
_MAX_PHRASE = max(len(k) for k in _PHRASES)


def _tokens(text: str) -> list[tuple[str, str | int]] | None:
    """Typed tokens, longest phrase first; None if any word is outside the vocabulary."""
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    out: list[tuple[str, str | int]] = []
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            hit = _PHRASES.get(tuple(words[i:i + n]))
            if hit is not None:
                out.append(hit)
                i += n
                break
        else:
            return None
    return out


def parse_prompt(text: str) -> SceneSpec | None:
    """The scene `text` asks for, or None when the text is not in the shapes world.

    Accepts the canonical wording and paraphrases ('on a gray background, two green squares drift to the left';
    'a white background with a blue circle growing'). Counts 1-3 as words or digits; an object with no motion is
    'still', a prompt with no background is on black. Objects are '[count] colour shape' followed by their motion.
    """
    tokens = _tokens(text)
    if not tokens:
        return None
    groups: list[dict[str, str | int | None]] = []
    background: str | None = None
    pending_count: int | None = None
    i = 0
    while i < len(tokens):
        kind, value = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "count":
            pending_count = int(value)
        elif kind == "colour":
            if nxt[0] == "background" or (nxt[0] == "filler" and i + 2 < len(tokens)
                                           and tokens[i + 2][0] == "background"):
                if background is not None or value not in BACKGROUNDS:
                    return None
                background = str(value)
                pending_count = None
            elif nxt[0] in ("shape", "shapes"):
                count = pending_count if pending_count is not None else (1 if nxt[0] == "shape" else None)
                if count is None or not 1 <= count <= MAX_COUNT or (nxt[0] == "shapes" and count == 1):
                    return None
                groups.append({"colour": value, "shape": nxt[1], "count": count, "motion": None})
                pending_count = None
                i += 1
            else:
                return None
        elif kind in ("shape", "shapes"):
            return None  # a shape without a colour
        elif kind == "motion":
            if not groups:
                return None
            current = groups[-1]["motion"]
            if current is not None and current != value:
                return None  # two different motions for one group cannot be rendered
            groups[-1]["motion"] = value
        elif kind == "background" and background is None:
            return None  # 'a background' without a colour
        i += 1
    if not groups or len(groups) > 2:
        return None
    try:
        objects = tuple(ObjectSpec(str(g["colour"]), str(g["shape"]), str(g["motion"] or DEFAULT_MOTION),
                                   int(g["count"] or 1)) for g in groups)
        return SceneSpec(objects, background or DEFAULT_BACKGROUND)
    except ValueError:
        return None
