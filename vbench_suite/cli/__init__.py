"""`vbench-suite` command line. Each subcommand lives in its own module exposing:

    add_parser(subparsers) -> argparse.ArgumentParser   # registers the subcommand; must not import torch
    run(args: argparse.Namespace) -> int                 # does the work; returns the exit code

User errors (`vbench_suite.errors.UserError`) become one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vbench_suite import __version__
from vbench_suite.errors import UserError

# Order here is the order in `--help`.
COMMAND_MODULES: tuple[str, ...] = (
    "run", "generate", "list", "validate", "score", "report", "breakeven", "fake-vendors", "train-dit",
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"vbench-suite: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vbench-suite: interrupted; finished results are on disk, run the same command again to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
