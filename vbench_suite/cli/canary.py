"""`vbench-suite canary --backend NAME`: the scheduled drift check. Runs the versioned canary suite (fixed seeds, a
new measurement every time, its own budget cap, a reproducibility probe), indexes the run like any other, compares
it with the previous canary run of the same backends, and exits 0 (nothing drifted) or 3 (drift found); 2 for a
user error. See docs/drift.md for a cron example."""
from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from vbench_suite.cli.options import non_negative_float, parse_backend_options, positive_int
from vbench_suite.cli.options import significance_level

CANARY_SUITE = "canary"
CANARY_SEED = 0
"""Run seed of every canary run: the same per-sample seeds each time, so same-seed outputs can be paired."""
DEFAULT_RUNS_DIR = Path("runs") / "canary"
CANARY_METRICS = "shapes_adherence,lpips_temporal"
"""Cheap per-video metrics; the drift tests themselves (I3D features, LPIPS of same-seed pairs) always run."""
PROBE_PROMPTS = 3
"""Replays per backend (the drift test's noise floor; `drift.probe.DEFAULT_PROBE_PROMPTS`)."""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("canary", help="scheduled drift check of backends on the canary suite (exit 3: drift)",
                       description="Run the canary prompt set (fixed seeds, measured anew: nothing is reused from "
                                   "earlier runs) with a reproducibility probe, then compare with the previous canary "
                                   "run: exit 0 when nothing drifted, 3 when a backend whose declared model did not "
                                   "change shows a change (its output, quality, failure/refusal rate, latency or "
                                   "cost), 2 for a user error. Meant for cron; see docs/drift.md.")
    p.add_argument("--backend", action="append", dest="backends", metavar="NAME", required=True,
                   help="backend to check (repeatable)")
    p.add_argument("--budget-usd", type=non_negative_float, default=None,
                   help="this canary run's spending cap (probe replays included)")
    p.add_argument("--against", default="auto", metavar="RUN|auto|none",
                   help="baseline: a run folder or indexed run name/id; auto (default): the latest earlier canary "
                        "run of the same prompt-set version with these backends; none: only run")
    p.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS_DIR,
                   help=f"where canary run folders go (default {DEFAULT_RUNS_DIR}; the index is index.sqlite there)")
    p.add_argument("--out", type=Path, default=None,
                   help="run folder (default RUNS_DIR/<UTC date>-<backends>: the same day's command resumes it)")
    p.add_argument("--suite", default=CANARY_SUITE, help=f"prompt set (default {CANARY_SUITE})")
    p.add_argument("--samples", type=positive_int, default=1, help="samples per prompt (default 1)")
    p.add_argument("--probe", type=int, default=PROBE_PROMPTS, metavar="N",
                   help=f"prompts replayed per backend for the reproducibility probe (default {PROBE_PROMPTS}; "
                        "0: none)")
    p.add_argument("--metrics", default=CANARY_METRICS, help=f"per-video metrics (default {CANARY_METRICS})")
    p.add_argument("--alpha", type=significance_level, default=0.05, help="family-wise error rate of the verdicts (Holm)")
    p.add_argument("--option", action="append", default=[], metavar="BACKEND.KEY=VALUE", help="backend option")
    p.add_argument("--concurrency", type=positive_int, default=None, help="requests in flight per backend")
    p.add_argument("--index", type=Path, default=None, help="SQLite index (default: index.sqlite in --runs-dir)")
    p.add_argument("--report-dir", type=Path, default=None, help="report folder (default reports/<run name>/)")
    return p


def default_out(runs_dir: Path, backends: list[str], now: datetime | None = None) -> Path:
    """RUNS_DIR/<UTC date>-<backend>[+<backend>...] (a second canary of the same day resumes the first)."""
    now = now or datetime.now(timezone.utc)
    return runs_dir / f"{now:%Y-%m-%d}-{'+'.join(sorted(set(backends)))}"


def run(args: argparse.Namespace) -> int:
    from vbench_suite.errors import ConfigError
    from vbench_suite.runner import RunConfig, run_benchmark

    if args.probe < 0:
        raise ConfigError(f"--probe must be 0 or more, got {args.probe}")
    backends = list(dict.fromkeys(args.backends))
    out = args.out or default_out(args.runs_dir, backends)
    index = args.index or (out.resolve().parent / "index.sqlite")
    from vbench_suite.cli.run import _validate_names

    config = RunConfig(suite=args.suite, backends=tuple(backends), out=out, samples=args.samples, seed=CANARY_SEED,
                       budget_usd=args.budget_usd, concurrency=args.concurrency,
                       metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()) or None,
                       backend_options=parse_backend_options(args.option), index_path=index, reuse="never",
                       probe=args.probe)
    _validate_names(config)
    outcome = run_benchmark(config)
    print(f"canary run: {outcome.run_dir}")
    for b, why in sorted(outcome.skipped_backends.items()):
        print(f"skipped backend {b}: {why}")
    return compare_with_baseline(outcome.run_dir, args.against, backends, index, args.alpha, args.report_dir)


def compare_with_baseline(run_dir: Path, against: str, backends: list[str], index: Path, alpha: float,
                          report_dir: Path | None) -> int:
    """Compare the new canary run with its baseline and print the verdict; returns the exit code."""
    from vbench_suite.drift.check import check
    from vbench_suite.drift.history import find_run, previous_run
    from vbench_suite.report.build import write_report
    from vbench_suite.store.run_folder import RunFolder

    meta = RunFolder(run_dir).read_meta()
    for backend, probe in sorted((meta.get("probe") or {}).items()):
        print(f"reproducibility of {backend}: {probe.get('class')} ({probe.get('reason')})")
    if against == "none":
        print(f"report: {write_report(run_dir, report_dir, index_path=index)}")
        return 0
    if against == "auto":
        base = previous_run(index, find_run(index, meta["run_id"]), tuple(backends))
        if base is None:
            print("no earlier canary run of this prompt-set version with these backends: nothing to compare yet "
                  "(this run is the baseline of the next one)")
            print(f"report: {write_report(run_dir, report_dir, index_path=index)}")
            return 0
        baseline: str | Path = base.path if base.path.is_dir() else base.run_id
        print(f"baseline: {base.name} ({base.created:%Y-%m-%d %H:%M} UTC)")
    else:
        baseline = against
    outcome = check(run_dir, baseline, backends=backends, alpha=alpha, index_path=index, out_dir=report_dir)
    for line in outcome.lines:
        print(line)
    print(f"report: {outcome.report}")
    print("drift found" if outcome.exit_code else "nothing drifted")
    return outcome.exit_code
