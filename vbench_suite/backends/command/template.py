"""A command template: a command line with `{placeholders}`, turned into an argument list per request.

The template is split like a POSIX shell would split it (`shlex.split`: quotes group words), once; then each
argument has its placeholders filled in on its own. The result is an argv list run without a shell, so a prompt
with spaces, quotes, `;`, `$(...)` or a newline stays one argument and is never evaluated.
"""
from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vbench_suite.errors import ConfigError, shown

PLACEHOLDERS: dict[str, str] = {
    "prompt": "the text prompt",
    "prompt_id": "the prompt's id in its suite",
    "seed": "the sample's seed (an integer)",
    "mode": "t2v, i2v, hybrid or keyframes",
    "frames": "number of frames (duration x fps, after fitting)",
    "fps": "frames per second",
    "duration": "duration in seconds",
    "width": "width in pixels",
    "height": "height in pixels",
    "image": "absolute path of the conditioning image (i2v / hybrid)",
    "first_frame": "absolute path of the first keyframe (keyframes)",
    "last_frame": "absolute path of the last keyframe (keyframes)",
    "output": "the video file the command must write (inside {tmpdir})",
    "tmpdir": "an empty folder inside the run folder, for everything the command writes",
}
"""Every placeholder a template may use, with what it stands for."""
_SAMPLE = {"prompt": "p", "prompt_id": "id", "seed": 1, "mode": "t2v", "frames": 9, "fps": 8, "duration": 1.125,
           "width": 64, "height": 64, "image": "/i.png", "first_frame": "/f.png", "last_frame": "/l.png",
           "output": "/o.mp4", "tmpdir": "/t"}
"""Values of each placeholder's type, used to check format specs (e.g. `{seed:08d}`) when a template is parsed."""


class TemplateValueError(ValueError):
    """A request's value cannot go into the template (a missing image, a prompt that would read as an option)."""


@dataclass(frozen=True)
class CommandTemplate:
    """A parsed template. Build with `CommandTemplate.parse`; `argv(values)` gives the argument list."""

    text: str
    """The template as the user wrote it."""
    parts: tuple[str, ...]
    """The template split into arguments (placeholders not yet filled in)."""
    fields: frozenset[str]
    """Placeholders the template uses."""

    @classmethod
    def parse(cls, text: str, option: str = "template") -> "CommandTemplate":
        """Split and check `text`; `ConfigError` (naming `option`) for bad quoting, an unknown placeholder, a
        placeholder in the program name, or a bad format spec."""
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{option} must be a non-empty command line, e.g. "
                              "'python gen.py --prompt={prompt} --seed {seed} --out {output}'")
        try:
            parts = tuple(shlex.split(text))
        except ValueError as exc:
            raise ConfigError(f"{option} {shown(text)} cannot be split into arguments ({exc}); check its quotes")
        fields: set[str] = set()
        for i, part in enumerate(parts):
            names = _fields_of(part, option)
            if i == 0 and names:
                raise ConfigError(f"{option}: the program to run ({shown(part)}) cannot contain a placeholder "
                                  "(a request must never choose what is executed)")
            fields |= names
        template = cls(text, parts, frozenset(fields))
        try:
            template.argv(_SAMPLE)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{option}: a placeholder's format spec does not fit its value ({exc})") from None
        return template

    def argv(self, values: Mapping[str, Any]) -> list[str]:
        """The argument list with every placeholder filled in from `values`.

        Raises `TemplateValueError` when a used placeholder has no value (None) or when an argument that is a
        placeholder alone would start with '-' (a script's option parser would read it as an option; write the
        template as `--prompt={prompt}` to pass such text)."""
        out = []
        for part in self.parts:
            names = _fields_of(part, "template")
            missing = sorted(n for n in names if values.get(n) is None)
            if missing:
                raise TemplateValueError(f"the request has no value for {', '.join('{' + n + '}' for n in missing)}")
            arg = part.format_map({n: values[n] for n in names})  # also turns a literal {{ into {
            if names and _is_lone_placeholder(part) and arg.startswith("-"):
                raise TemplateValueError(f"{part} would start with '-' ({shown(arg, 40)}) and be read as an option; "
                                         f"write it as --flag={part} in the template")
            out.append(arg)
        return out


def _fields_of(part: str, option: str) -> set[str]:
    """Placeholder names in one argument; `ConfigError` for unknown names, positional `{}`, attribute or index
    access, or conversions (`!r`)."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(part))
    except ValueError as exc:
        raise ConfigError(f"{option}: argument {shown(part)} has a malformed placeholder ({exc}); write a literal "
                          "brace as {{ or }}") from None
    for _literal, name, _spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or conversion is not None:
            raise ConfigError(f"{option}: unknown placeholder {{{name}{'!' + conversion if conversion else ''}}} in "
                              f"{shown(part)}. Placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        names.add(name)
    return names


def _is_lone_placeholder(part: str) -> bool:
    parsed = list(string.Formatter().parse(part))
    return len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] is not None
