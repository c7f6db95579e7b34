"""Typed user-facing errors. The CLI turns any `UserError` into one line on stderr and exit code 2."""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

MAX_LINE_CHARS = 500
"""A user-error line printed by the CLI is cut to this many characters (the middle goes), so that no input value,
however long, can flood the terminal."""
MAX_SHOWN_CHARS = 80
"""A user value echoed inside a message is cut to about this many characters (see `shown`)."""

# C0/C1 controls, DEL, line/paragraph separators, lone surrogates (undecodable file names): never printed raw
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def one_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """`text` as one printable line of at most `limit` characters: a line break or tab becomes a space, any other
    control character (or lone surrogate) is written as its escape (e.g. `\\x01`), and an overlong text loses its
    middle (marked `…`), keeping the start (file, line, field) and the end (usually the fix)."""
    text = _UNPRINTABLE.sub(_escape, text)
    if len(text) <= limit:
        return text
    marker = " … "
    head = (limit - len(marker)) * 2 // 3
    tail = limit - len(marker) - head
    return text[:head] + marker + (text[-tail:] if tail > 0 else "")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t\x0b\x0c\x85\u2028\u2029":
        return " "
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """`repr(value)` for a message, cut to about `limit` characters; a cut string says how long it was."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    if isinstance(value, int) and value.bit_length() > 4 * limit:
        # Python refuses to print an int of more than 4,300 digits (and YAML's 0x... or 1:2:3 forms can make one)
        return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, unknown name). Message names the problem and the fix."""

    exit_code = 2

    def message_lines(self) -> list[str]:
        """The lines the CLI prints for this error (each is then passed through `one_line`). One line, unless a
        subclass lists several problems on purpose."""
        return [str(self)]


class ConfigError(UserError):
    """Invalid configuration value or unknown configuration key."""


class PromptSetError(UserError):
    """A prompt-set file is malformed. The message names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        # a field is a key of the file, so it can be anything: shorten it like any other echoed value
        what = f" field '{field if len(field) <= MAX_SHOWN_CHARS else field[:MAX_SHOWN_CHARS] + '…'}'" \
            if field else ""
        super().__init__(one_line(f"{where}:{what} {problem}"))
        self.path, self.line, self.field, self.problem = path, line, field, problem


class UnknownNameError(UserError):
    """An unknown backend / suite / metric name, with 'did you mean' suggestions."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        available = sorted(available)
        close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        super().__init__(f"Unknown {kind} '{name}'.{hint} Available: {', '.join(available)}")
        self.kind, self.name, self.available = kind, name, available


class VideoError(UserError):
    """A video file cannot be used (corrupt, truncated, empty, too short, wrong format)."""


class BackendNotConfigured(UserError):
    """A backend cannot run here (missing API key, missing weights). The message says what to set."""


class MetricUnavailable(Exception):
    """A metric cannot run here (e.g. CLIP weights not present). Not fatal: the run records it as unavailable."""
