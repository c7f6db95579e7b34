"""The runner: suite × backends × samples → generate → record → score → summarise, resumable at any point."""
from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from vbench_suite.backends import Backend, create_backend
from vbench_suite.errors import ConfigError, UserError
from vbench_suite.runner.budget import BudgetGate
from vbench_suite.runner.environment import harness_info, hardware, library_versions
from vbench_suite.runner.generate import GenerationStats, run_generation
from vbench_suite.runner.plan import REFERENCE_ROLE, WorkItem, plan_work
from vbench_suite.store.index import default_index_path, import_run
from vbench_suite.store.run_folder import RunFolder, utc_now
from vbench_suite.suites import PromptSet, load_suite

log = logging.getLogger(__name__)

DEFAULT_METRICS = ("shapes_adherence", "fvd", "lpips_ref", "lpips_temporal", "lpips_diversity", "clipsim")
SHAPES_REFERENCE = "shapes-world"
REFERENCE_BACKEND = "reference-shapes"


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs; validated once at the boundary (the CLI)."""

    suite: str
    """Suite name (from prompt_sets/) or path to a suite YAML file."""
    backends: tuple[str, ...]
    """Registered backend names to benchmark."""
    out: Path
    """Run folder. Running the same command again resumes into it."""
    samples: int = 1
    """Samples per prompt per backend."""
    seed: int = 0
    """Run seed; every sample's seed derives from (seed, prompt id, sample index)."""
    budget_usd: float | None = None
    """Stop submitting before total cost could exceed this (None: no cap)."""
    concurrency: int | None = None
    """Requests in flight per backend (None: each backend's default)."""
    metrics: tuple[str, ...] | None = None
    """Metrics to compute (None: DEFAULT_METRICS)."""
    backend_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Constructor options per backend name."""
    index_path: Path | None = None
    """SQLite index (None: `index.sqlite` beside the run folder)."""
    reference_samples: int = 4
    """Reference videos per shapes prompt for FVD when the suite's reference is the shapes world."""
    limit: int | None = None
    """Use only the first N prompts of the suite (quick trials)."""
    score: bool = True
    """Run the scoring stage."""
    fit_requests: bool = True
    """Fit each request to the backend's declared durations/resolutions/fps (recorded); False: record them as
    unsupported instead."""


@dataclass
class RunOutcome:
    """What `run_benchmark` did."""

    run_dir: Path
    stats: GenerationStats
    skipped_backends: dict[str, str]
    scored: dict[str, int]
    index_path: Path


def run_benchmark(config: RunConfig, on_progress: Callable[[str, int, int], None] | None = None) -> RunOutcome:
    """Run (or resume) a benchmark. `on_progress(backend, done_increment, total)` reports generation progress."""
    suite = load_suite(config.suite)
    if config.limit is not None:
        suite = dataclasses.replace(suite, items=suite.items[:config.limit])
    if config.samples < 1:
        raise UserError(f"--samples must be at least 1, got {config.samples}")
    folder = RunFolder(config.out)
    index_path = config.index_path or default_index_path(folder.path)

    backends, skipped = _create_backends(config)
    if not backends:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"No backend can run ({reasons}).")
    meta = _init_run_folder(folder, config, suite, backends, skipped)
    inputs_dir = folder.path / "inputs"
    try:
        work: list[WorkItem] = []
        for name, backend in backends.items():
            work += plan_work(suite, name, backend.fingerprint(), config.samples, config.seed, inputs_dir,
                              capabilities=backend.capabilities() if config.fit_requests else None)
        reference_work = _reference_work(config, suite, backends, inputs_dir)
        totals: dict[str, int] = {}
        for w in work + reference_work:
            totals[w.backend] = totals.get(w.backend, 0) + 1
        progress = (lambda b, n: on_progress(b, n, totals[b])) if on_progress else None
        spent = sum(g.get("billed_usd") or 0.0 for g in folder.generations().values())
        budget = BudgetGate(config.budget_usd, spent_usd=spent)
        all_backends = dict(backends)
        if reference_work and REFERENCE_BACKEND not in all_backends:
            all_backends[REFERENCE_BACKEND] = create_backend(REFERENCE_BACKEND)
        stats = run_generation(folder, all_backends, work + reference_work, suite_name=suite.name,
                               suite_version=suite.version, budget=budget, concurrency=config.concurrency,
                               index_path=index_path, on_progress=progress)
    finally:
        for backend in backends.values():
            backend.close()
    if budget.refused:
        log.warning("%d requests were not submitted: the budget cap of %.2f USD would have been exceeded",
                    budget.refused, config.budget_usd or 0.0)
    meta["finished"] = utc_now()
    meta["over_budget"] = dict(stats.over_budget)
    folder.write_meta(meta)

    scored: dict[str, int] = {}
    if config.score:
        scored = _score(folder, config, suite, bool(reference_work))
    import_run(index_path, folder.path)
    return RunOutcome(folder.path, stats, skipped, scored, index_path)


