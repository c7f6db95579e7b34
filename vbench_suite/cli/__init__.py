"""`vbench-suite` command line. Each subcommand lives in its own module exposing:

    add_parser(subparsers) -> argparse.ArgumentParser   # registers the subcommand; must not import torch
    run(args: argparse.Namespace) -> int                 # does the work; returns the exit code

User errors (`vbench_suite.errors.UserError`) become one line on stderr and exit code 2, never a traceback.
(An error that lists several problems on purpose, like `suites.PromptSetErrors`, prints one line per problem.)
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vbench_suite import __version__
from vbench_suite.errors import UserError, one_line

# Order here is the order in `--help`.
COMMAND_MODULES: tuple[str, ...] = (
    "run", "generate", "list", "validate", "score", "report", "breakeven", "fake-vendors", "train-dit",
    "compare-videos", "vote", "canary", "drift", "probe",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vbench-suite",
        description="Benchmark AI video generators side by side: quality, latency, cost per 10 s, regressions.")
    parser.add_argument("--version", action="version", version=f"vbench-suite {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"vbench_suite.cli.{name.replace('-', '_')}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


MAX_ERROR_LINES = 60
"""At most this many lines of one user error are printed."""


def print_user_error(exc: UserError) -> None:
    """Print `exc` on stderr after 'vbench-suite: error: ': each of its lines flattened and bounded by
    `errors.one_line` (control characters escaped, at most `errors.MAX_LINE_CHARS` characters), whatever the
    message holds, so an input value can neither flood the terminal nor forge extra lines."""
    lines = exc.message_lines() or [type(exc).__name__]
    if len(lines) > MAX_ERROR_LINES:
        lines = lines[:MAX_ERROR_LINES - 1] + [f"... and {len(lines) - MAX_ERROR_LINES + 1} more line(s)"]
    print("vbench-suite: error: " + "\n".join(one_line(line) for line in lines), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print_user_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vbench-suite: interrupted; finished results are on disk, run the same command again to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
