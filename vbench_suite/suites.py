"""Prompt sets: load `prompt_sets/*.yaml` into typed, validated `PromptSet` / `PromptItem` values.

File format (YAML):

    name: smoke                      # required
    version: "1.0"                   # required, a string
    description: ...                 # optional
    fvd_reference: shapes-world      # optional: 'shapes-world' or a folder of reference videos
    defaults: {duration_s: 2, fps: 8, resolution: 64x64, mode: t2v}   # optional
    prompts:                         # required, non-empty
      - id: motion-001               # required, unique
        text: a red circle moves left on a black background   # required (talking heads: the script)
        category: motion             # required
        mode: i2v                    # optional (defaults.mode)
        duration_s: 5                # optional (defaults.duration_s)
        tags: [camera_motion]        # optional
        image: shapes:a red circle stays still on a black background#frame=0   # i2v / hybrid
        first_frame: ..., last_frame: ...   # keyframes
        presenter: a woman in her thirties in a navy blazer   # optional (talking heads)

Conditioning images are either a path relative to the YAML file or a shapes-world render,
`shapes:<prompt>#frame=N` (optionally `&seed=S`), drawn on request by `resolve_image`, so suites need no binary
files. Every problem is reported as a `PromptSetError` naming the file, the line and the field; a file with several
problems raises `PromptSetErrors` (a `PromptSetError`) listing all of them, one line each.

Files are read with a restricted YAML loader (`_LimitedLoader`): the file size, the length of one value, the nesting
depth and the number of values after expanding aliases are capped (`MAX_FILE_BYTES`, ...) and refused as soon as the
reader gets there, so no file, however crafted, costs more than a few seconds or a few MB; unknown tags are refused,
and a value its tag cannot read (`!!int abc`) is a `PromptSetError` at its line like any other problem.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import vbench_suite
from vbench_suite.errors import ConfigError, PromptSetError, UnknownNameError, one_line, shown
from vbench_suite.types import MODES

SUITES_ENV = "VBENCH_PROMPT_SETS"
"""Environment variable naming an extra folder of prompt sets, searched before the shipped ones."""
SHAPES_REF_PREFIX = "shapes:"
"""Image references starting with this are rendered from the shapes world."""
SHAPES_REF_FRAMES = 16
"""Shapes-world image references pick a frame of a clip this long (so `#frame=` is 0..15)."""

BUILTIN_DEFAULTS: dict[str, Any] = {"duration_s": 5.0, "fps": 24, "resolution": (1280, 720), "mode": "t2v"}
"""Used where a file has no `defaults` entry."""

_TOP_KEYS = ("name", "version", "description", "fvd_reference", "defaults", "prompts")
_DEFAULT_KEYS = ("duration_s", "fps", "resolution", "mode")
_ITEM_KEYS = ("id", "text", "category", "mode", "duration_s", "tags", "image", "first_frame", "last_frame",
              "presenter")
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CATEGORY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
MAX_LISTED_ERRORS = 50
"""At most this many problems of one file are listed (then a count of the rest)."""
MAX_ERROR_LINE_CHARS = 300
"""Each listed problem is cut to this many characters, so one bad value cannot flood the terminal."""
MAX_FILE_BYTES = 2 * 1024 * 1024
"""Larger prompt-set files are refused before parsing (the 130-prompt standard suite is about 31 KB)."""
MAX_VALUE_CHARS = 10_000
"""Longest single YAML value (a prompt text, an id, a key), in characters."""
MAX_DEPTH = 20
"""Deepest nesting of YAML collections (a prompt set needs 4: file, prompts, prompt, tags)."""
MAX_VALUES = 100_000
"""Most YAML values (scalars, lists, mappings) in a file, counting each alias as the values it stands for, so a
'billion laughs' of nested aliases is refused long before it is expanded."""
MAX_ALIASES = 1_000
"""Most aliases (`*name`) in a file."""
MAX_DURATION_S = 3600.0
"""Longest duration an item may request, in seconds."""
MAX_FPS = 1000
"""Highest frame rate a file may request."""
MAX_SIDE_PX = 16_384
"""Largest width or height a file may request, in pixels."""
_REF_PATTERN = re.compile(r"^shapes:(?P<prompt>[^#]+)#frame=(?P<frame>\d{1,9})(?:&seed=(?P<seed>\d{1,9}))?$")


@dataclass(frozen=True)
class PromptItem:
    """One prompt of a suite, with its conditioning and generation settings resolved."""

    id: str
    """Unique id within the suite (letters, digits, '_', '.', '-'), e.g. 'motion-003'."""
    text: str
    """The prompt text; for talking heads, the script to be spoken."""
    category: str
    """Category used to break down scores (lower-case, e.g. 'motion_complexity')."""
    mode: str
    """'t2v', 'i2v', 'hybrid' (text + image) or 'keyframes' (first / last frame)."""
    duration_s: float
    """Requested duration in seconds (> 0)."""
    tags: tuple[str, ...] = ()
    """Free labels, e.g. ('known_hard', 'camera_motion')."""
    image: str | None = None
    """Conditioning image (i2v / hybrid): an absolute path or a `shapes:` reference."""
    first_frame: str | None = None
    """Required first frame (keyframes): an absolute path or a `shapes:` reference."""
    last_frame: str | None = None
    """Required last frame (keyframes, optional): an absolute path or a `shapes:` reference."""
    presenter: str | None = None
    """Talking heads: description of the avatar / presenter who speaks `text`."""
    shapes: bool = False
    """True when `text` parses in the shapes-world grammar (shapes adherence and the shapes FVD apply)."""
    line: int = 0
    """1-based line of the item in its file (0 when not read from a file)."""


@dataclass(frozen=True)
class PromptSet:
    """A named, versioned list of prompts with shared generation settings."""

    name: str
    """Suite name, e.g. 'standard'."""
    version: str
    """Suite version; reports compare runs only within one version (e.g. '2026.11')."""
    description: str
    """One paragraph on what the suite measures."""
    items: tuple[PromptItem, ...]
    """The prompts, in file order."""
    fvd_reference: str | None = None
    """Reference distribution for FVD: 'shapes-world' or a folder of videos; None means no FVD."""
    fps: int = 24
    """Requested frames per second for every item."""
    resolution: tuple[int, int] = (1280, 720)
    """Requested (width, height) in pixels for every item."""
    default_duration_s: float = 5.0
    """Duration of items that give none, in seconds."""
    default_mode: str = "t2v"
    """Mode of items that give none."""
    path: str | None = None
    """File the set was read from."""

    def categories(self) -> list[str]:
        """Categories in order of first appearance."""
        return list(dict.fromkeys(item.category for item in self.items))

    def item(self, item_id: str) -> PromptItem:
        """The item with id `item_id` (KeyError if absent)."""
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)


@dataclass(frozen=True)
class ShapesImageRef:
    """A parsed `shapes:<prompt>#frame=N[&seed=S]` reference."""

    prompt: str
    """Shapes-world prompt to render."""
    frame: int
    """Frame index in a clip of SHAPES_REF_FRAMES frames."""
    seed: int = 0
    """Render seed."""


def parse_shapes_ref(ref: str) -> ShapesImageRef:
    """Parse a `shapes:` reference; ValueError with the reason if it is malformed or not in the grammar."""
    from vbench_suite.shapes.parse import parse_prompt

    m = _REF_PATTERN.match(ref)
    if m is None:
        raise ValueError(f"shapes reference must look like 'shapes:<prompt>#frame=N' (optionally '&seed=S'), "
                         f"got {shown(ref)}")
    prompt, frame = m["prompt"].strip(), int(m["frame"])
    if parse_prompt(prompt) is None:
        raise ValueError(f"{shown(prompt)} is not a shapes-world prompt (e.g. 'a red circle moves left on a black "
                         "background')")
    if frame >= SHAPES_REF_FRAMES:
        raise ValueError(f"frame must be 0..{SHAPES_REF_FRAMES - 1}, got {frame}")
    return ShapesImageRef(prompt, frame, int(m["seed"] or 0))


def resolve_image(ref: str, cache_dir: str | Path, resolution: tuple[int, int] = (64, 64)) -> Path:
    """Local PNG/JPEG for an image reference: a path is returned as is (it must exist); a `shapes:` reference is
    rendered at `resolution` (width, height) into `cache_dir` once and its PNG path returned.
    """
    if not ref.startswith(SHAPES_REF_PREFIX):
        path = Path(ref)
        if not path.is_file():
            raise ConfigError(f"conditioning image not found: {ref}")
        return path
    from PIL import Image

    from vbench_suite.shapes.parse import parse_prompt
    from vbench_suite.shapes.render import RENDERER_VERSION, render

    try:
        parsed = parse_shapes_ref(ref)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    width, height = int(resolution[0]), int(resolution[1])
    digest = hashlib.sha256(f"{RENDERER_VERSION}\x1f{ref}\x1f{width}x{height}".encode()).hexdigest()
    cache = Path(cache_dir)
    out = cache / f"shapes-{digest[:24]}.png"
    if out.is_file():
        return out
    spec = parse_prompt(parsed.prompt)
    assert spec is not None  # checked by parse_shapes_ref
    frame = render(spec, SHAPES_REF_FRAMES, (width, height), parsed.seed)[parsed.frame]
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    Image.fromarray(frame).save(tmp, format="PNG")
    os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------------- loading


class PromptSetErrors(PromptSetError):
    """Several problems in one prompt-set file. `errors` lists them in file order; `path`, `line`, `field` and
    `problem` are those of the first, so code that handles one `PromptSetError` still works. The message has a
    header line, then one line per problem (each cut to `MAX_ERROR_LINE_CHARS`, at most `MAX_LISTED_ERRORS`)."""

    def __init__(self, errors: list[PromptSetError]) -> None:
        ordered = sorted(errors, key=lambda e: (e.line is None, e.line or 0))
        first = ordered[0]
        super().__init__(first.path, first.line, first.field, first.problem)
        self.errors = ordered
        lines = [_clip(str(e)) for e in ordered[:MAX_LISTED_ERRORS]]
        if len(ordered) > MAX_LISTED_ERRORS:
            lines.append(f"... and {len(ordered) - MAX_LISTED_ERRORS} more problem(s)")
        self.args = (one_line(f"{first.path}: {len(ordered)} problems") + "\n" + "\n".join(lines),)

    def message_lines(self) -> list[str]:
        """The header line, then one line per listed problem."""
        return str(self).splitlines()


_TAG_NEEDS = {"int": "a whole number of at most 4,300 digits", "float": "a number", "bool": "true or false",
              "null": "null", "timestamp": "a date such as 2026-11-30 or 2026-11-30 12:00:00",
              "binary": "base64 text", "str": "a string", "seq": "a list", "map": "a mapping",
              "set": "a mapping of keys without values", "omap": "a list of one-key mappings",
              "pairs": "a list of one-key mappings"}
"""What a value with each YAML tag must look like (for the error when it does not)."""


class _LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, made safe for untrusted size as well as content: composing a node graph refuses (with a
    `PromptSetError` at the offending line) nesting deeper than `MAX_DEPTH`, a value longer than `MAX_VALUE_CHARS`,
    more than `MAX_ALIASES` aliases, an alias to a node that contains it, more than `MAX_VALUES` values once
    aliases are expanded, and any tag the safe constructor cannot build. Checks run as each node is read, so a
    hostile file stops at the first excess instead of after it has been expanded."""

    # '<<' (merge), '=' (value) and '!'/'&'/'*' (yaml) resolve to tags the safe constructor cannot build; in a
    # prompt set they are plain strings (and then an unknown key or a wrong value, reported as such)
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (
            "tag:yaml.org,2002:merge", "tag:yaml.org,2002:value", "tag:yaml.org,2002:yaml")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text)
        self.path = path
        self._depth = 0
        self._values = 0
        self._aliases = 0
        self._anchored_sizes: dict[str, int] = {}  # anchor -> values in its node, once it is complete
        self._fields: list[str | None] = []  # innermost key being read, to name the field of a refusal

    def refuse(self, mark: yaml.Mark | None, problem: str) -> PromptSetError:
        field = self._fields[-1] if self._fields else None
        return PromptSetError(self.path, mark.line + 1 if mark is not None else None, field, problem)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        # PyYAML passes a mapping value's key node as `index` (None for the key itself, an int in a list)
        self._fields.append(index.value if isinstance(index, yaml.ScalarNode) else
                            self._fields[-1] if self._fields else None)
        try:
            return self._compose_counted(parent, index)
        finally:
            self._fields.pop()

    def _compose_counted(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self.refuse(event.start_mark, f"nested more than {MAX_DEPTH} levels deep; a prompt set needs 4 "
                                                "(file, prompts, prompt, tags)")
        start = self._values
        self._add_values(1, event.start_mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_VALUE_CHARS:
            raise self.refuse(node.start_mark, f"a value of {len(node.value):,} characters (at most "
                                               f"{MAX_VALUE_CHARS:,}): {shown(node.value, 40)}")
        if node.tag not in self.yaml_constructors:
            raise self.refuse(node.start_mark, f"unknown YAML tag {shown(node.tag)}; prompt sets use plain "
                                               "strings, numbers, lists and mappings (remove the tag)")
        if event.anchor is not None:
            self._anchored_sizes[event.anchor] = self._values - start
        return node

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise self.refuse(event.start_mark, f"more than {MAX_ALIASES:,} aliases ('*name')")
        if event.anchor in self.anchors and event.anchor not in self._anchored_sizes:
            raise self.refuse(event.start_mark, f"alias *{shown(event.anchor, 40)[1:-1]} is used inside the value "
                                                "it names (a recursive structure)")
        self._add_values(self._anchored_sizes.get(event.anchor or "", 0), event.start_mark)

    def _add_values(self, count: int, mark: yaml.Mark) -> None:
        self._values += count
        if self._values > MAX_VALUES:
            raise self.refuse(mark, f"more than {MAX_VALUES:,} YAML values (counting each alias '*name' as the "
                                    "values it stands for); split the prompt set or write fewer aliases")


def _decode(path: Path, data: bytes) -> str:
    """The file's text; a `PromptSetError` at the line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = exc.start - line_start + 1
        field = _key_of_line(data[line_start:exc.start].decode("utf-8", "replace"))
        raise PromptSetError(str(path), line, field, f"byte 0x{data[exc.start]:02x} at column {column} is not UTF-8; "
                                                    "save the file as UTF-8") from None


_KEY_AT_LINE_START = re.compile(r"^[\s-]*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def _key_of_line(start_of_line: str) -> str | None:
    """The key a line begins with (`  - id: ...` -> 'id'), to name the field of a problem found before parsing."""
    m = _KEY_AT_LINE_START.match(start_of_line)
    return m.group(1) if m else None


_YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _check_printable(path: Path, text: str) -> None:
    """Raise a `PromptSetError` at the line of the first character YAML does not allow (control characters)."""
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is None:
        return
    before = text[:bad.start()]
    line = len(_YAML_LINE_BREAK.findall(before)) + 1
    line_start = max(before.rfind(c) for c in "\n\r\x85\u2028\u2029") + 1
    column = bad.start() - line_start + 1
    raise PromptSetError(str(path), line, _key_of_line(before[line_start:]),
                         f"control character U+{ord(bad.group()):04X} at column {column} is not allowed in YAML; "
                         "remove it (in a double-quoted string, write it as an escape such as \\x01)")


def _read_text(path: Path) -> str:
    """The file's text, refused up front when it is larger than `MAX_FILE_BYTES`, not UTF-8 or holds characters
    YAML does not allow."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise PromptSetError(str(path), None, None, f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise PromptSetError(str(path), None, None, f"file is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB, "
                                                    "too large for a prompt set; split it into several files")
    text = _decode(path, data)
    _check_printable(path, text)
    return text


def _compose(path: Path, text: str) -> yaml.Node | None:
    """The file's single YAML document as a node graph (None when empty), under `_LimitedLoader`'s limits."""
    loader = _LimitedLoader(text, str(path))
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise yaml_syntax_error(str(path), exc) from None
    except yaml.YAMLError as exc:
        raise PromptSetError(str(path), None, None, f"YAML error: {exc}") from None
    finally:
        loader.dispose()


def _clip(text: str) -> str:
    text = " ".join(text.split())  # a problem is one line, whatever its value held
    return text if len(text) <= MAX_ERROR_LINE_CHARS else text[:MAX_ERROR_LINE_CHARS - 1] + "…"


class _Reader:
    """Turns YAML nodes into checked Python values. Checks raise `PromptSetError` with the node's line; `collect`
    runs one check, records its error in `errors` and goes on, so a file's problems are all found in one pass."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._constructor = yaml.SafeLoader("")
        self.errors: list[PromptSetError] = []

    def collect(self, check: Callable[..., Any], *args: Any) -> Any:
        """`check(*args)`, or None after recording its `PromptSetError`."""
        try:
            return check(*args)
        except PromptSetError as exc:
            self.errors.append(exc)
            return None

    def note(self, error: PromptSetError) -> None:
        """Record a problem found without raising."""
        self.errors.append(error)

    def fail(self, node: yaml.Node | None, field: str | None, problem: str) -> PromptSetError:
        line = node.start_mark.line + 1 if node is not None else None
        return PromptSetError(str(self.path), line, field, problem)

    def value(self, node: yaml.Node, field: str | None = None, ctx: str = "") -> Any:
        """The Python value of `node`; a value its tag cannot build (`!!int abc`, `!!timestamp x`, bad base64, an
        integer of more than 4,300 digits) is a `PromptSetError` at the node's line."""
        try:
            return self._constructor.construct_object(node, deep=True)
        except Exception as exc:  # noqa: BLE001
            # PyYAML's constructors fail on odd values with whatever their code trips on (ValueError, KeyError,
            # IndexError for `!!int ''`, AttributeError for `!!timestamp x`): each is this node's value being
            # unreadable. A failed build leaves the constructor's bookkeeping half-done: start clean.
            self._constructor = yaml.SafeLoader("")
            kind = str(node.tag).rsplit(":", 1)[-1]
            needs = _TAG_NEEDS.get(kind) or (exc.problem if isinstance(exc, yaml.MarkedYAMLError) else None) \
                or f"a value its tag {shown(node.tag)} can build"
            shown_value = shown(node.value, 40) if isinstance(node, yaml.ScalarNode) else _kind(node)
            raise self.fail(node, field, f"{ctx}{shown_value} is not a valid !!{kind}: expected {needs} (to make "
                                         "it a string, quote it and drop any tag)") from None

    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...],
                report: bool = True) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Keys -> (key node, value node). A node that is not a mapping raises; unknown and duplicate keys are
        recorded (when `report`) with the key's name and left out."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, None, f"{what} must be a mapping of key: value, got {_kind(node)}")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            try:
                key = self.value(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            except PromptSetError as exc:
                if report:
                    self.note(exc)
                continue
            problem = None
            if not isinstance(key, str):
                problem = self.fail(key_node, None, f"{what} keys must be strings, got {_kind(key_node)}")
            elif key in out:
                first = out[key][0].start_mark.line + 1
                problem = self.fail(key_node, key, f"duplicate key in {what} (first given on line {first})")
            elif key not in allowed:
                problem = self.fail(key_node, key, f"unknown key in {what}; allowed keys: {', '.join(allowed)}")
            if problem is None:
                out[key] = (key_node, value_node)
            elif report:
                self.note(problem)
        return out

    def scalar(self, node: yaml.Node, field: str, ctx: str, types: tuple[type, ...], type_name: str) -> Any:
        value = self.value(node, field, ctx) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(node, yaml.ScalarNode) or isinstance(value, bool) and bool not in types \
                or not isinstance(value, types):
            got = _kind(node) if not isinstance(node, yaml.ScalarNode) else f"{type(value).__name__} {shown(value)}"
            raise self.fail(node, field, f"{ctx}must be {type_name}, got {got}")
        return value

    def text(self, node: yaml.Node, field: str, ctx: str = "", pattern: re.Pattern[str] | None = None) -> str:
        value = self.scalar(node, field, ctx, (str,), "a string (quote numbers, e.g. \"1.0\")")
        if not value.strip():
            raise self.fail(node, field, f"{ctx}must not be empty")
        if pattern is not None and not pattern.match(value):
            raise self.fail(node, field, f"{ctx}{shown(value)} must match {pattern.pattern}")
        return value.strip()

    def positive(self, node: yaml.Node, field: str, ctx: str = "") -> float:
        value = self.scalar(node, field, ctx, (int, float), "a number of seconds")
        if not value > 0:
            raise self.fail(node, field, f"{ctx}must be positive, got {shown(value)}")
        if not value <= MAX_DURATION_S:  # also refuses .inf (and an int too large for a float)
            raise self.fail(node, field, f"{ctx}must be at most {MAX_DURATION_S:g} seconds, got {shown(value)}")
        return float(value)

    def positive_int(self, node: yaml.Node, field: str, ctx: str = "") -> int:
        value = self.scalar(node, field, ctx, (int,), "a whole number")
        if not 0 < value <= MAX_FPS:
            raise self.fail(node, field, f"{ctx}must be between 1 and {MAX_FPS}, got {shown(value)}")
        return int(value)

    def mode(self, node: yaml.Node, field: str, ctx: str = "") -> str:
        value = self.scalar(node, field, ctx, (str,), "a string")
        if value not in MODES:
            raise self.fail(node, field, f"{ctx}must be one of {', '.join(MODES)}, got {shown(value)}")
        return value

    def resolution(self, node: yaml.Node, field: str) -> tuple[int, int]:
        value = self.value(node, field)
        if isinstance(value, str) and re.fullmatch(r"\s*\d{1,9}\s*x\s*\d{1,9}\s*", value):
            w, h = (int(v) for v in value.lower().split("x"))
        elif isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value):
            w, h = value
        else:
            raise self.fail(node, field, f"must be WIDTHxHEIGHT (e.g. 1280x720) or [width, height], "
                                         f"got {shown(value)}")
        if not (0 < w <= MAX_SIDE_PX and 0 < h <= MAX_SIDE_PX):
            raise self.fail(node, field, f"width and height must be between 1 and {MAX_SIDE_PX}, "
                                         f"got {shown(w, 20)}x{shown(h, 20)}")
        return (w, h)

    def tags(self, node: yaml.Node, field: str, ctx: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field, f"{ctx}must be a list of strings, got {_kind(node)}")
        return tuple(self.text(n, field, ctx) for n in node.value)

    def image_ref(self, node: yaml.Node, field: str, ctx: str) -> str:
        ref = self.text(node, field, ctx)
        if ref.startswith(SHAPES_REF_PREFIX):
            try:
                parse_shapes_ref(ref)
            except ValueError as exc:
                raise self.fail(node, field, f"{ctx}{exc}") from None
            return ref
        try:
            path = (self.path.parent / ref).resolve()
            found = path.is_file()
        except (OSError, ValueError) as exc:  # a name too long for the OS, a NUL byte, a symlink loop
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise self.fail(node, field, f"{ctx}{shown(ref)} is not a usable file path ({reason}); paths are "
                                         "relative to the YAML file, or use 'shapes:<prompt>#frame=N'") from None
        if not found:
            raise self.fail(node, field, f"{ctx}image file not found: {shown(str(path), 200)[1:-1]} (paths are "
                                         "relative to the YAML file; or use 'shapes:<prompt>#frame=N')")
        return str(path)


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return shown(node.value)


