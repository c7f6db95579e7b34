"""`vbench-suite run`: benchmark backends on a prompt suite (resumable)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from vbench_suite.cli.options import non_negative_float, parse_backend_options, positive_int
from vbench_suite.device import DEVICE_CHOICES

PROBE_DEFAULT = 3
"""Must equal `vbench_suite.drift.probe.DEFAULT_PROBE_PROMPTS` (not imported: `--help` stays light)."""
REUSE_CHOICES = ("never", "local", "all")
"""Must equal `vbench_suite.runner.generate.REUSE_POLICIES` (not imported: `--help` stays light)."""
ENGINE_CHOICES = ("local", "ray")
"""Must equal `vbench_suite.runner.engines.ENGINES` (not imported: that imports the runner; tested)."""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="benchmark backends on a prompt suite (run again to resume)",
                       description="Generate every prompt of a suite with each backend, score the videos and write "
                                   "a summary. Killing it and running the same command again resumes without "
                                   "regenerating (or re-paying for) finished work.")
    p.add_argument("--suite", default="smoke", help="suite name (see `list suites`) or path to a suite YAML")
    p.add_argument("--backend", action="append", dest="backends", metavar="NAME",
                   help="backend to benchmark (repeatable; see `list backends`); default: dit-local")
    p.add_argument("--samples", type=positive_int, default=1, help="samples per prompt (default 1)")
    p.add_argument("--seed", type=int, default=0, help="run seed; per-sample seeds derive from it (default 0)")
    p.add_argument("--out", type=Path, required=True, help="run folder (created, or resumed if it exists)")
    p.add_argument("--budget-usd", type=non_negative_float, default=None,
                   help="stop submitting paid requests before total cost could exceed this (0: never pay)")
    p.add_argument("--concurrency", type=positive_int, default=None,
                   help="requests in flight per backend (default: each backend's own limit)")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics (see `list metrics`); default: every available one")
    p.add_argument("--no-score", dest="score", action="store_false", help="generate only, skip scoring")
    p.add_argument("--no-report", dest="report", action="store_false", help="skip writing the report")
    p.add_argument("--strict-capabilities", dest="fit_requests", action="store_false",
                   help="do not fit requests to each backend's durations/resolutions; record them as unsupported")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N prompts (after --category/--tag/--prompt-id)")
    p.add_argument("--category", action="append", dest="categories", default=[], metavar="NAME",
                   help="use only prompts of this category (repeatable: any of them)")
    p.add_argument("--tag", action="append", dest="tags", default=[], metavar="TAG",
                   help="use only prompts with this tag (repeatable: any of them)")
    p.add_argument("--prompt-id", action="append", dest="prompt_ids", default=[], metavar="ID",
                   help="use only this prompt (repeatable); --category, --tag and --prompt-id are intersected")
    p.add_argument("--reuse", choices=REUSE_CHOICES, default="local",
                   help="copy finished results with the same cache key from other runs in the index: never; local "
                        "(default: only backends running on this machine; paid APIs are measured anew each run); "
                        "all")
    p.add_argument("--probe", nargs="?", type=positive_int, const=PROBE_DEFAULT, default=0, metavar="N",
                   help="reproducibility probe: after generating, send N prompts per backend again with the same "
                        f"request and seed (default N: {PROBE_DEFAULT}; paid like any request, within --budget-usd) "
                        "and classify the backend as bit-exact, seed-faithful within noise or non-deterministic")
    p.add_argument("--option", action="append", default=[], metavar="BACKEND.KEY=VALUE",
                   help="backend option, e.g. dit-local.steps=20 (repeatable)")
    p.add_argument("--index", type=Path, default=None, help="SQLite index (default: index.sqlite beside --out)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--engine", choices=ENGINE_CHOICES, default="local",
                   help="where backends and metrics run: local (this process, default) or ray (Ray actors on this "
                        "machine or a cluster; docs/scale-out.md). Records and run folder are the same either way")
    p.add_argument("--ray-address", default=None, metavar="auto|HOST:PORT|ray://HOST:PORT",
                   help="--engine ray: join this cluster (default: start a local Ray instance for the command)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                   help="where scoring runs: auto (CUDA when present, default), cpu or cuda")
    p.add_argument("--score-actors", type=positive_int, default=None,
                   help="--engine ray: scoring actors (default: one per GPU when scoring on GPUs, else one per CPU)")
    return p


def run(args: argparse.Namespace) -> int:
    from vbench_suite.store.lock import hold_run_folder

    # One process owns the run folder for the whole command (generation, scoring, summary, report).
    with hold_run_folder(args.out):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from vbench_suite.runner import RunConfig, run_benchmark
    from vbench_suite.runner.summary import may_have_billed_lines, summarise, to_markdown, unavailable_reasons
    from vbench_suite.store.run_folder import RunFolder

    config = RunConfig(
        suite=args.suite, backends=tuple(args.backends or ["dit-local"]), out=args.out, samples=args.samples,
        seed=args.seed, budget_usd=args.budget_usd, concurrency=args.concurrency,
        metrics=tuple(m.strip() for m in args.metrics.split(",") if m.strip()) if args.metrics else None,
        backend_options=parse_backend_options(args.option), index_path=args.index, limit=args.limit,
        categories=tuple(args.categories), tags=tuple(args.tags), prompt_ids=tuple(args.prompt_ids),
        reuse=args.reuse, score=args.score, fit_requests=args.fit_requests, engine=args.engine,
        ray_address=args.ray_address, device=args.device, score_actors=args.score_actors,
        probe=args.probe)
    _validate_names(config)
    console = Console(stderr=True)
    outcome = _run_with_progress(config, console, args.progress)

    folder = RunFolder(outcome.run_dir)
    header, rows = summarise(folder)
    summary_md = to_markdown(header, rows)
    reasons = unavailable_reasons(folder)
    notes = "".join(f"- {m}: unavailable — {r}\n" for m, r in sorted(reasons.items()))
    meta = folder.read_meta()
    # run.json's list covers every invocation into the folder (a backend skipped earlier and not asked for now).
    skipped_backends = meta.get("skipped_backends") or outcome.skipped_backends
    skipped = "".join(f"- backend {b} skipped: {r}\n" for b, r in sorted(skipped_backends.items()))
    superseded = [f"{n} {b} generation(s) from an earlier fingerprint of {b} (other weights or settings) are kept "
                  f"in {folder.path} but not in this summary; use a new --out to keep versions apart"
                  for b, n in sorted(folder.superseded_generations().items())]
    outcome_lines = may_have_billed_lines(folder) + superseded + run_outcome_lines(meta)
    (folder.path / "summary.md").write_text(
        f"# Run {folder.path.name}\n\n{summary_md}\n{notes}{skipped}" + "".join(f"- {s}\n" for s in outcome_lines),
        encoding="utf-8")
    for line in _print_table(header, rows):
        print(line)
    listed = {r[0].split(" (")[0] for r in rows}  # labels may carry " (simulated)"
    for b, r in sorted(skipped_backends.items()):
        if b not in listed:  # skipped by an earlier invocation, not asked for now
            print(f"skipped backend {b}: {r}")
    for line in outcome_lines:
        print(line)
    for m, r in sorted(reasons.items()):
        print(f"metric {m} unavailable: {r}")
    print(f"run folder: {outcome.run_dir}")
    print(f"summary:    {folder.path / 'summary.md'}")
    if args.report:
        report_path = _write_report(outcome.run_dir)
        if report_path is not None:
            print(f"report:     {report_path}")
    return 0


def run_outcome_lines(meta: dict) -> list[str]:  # type: ignore[type-arg]
    """Sentences on what run.json says happened beyond the table: requests not sent for the budget, results
    copied from other runs (not generated or paid by this run), the prompt selection."""
    lines = []
    cap = meta.get("budget_usd")
    for backend, n in sorted((meta.get("over_budget") or {}).items()):
        if n:
            limit = f"{cap:g} USD" if cap is not None else "an earlier invocation's cap"
            lines.append(f"{n} {backend} request(s) not sent: the budget cap of {limit} would have been exceeded "
                         "(raise --budget-usd and run again to send them)")
    for backend, n in sorted((meta.get("damaged") or {}).items()):
        if n:
            lines.append(f"{n} {backend} video(s) found damaged on disk and not re-obtainable from the vendor: "
                         "recorded as failed ('damaged'), not paid for again (use a new --out to generate them anew)")
    for backend, sources in sorted((meta.get("reused") or {}).items()):
        for source, n in sorted(sources.items()):
            lines.append(f"{n} {backend} result(s) reused from run {source} (copied, not generated or paid by this "
                         "run; --reuse never measures anew)")
    for backend, probe in sorted((meta.get("probe") or {}).items()):
        lines.append(f"reproducibility probe of {backend}: {probe.get('class')} ({probe.get('reason')})")
    selection = meta.get("selection") or {}
    total = selection.get("n_suite_prompts")
    if total and len(selection.get("prompts") or []) < total:
        lines.append(f"{len(selection['prompts'])} of the suite's {total} prompts in this run folder (latest "
                     f"selection: {_criteria(selection)})")
    return lines


def _criteria(selection: dict) -> str:  # type: ignore[type-arg]
    from vbench_suite.runner.select import Selection

    return Selection(tuple(selection.get("categories") or ()), tuple(selection.get("tags") or ()),
                     tuple(selection.get("prompt_ids") or ()), selection.get("limit")).describe() or "all prompts"


def _validate_names(config) -> None:  # type: ignore[no-untyped-def]
    """Unknown backend or metric names fail before any work starts."""
    from vbench_suite.backends import backend_class
    from vbench_suite.metrics import available_metrics
    from vbench_suite.errors import UnknownNameError

    for name in config.backends:
        backend_class(name)
    for name in config.metrics or ():
        if name not in available_metrics():
            raise UnknownNameError("metric", name, available_metrics())


def _run_with_progress(config, console, show: bool):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vbench_suite.runner import run_benchmark

    if not show:
        return run_benchmark(config)
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        def bar(stage: str) -> Callable[[str, int, int], None]:
            def advance(name: str, n: int, total: int) -> None:
                label = f"{stage} {name}"
                if label not in tasks:
                    tasks[label] = progress.add_task(label, total=total)
                progress.advance(tasks[label], n)
            return advance

        return run_benchmark(config, on_progress=bar("generate"), on_score_progress=bar("score"))


def _print_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The summary as two terminal tables that do not wrap at a normal width: operations, then the metrics of the
    backends that have scores. Returns the rows' outcomes as sentences (the table's last column) for printing
    below, except "all requests sent". summary.md keeps the single wide table."""
    from rich.console import Console
    from rich.table import Table

    from vbench_suite.runner.summary import OPERATION_COLUMNS, OUTCOME_ALL_SENT

    console = Console()
    if not console.is_terminal:  # a log file or pipe: no width to fit, keep every row on one line
        console = Console(width=160)
    short = {h: h.split(" (")[0] if h.startswith("outcome unknown") else h for h in header}
    ops = Table(title="vbench-suite summary")
    for h in header[:OPERATION_COLUMNS]:
        ops.add_column(short[h], overflow="fold")
    for r in rows:
        ops.add_row(*r[:OPERATION_COLUMNS])
    console.print(ops)
    metric_headers = header[OPERATION_COLUMNS:-1]
    scored = [r for r in rows if any(c != "–" for c in r[OPERATION_COLUMNS:-1])]
    if metric_headers and scored:
        quality = Table(title="metrics (value, n videos; FVD: N videos / reference videos)")
        for h in header[:1] + metric_headers:
            quality.add_column(h, overflow="fold")
        for r in scored:
            quality.add_row(*(r[:1] + r[OPERATION_COLUMNS:-1]))
        console.print(quality)
    return [f"{r[0]}: {r[-1]}" for r in rows if r[-1] != OUTCOME_ALL_SENT]


def _write_report(run_dir: Path) -> Path | None:
    try:
        from vbench_suite.report import write_report
    except ImportError:
        return None
    return write_report(run_dir)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
