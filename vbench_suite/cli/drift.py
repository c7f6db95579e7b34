"""`vbench-suite drift --backend NAME --since DATE [--until DATE]`: did a backend's output change while its declared
model did not? Compares the first and the last indexed run of the backend in the window (or two given runs) with
the drift tests; exits 0 (no drift), 3 (drift found) or 2 (user error, e.g. fewer than two runs)."""
from __future__ import annotations

import argparse
from pathlib import Path

from vbench_suite.cli.options import significance_level

DEFAULT_INDEX = Path("runs") / "canary" / "index.sqlite"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("drift", help="did a backend's output change while its declared model did not? (exit 3: yes)",
                       description="Choose the earliest and the latest run of --backend in the window from the run "
                                   "index (the earliest with the latest run's prompt-set version and declared model), "
                                   "or take --current/--baseline, run the drift tests and write the comparison report. "
                                   "Exit 0: no drift; 3: drift found; 2: user error.")
    p.add_argument("--backend", action="append", dest="backends", metavar="NAME", required=True,
                   help="backend to check (repeatable with --current/--baseline; one with --since/--until)")
    p.add_argument("--since", default=None, help="window start: YYYY-MM-DD (UTC), an ISO time, or Nd (N days ago)")
    p.add_argument("--until", default=None, help="window end (inclusive): YYYY-MM-DD, an ISO time, or Nd")
    p.add_argument("--suite", default="canary", help="only runs of this prompt set (default canary; 'any': all)")
    p.add_argument("--current", default=None, metavar="RUN", help="compare this run ... (folder, or name/id)")
    p.add_argument("--baseline", default=None, metavar="RUN", help="... against this one")
    p.add_argument("--index", type=Path, default=DEFAULT_INDEX, help=f"run index (default {DEFAULT_INDEX})")
    p.add_argument("--alpha", type=significance_level, default=0.05, help="family-wise error rate of the verdicts (Holm)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="report folder (default reports/<run>/)")
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.drift.check import check
    from vbench_suite.drift.history import parse_when, window
    from vbench_suite.errors import ConfigError

    if (args.current is None) != (args.baseline is None):
        raise ConfigError("give both --current and --baseline, or neither (then --since/--until choose the runs)")
    if args.current is not None:
        current, baseline = args.current, args.baseline
    else:
        if len(set(args.backends)) != 1:
            raise ConfigError("with --since/--until give exactly one --backend (each backend has its own runs)")
        since = parse_when(args.since) if args.since else None
        until = parse_when(args.until, end_of_day=True) if args.until else None
        found = window(args.index, args.backends[0], since, until, None if args.suite == "any" else args.suite)
        for line in found.declared_changes:
            print(line)
        print(f"comparing {found.current.name} ({found.current.created:%Y-%m-%d %H:%M} UTC) with "
              f"{found.baseline.name} ({found.baseline.created:%Y-%m-%d %H:%M} UTC), {len(found.runs)} run(s) in "
              "the window")
        current = found.current.path if found.current.path.is_dir() else found.current.run_id
        baseline = found.baseline.path if found.baseline.path.is_dir() else found.baseline.run_id
    index = args.index if args.index.is_file() else None
    outcome = check(current, baseline, backends=args.backends, alpha=args.alpha, index_path=index, out_dir=args.out)
    for line in outcome.lines:
        print(line)
    print(f"report: {outcome.report}")
    print("drift found" if outcome.exit_code else "nothing drifted")
    return outcome.exit_code
