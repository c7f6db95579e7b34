"""Typed user-facing errors. The CLI turns any `UserError` into one line on stderr and exit code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, unknown name). Message names the problem and the fix."""

    exit_code = 2


class ConfigError(UserError):
    """Invalid configuration value or unknown configuration key."""


class PromptSetError(UserError):
    """A prompt-set file is malformed. The message names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {problem}".replace(": ", ": ", 1))
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
