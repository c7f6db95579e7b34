"""`vbench-suite validate FILE`: check a prompt-set file. Every problem of the file is listed, one line each naming
the file, line and field (`suites.PromptSetErrors`), and the exit code is 2."""
from __future__ import annotations

import argparse
from collections import Counter


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("validate", help="check a prompt-set YAML file",
                       description="Load and validate a prompt set. Every problem in the file is listed, one line "
                                   "each naming the file, line and field; exit code 2 when there is any.")
    p.add_argument("file", help="path to a prompt-set YAML file (or a suite name)")
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.suites import load_suite

    suite = load_suite(args.file)
    categories = Counter(item.category for item in suite.items)
    modes = Counter(item.mode for item in suite.items)
    print(f"{suite.path or args.file}: OK — suite '{suite.name}' version {suite.version}, {len(suite.items)} prompts")
    print("  categories: " + ", ".join(f"{c}={n}" for c, n in sorted(categories.items())))
    print("  modes:      " + ", ".join(f"{m}={n}" for m, n in sorted(modes.items())))
    return 0
