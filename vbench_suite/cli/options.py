"""Argument types shared by subcommands (argparse converters raise ArgumentTypeError → usage error, exit 2)."""
from __future__ import annotations

import argparse
import json
from typing import Any

from vbench_suite.errors import ConfigError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (money, hours, seconds: 'inf' and 'nan' are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def significance_level(text: str) -> float:
    """--alpha: a family-wise error rate strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--alpha must be a number in (0, 1), got '{text}'") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"--alpha must be in (0, 1), got {value}")
    return value


def parse_value(text: str) -> Any:
    """'20' -> 20, '7.5' -> 7.5, 'true' -> True, '"x"' / 'x' -> 'x'."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_backend_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """['dit-local.steps=20'] -> {'dit-local': {'steps': 20}}."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        head, sep, value = item.partition("=")
        backend, dot, key = head.rpartition(".")
        if not sep or not dot or not backend or not key:
            raise ConfigError(f"--option {item!r} is not BACKEND.KEY=VALUE (e.g. dit-local.steps=20)")
        out.setdefault(backend, {})[key.replace("-", "_")] = parse_value(value)
    return out
