"""`vbench-suite probe --backend NAME --out DIR`: the reproducibility probe on its own. Generates the first N prompts
of a suite (or resumes DIR), sends each again with the same request and seed, and classifies the backend as
bit-exact, seed-faithful within noise or non-deterministic (recorded in DIR/run.json and shown in its report)."""
from __future__ import annotations

import argparse
from pathlib import Path

from vbench_suite.cli.options import non_negative_float, parse_backend_options, positive_int

DEFAULT_PROMPTS = 3


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("probe", help="reproducibility probe: same request and seed twice, per backend",
                       description="Generate the first --prompts prompts of --suite with each backend (paid APIs: "
                                   "2 x N requests, within --budget-usd), replay them with the same seed and "
                                   "classify each backend: bit-exact, seed-faithful within noise, non-deterministic.")
    p.add_argument("--backend", action="append", dest="backends", metavar="NAME", required=True)
    p.add_argument("--out", type=Path, required=True, help="run folder (created, or resumed)")
    p.add_argument("--suite", default="canary", help="prompt set (default canary)")
    p.add_argument("--prompts", type=positive_int, default=DEFAULT_PROMPTS,
                   help=f"prompts replayed per backend (default {DEFAULT_PROMPTS})")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--budget-usd", type=non_negative_float, default=None, help="spending cap, replays included")
    p.add_argument("--option", action="append", default=[], metavar="BACKEND.KEY=VALUE", help="backend option")
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.cli.run import _validate_names
    from vbench_suite.runner import RunConfig, run_benchmark
    from vbench_suite.store.run_folder import RunFolder

    config = RunConfig(suite=args.suite, backends=tuple(dict.fromkeys(args.backends)), out=args.out,
                       seed=args.seed, budget_usd=args.budget_usd, limit=args.prompts, score=False, reuse="never",
                       probe=args.prompts, backend_options=parse_backend_options(args.option))
    _validate_names(config)
    outcome = run_benchmark(config)
    probes = RunFolder(outcome.run_dir).read_meta().get("probe") or {}
    for b, why in sorted(outcome.skipped_backends.items()):
        print(f"skipped backend {b}: {why}")
    for backend, probe in sorted(probes.items()):
        print(f"{backend}: {probe.get('class')} ({probe.get('reason')})")
    print(f"run folder: {outcome.run_dir}")
    return 0
