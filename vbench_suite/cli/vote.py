"""`vbench-suite vote RUN_DIR [--port N] [--rater NAME] [--seed N]`: blind pairwise voting on a run's videos in a
local web page; votes go to RUN_DIR/votes.jsonl and into the report's "Human preference" section."""
from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from vbench_suite.errors import UserError

DEFAULT_PORT = 8765
"""Must equal `vbench_suite.votes.server.DEFAULT_PORT` (not imported: `--help` stays light)."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port must be a number from 0 to 65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be from 0 to 65535, got {value}")
    return value


def _default_rater() -> str:
    try:
        return getpass.getuser() or "anonymous"
    except (KeyError, OSError):  # no login name (e.g. a container user without a passwd entry)
        return "anonymous"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `vote`."""
    p = subparsers.add_parser(
        "vote", help="blind pairwise human preference votes on a run's videos (local web page)",
        description="Serve a page on 127.0.0.1 that shows two videos of the same prompt from two backends, blind "
                    "and in random order, and records which one the rater prefers (left, right, tie, both bad) in "
                    "RUN_DIR/votes.jsonl. Pairs are chosen least-voted first, balancing backends and prompts. "
                    "`vbench-suite report RUN_DIR` then shows Bradley-Terry ratings beside the automatic metrics. "
                    "Safe while a `run` resumes into the same folder.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="run folder written by `vbench-suite run`")
    p.add_argument("--port", type=_port, default=DEFAULT_PORT,
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--rater", default=None, metavar="NAME",
                   help="rater name stored with each vote (default: your login name; editable on the page)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the pair order and of which side each video is shown on, combined with the "
                        "number of votes already stored (default 0)")
    return p


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; print the page's address first."""
    from vbench_suite.votes.server import VoteServer, VoteSession

    if not Path(args.run_dir).is_dir():
        raise UserError(f"run folder '{args.run_dir}' does not exist; pass the --out folder of a `vbench-suite run`")
    session = VoteSession(args.run_dir, args.rater if args.rater is not None else _default_rater(), args.seed)
    server = VoteServer(session, args.port)
    print(f"Blind voting on {args.run_dir}: {len(session.pairs)} pairs of videos from "
          f"{', '.join(session.backends())}.", flush=True)
    print(f"Open {server.url} in a browser (Ctrl-C stops; every vote is saved as it is cast).", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"Stopped: {session.votes_cast} vote(s) this session, stored in {Path(args.run_dir) / 'votes.jsonl'}. "
          f"See them with: vbench-suite report {args.run_dir}", flush=True)
    return 0