def _create_backends(config: RunConfig) -> tuple[dict[str, Backend], dict[str, str]]:
    backends: dict[str, Backend] = {}
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(config.backends):  # de-duplicated, order kept
        options = config.backend_options.get(name, {})
        try:
            backend = create_backend(name, **options)
        except TypeError as exc:
            raise ConfigError(f"backend '{name}' rejected options {sorted(options)}: {exc}") from None
        reason = backend.not_configured_reason()
        if reason is not None:
            skipped[name] = reason
            log.warning("skipping backend %s: %s", name, reason)
            backend.close()
            continue
        backends[name] = backend
    return backends, skipped


def _reference_work(config: RunConfig, suite: PromptSet, backends: dict[str, Backend],
                    inputs_dir: Path) -> list[WorkItem]:
    """FVD reference set for shapes-world suites: fresh renders of the suite's shapes prompts under their own seeds."""
    if not config.score or suite.fvd_reference != SHAPES_REFERENCE:
        return []
    # The reference is the shapes world's own rendering of the prompt: plain text-to-video, no conditioning.
    items = tuple(dataclasses.replace(it, mode="t2v", image=None, first_frame=None, last_frame=None)
                  for it in suite.items if it.shapes)
    if not items:
        return []
    reference = backends.get(REFERENCE_BACKEND) or create_backend(REFERENCE_BACKEND)
    return plan_work(suite, REFERENCE_BACKEND, reference.fingerprint(), config.reference_samples, config.seed,
                     inputs_dir, role=REFERENCE_ROLE, seed_namespace="fvd-reference/", items=items)


def _init_run_folder(folder: RunFolder, config: RunConfig, suite: PromptSet, backends: dict[str, Backend],
                     skipped: dict[str, str]) -> dict[str, Any]:
    """Create run.json, or check that a resumed run keeps the settings that its records depend on."""
    resolved = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    invocation = {"at": utc_now(), "config": resolved, "skipped_backends": skipped,
                  "fingerprints": {n: b.fingerprint().to_dict() for n, b in backends.items()}}
    if folder.exists():
        meta = folder.read_meta()
        old_suite = meta.get("suite") or {}
        if (old_suite.get("name"), old_suite.get("version")) != (suite.name, suite.version) or meta.get("seed") != config.seed:
            raise UserError(
                f"{folder.path} holds a run of suite {old_suite.get('name')}@{old_suite.get('version')} with seed "
                f"{meta.get('seed')}; this command asks for {suite.name}@{suite.version} with seed {config.seed}. "
                "Use the same suite and --seed to resume, or a new --out folder.")
        meta.setdefault("invocations", []).append(invocation)
        meta["backends"] = sorted(set(meta.get("backends", [])) | set(backends))
        meta["fingerprints"] = {**meta.get("fingerprints", {}), **invocation["fingerprints"]}
    else:
        meta = {"run_id": uuid.uuid4().hex, "created": utc_now(), "name": folder.path.name,
                "suite": {"name": suite.name, "version": suite.version, "path": str(suite.path or ""),
                          "fvd_reference": suite.fvd_reference},
                "seed": config.seed, "samples": config.samples, "backends": sorted(backends),
                "fingerprints": invocation["fingerprints"], "harness": harness_info(),
                "libraries": library_versions(), "hardware": hardware(), "invocations": [invocation]}
    meta["samples"] = max(int(meta.get("samples", 1)), config.samples)
    meta["skipped_backends"] = skipped
    folder.write_meta(meta)
    return meta


def _score(folder: RunFolder, config: RunConfig, suite: PromptSet, has_reference: bool) -> dict[str, int]:
    from vbench_suite.metrics import available_metrics
    from vbench_suite.metrics.base import ScoringContext
    from vbench_suite.paths import cache_dir
    from vbench_suite.runner.score import reference_videos, run_scoring

    names = config.metrics or tuple(m for m in DEFAULT_METRICS if m in available_metrics())
    refs: list[str] = []
    ref_id = ""
    if has_reference:
        refs, ref_id = reference_videos(folder), f"{SHAPES_REFERENCE}:{suite.name}@{suite.version}"
    elif suite.fvd_reference:
        refs, ref_id = _folder_videos(Path(suite.fvd_reference)), suite.fvd_reference
    # In a run, items without a conditioning image (t2v) have nothing to compare with: no lpips_ref row for them.
    ctx = ScoringContext(cache_dir=cache_dir(), reference_videos=refs, reference_id=ref_id,
                         options={"lpips_ref": {"unpaired": "skip"}})
    return run_scoring(folder, names, ctx)


VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif", ".npy", ".mkv")


def _folder_videos(path: Path) -> list[str]:
    if not path.is_dir():
        raise UserError(f"FVD reference folder {path} does not exist; fix `fvd_reference` in the suite file.")
    return sorted(str(p) for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