def load_prompt_set(path: str | Path) -> PromptSet:
    """Read and validate one prompt-set file. Raises `PromptSetError` (file, line, field) for one problem, and
    `PromptSetErrors` listing every problem when there are several."""
    path = Path(path)
    root = _compose(path, _read_text(path))
    r = _Reader(path)
    if root is None:
        raise PromptSetError(str(path), None, None, "file is empty; expected name, version and prompts")
    top = r.mapping(root, "the prompt set", _TOP_KEYS)
    for required in ("name", "version", "prompts"):
        if required not in top:
            r.note(r.fail(root, required, "missing required key"))

    def top_text(key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        if key not in top or (key == "fvd_reference" and _is_null(top[key][1])):
            return None
        return r.collect(r.text, top[key][1], key, "", pattern)

    name, version = top_text("name", _ID_PATTERN), top_text("version")
    description, fvd_reference = top_text("description") or "", top_text("fvd_reference")

    defaults = dict(BUILTIN_DEFAULTS)
    if "defaults" in top:
        d = r.collect(r.mapping, top["defaults"][1], "defaults", _DEFAULT_KEYS) or {}
        readers: dict[str, Callable[[yaml.Node, str], Any]] = {
            "duration_s": r.positive, "fps": r.positive_int, "resolution": r.resolution, "mode": r.mode}
        for key, (_, value_node) in d.items():
            value = r.collect(readers[key], value_node, key)
            if value is not None:
                defaults[key] = value

    items = _read_items(r, top["prompts"][1], defaults) if "prompts" in top else []
    if len(r.errors) == 1:
        raise r.errors[0]
    if r.errors:
        raise PromptSetErrors(r.errors)
    assert name is not None and version is not None  # else an error was recorded above
    return PromptSet(name=name, version=version, description=description, items=tuple(items),
                     fvd_reference=fvd_reference, fps=defaults["fps"], resolution=defaults["resolution"],
                     default_duration_s=defaults["duration_s"], default_mode=defaults["mode"], path=str(path))


def yaml_syntax_error(path: str, exc: yaml.MarkedYAMLError) -> PromptSetError:
    """A YAML syntax error located where the problem starts.

    PyYAML marks where it noticed the problem (`problem_mark`: for an unclosed quote, the end of the file) and, for
    some errors, where the construct it was reading began (`context_mark`). For a quoted scalar, a token or a flow
    collection ('while scanning ...', 'while parsing a flow ...') that beginning is the line to fix (the opening
    quote or bracket); for block collections it is only the enclosing mapping, so the problem mark is kept.
    """
    problem = exc.problem or str(exc)
    context, start, seen = exc.context or "", exc.context_mark, exc.problem_mark
    starts_there = start is not None and (context.startswith("while scanning") or
                                          context.startswith("while parsing a flow"))
    if starts_there and start is not None:
        where = f" (noticed on line {seen.line + 1})" if seen is not None and seen.line != start.line else ""
        hint = {"quoted scalar": "; is a closing quote missing?", "flow": "; is a closing bracket missing?"}
        extra = next((h for k, h in hint.items() if k in context), "")
        return PromptSetError(path, start.line + 1, None,
                              f"YAML syntax error: {context} that starts at column {start.column + 1}: "
                              f"{problem}{where}{extra}")
    mark = seen or start
    line = mark.line + 1 if mark is not None else None
    return PromptSetError(path, line, None, f"YAML syntax error: {problem}")


def _read_items(r: _Reader, prompts_node: yaml.Node, defaults: dict[str, Any]) -> list[PromptItem]:
    """Every readable item of `prompts`; problems (including duplicate ids) are recorded in `r.errors`."""
    if not isinstance(prompts_node, yaml.SequenceNode) or not prompts_node.value:
        r.note(r.fail(prompts_node, "prompts", "must be a non-empty list of prompt mappings"))
        return []
    items: list[PromptItem] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(prompts_node.value):
        item = r.collect(_read_item, r, node, index, defaults)
        if item is None:
            continue
        if item.id in seen:
            id_node = r.mapping(node, "a prompt", _ITEM_KEYS, report=False)["id"][1]
            r.note(r.fail(id_node, "id", f"duplicate prompt id {shown(item.id)} (first used on line "
                                         f"{seen[item.id]})"))
            continue
        seen[item.id] = item.line
        items.append(item)
    return items


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _read_item(r: _Reader, node: yaml.Node, index: int, defaults: dict[str, Any]) -> PromptItem | None:
    """One prompt, or None when it has problems (each recorded in `r.errors`; a non-mapping item raises)."""
    from vbench_suite.shapes.parse import parse_prompt

    before = len(r.errors)
    fields = r.mapping(node, f"prompt #{index + 1}", _ITEM_KEYS)
    for required in ("id", "text", "category"):
        if required not in fields:
            r.note(r.fail(node, required, f"missing required key in prompt #{index + 1}"))
    item_id = r.collect(r.text, fields["id"][1], "id", f"(prompt #{index + 1}) ", _ID_PATTERN) \
        if "id" in fields else None
    ctx = f"(prompt {shown(item_id, 40)}) " if item_id else f"(prompt #{index + 1}) "

    def opt(key: str, read: Callable[[yaml.Node, str, str], Any]) -> Any:
        if key not in fields or _is_null(fields[key][1]):
            return None
        return r.collect(read, fields[key][1], key, ctx)

    text = r.collect(r.text, fields["text"][1], "text", ctx) if "text" in fields else None
    category = r.collect(r.text, fields["category"][1], "category", ctx, _CATEGORY_PATTERN) \
        if "category" in fields else None
    given_mode = opt("mode", r.mode)
    mode_unreadable = given_mode is None and "mode" in fields and not _is_null(fields["mode"][1])
    mode = given_mode or defaults["mode"]
    duration = opt("duration_s", r.positive) or defaults["duration_s"]
    tags = opt("tags", r.tags) or ()
    presenter = opt("presenter", r.text)
    # with an unreadable mode (already reported) the conditioning keys cannot be judged
    conditioning_ok = not mode_unreadable and r.collect(_check_conditioning, r, node, fields, mode, ctx) is not None
    image = opt("image", r.image_ref) if conditioning_ok else None
    first_frame = opt("first_frame", r.image_ref) if conditioning_ok else None
    last_frame = opt("last_frame", r.image_ref) if conditioning_ok else None
    if len(r.errors) > before or item_id is None or text is None or category is None:
        return None
    return PromptItem(id=item_id, text=text, category=category, mode=mode, duration_s=float(duration), tags=tags,
                      image=image, first_frame=first_frame, last_frame=last_frame, presenter=presenter,
                      shapes=parse_prompt(text) is not None, line=node.start_mark.line + 1)


def _check_conditioning(r: _Reader, node: yaml.Node, fields: dict[str, tuple[yaml.Node, yaml.Node]], mode: str,
                        ctx: str) -> bool:
    """Raise if the item's conditioning keys do not fit its mode (checked before any image file is looked at)."""

    def given(key: str) -> bool:
        return key in fields and not _is_null(fields[key][1])

    def where(key: str) -> yaml.Node:
        return fields[key][1] if key in fields else node

    mode_node = where("mode")
    if mode in ("i2v", "hybrid"):
        if not given("image"):
            raise r.fail(mode_node, "image",
                         f"{ctx}mode {mode!r} needs an image (a path or 'shapes:<prompt>#frame=N')")
        for key in ("first_frame", "last_frame"):
            if key in fields:
                raise r.fail(where(key), key, f"{ctx}only allowed in mode 'keyframes', not {mode!r}")
    elif mode == "keyframes":
        if not given("first_frame"):
            raise r.fail(mode_node, "first_frame", f"{ctx}mode 'keyframes' needs a first_frame")
        if "image" in fields:
            raise r.fail(where("image"), "image", f"{ctx}not used in mode 'keyframes' (use first_frame/last_frame)")
    else:
        for key in ("image", "first_frame", "last_frame"):
            if key in fields:
                raise r.fail(where(key), key, f"{ctx}conditioning images need mode i2v, hybrid or keyframes, "
                                               f"not {mode!r}")
    return True


# ---------------------------------------------------------------------------------------------------- lookup


def shipped_suites_dir() -> Path:
    """The repository's `prompt_sets/` folder."""
    return Path(vbench_suite.__file__).resolve().parent.parent / "prompt_sets"


def _search_dirs() -> list[Path]:
    dirs = []
    extra = os.environ.get(SUITES_ENV)
    if extra:
        dirs.append(Path(extra))
    dirs.append(shipped_suites_dir())
    return dirs


def _suite_files() -> dict[str, Path]:
    """Suite name -> file, earlier search folders winning."""
    found: dict[str, Path] = {}
    for folder in _search_dirs():
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.suffix in (".yaml", ".yml") and file.is_file():
                found.setdefault(file.stem, file)
    return found


def available_suites() -> list[str]:
    """Names of the suites in $VBENCH_PROMPT_SETS and the shipped `prompt_sets/` folder."""
    return sorted(_suite_files())


def load_suite(name_or_path: str | Path) -> PromptSet:
    """Load a suite by name ($VBENCH_PROMPT_SETS first, then `prompt_sets/`) or by path to a .yaml file.

    Unknown names raise `UnknownNameError`; malformed files raise `PromptSetError`.
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        path = Path(text)
        try:
            found = path.is_file()
        except (OSError, ValueError):  # a name too long for the OS, a NUL byte
            found = False
        if not found:
            raise ConfigError(f"prompt-set file not found: {shown(str(path), 200)[1:-1]}")
        return load_prompt_set(path)
    files = _suite_files()
    if text not in files:
        raise UnknownNameError("suite", text, files)
    return load_prompt_set(files[text])
