"""The runner: suite × backends × samples → generate → record → score → summarise, resumable at any point."""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from vbench_suite.backends import Backend
from vbench_suite.backends.base import PLACEMENT_OPTIONS, split_placement_options
from vbench_suite.errors import ConfigError, UserError
from vbench_suite.runner.budget import BudgetGate, possibly_billed_by_key
from vbench_suite.device import DEVICE_CHOICES
from vbench_suite.runner.engines import Engine, check_engine, open_engine
from vbench_suite.runner.environment import harness_info, hardware, library_versions
from vbench_suite.runner.generate import REUSE_POLICIES, GenerationStats, run_generation
from vbench_suite.runner.plan import REFERENCE_ROLE, WorkItem, plan_work
from vbench_suite.runner.select import Selection, select_prompts, selection_record
from vbench_suite.store.index import default_index_path, import_run
from vbench_suite.store.lock import hold_run_folder
from vbench_suite.store.run_folder import RunFolder, utc_now
from vbench_suite.suites import PromptItem, PromptSet, load_suite
from vbench_suite.types import ScoreRecord

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
    """Use only the first N prompts (after the filters below; quick trials)."""
    categories: tuple[str, ...] = ()
    """Use only prompts of these categories (empty: all)."""
    tags: tuple[str, ...] = ()
    """Use only prompts with any of these tags (empty: all)."""
    prompt_ids: tuple[str, ...] = ()
    """Use only these prompts (empty: all). Categories, tags and ids are intersected, then `limit` applies."""
    reuse: str = "local"
    """Which results of other indexed runs may be copied instead of generated: 'never', 'local' (backends that
    are not remote) or 'all' (see `runner.generate.REUSE_POLICIES`)."""
    score: bool = True
    """Run the scoring stage."""
    fit_requests: bool = True
    """Fit each request to the backend's declared durations/resolutions/fps (recorded); False: record them as
    unsupported instead."""
    probe: int = 0
    """Reproducibility probe: replay this many prompts per backend with the same request and seed after generating
    (0: no probe; see `vbench_suite.drift.probe`). Replays are paid requests like any other and obey the budget."""
    engine: str = "local"
    """Where backends and metrics run: 'local' (this process) or 'ray' (Ray actors; docs/scale-out.md). The run
    folder, its records and the index are the same either way, written by this process."""
    ray_address: str | None = None
    """--engine ray: the cluster to join ('auto', 'HOST:PORT' or 'ray://HOST:PORT'); None starts a local Ray
    instance for the run."""
    device: str = "auto"
    """Where scoring runs: 'auto' (CUDA when present), 'cpu' or 'cuda'. Backends take their own `device` option."""
    score_actors: int | None = None
    """--engine ray: scoring actors (None: one per GPU when scoring on GPUs, else one per CPU core)."""


@dataclass
class RunOutcome:
    """What `run_benchmark` did."""

    run_dir: Path
    stats: GenerationStats
    skipped_backends: dict[str, str]
    scored: dict[str, int]
    index_path: Path


def run_benchmark(config: RunConfig, on_progress: Callable[[str, int, int], None] | None = None,
                  on_score_progress: Callable[[str, int, int], None] | None = None) -> RunOutcome:
    """Run (or resume) a benchmark. `on_progress(backend, done_increment, total)` reports generation progress,
    `on_score_progress(metric, done_increment, total)` scoring progress.

    The run folder is owned by this call for its whole duration (`store.lock`): another process (or thread) that
    tries to run into it meanwhile gets `RunFolderBusy` (exit 2) instead of paying for the same requests again.
    """
    full_suite = load_suite(config.suite)
    selection = Selection(config.categories, config.tags, config.prompt_ids, config.limit)
    suite = select_prompts(full_suite, selection)
    _check_config(config)
    with hold_run_folder(config.out), open_engine(config.engine, ray_address=config.ray_address,
                                                  score_actors=config.score_actors, device=config.device) as engine:
        return _run_locked(config, full_suite, suite, selection, on_progress, on_score_progress, engine)


def _run_locked(config: RunConfig, full_suite: PromptSet, suite: PromptSet, selection: Selection,
                on_progress: Callable[[str, int, int], None] | None,
                on_score_progress: Callable[[str, int, int], None] | None, engine: Engine) -> RunOutcome:
    """`run_benchmark` once the run folder is owned by this process."""
    folder = RunFolder(config.out)
    index_path = config.index_path or default_index_path(folder.path)
    for path in folder.remove_temp_files():
        log.info("removed %s, left by an interrupted run", path)

    reference_items = _reference_items(config, suite)
    helper = (REFERENCE_BACKEND,) if reference_items and REFERENCE_BACKEND not in config.backends else ()
    backends, skipped, helpers = _create_backends(config, engine, helper)
    if not backends:
        for backend in helpers.values():
            backend.close()
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise UserError(f"No backend can run ({reasons}).")
    meta, old_fingerprints = _init_run_folder(folder, config, suite, backends, skipped,
                                              selection_record(full_suite, suite, selection))
    inputs_dir = folder.path / "inputs"
    probes: dict[str, Any] = {}
    all_backends = {**backends, **helpers}
    try:
        work: list[WorkItem] = []
        for name, backend in backends.items():
            work += plan_work(suite, name, backend.fingerprint(), config.samples, config.seed, inputs_dir,
                              capabilities=backend.capabilities() if config.fit_requests else None)
        reference_work = _reference_work(config, suite, all_backends.get(REFERENCE_BACKEND), reference_items,
                                         inputs_dir)
        totals: dict[str, int] = {}
        for w in work + reference_work:
            totals[w.backend] = totals.get(w.backend, 0) + 1
        progress = (lambda b, n: on_progress(b, n, totals[b])) if on_progress else None
        # Every record line on disk is one billed attempt (copies of other runs' results carry billed_usd 0); creates
        # whose answer was lost may have been billed too, so their upper estimates count as spent.
        spent = sum(folder.billed_usd().values()) + sum(possibly_billed_by_key(folder.all_generations()).values())
        budget = BudgetGate(config.budget_usd, spent_usd=spent)
        stats = run_generation(folder, all_backends, work + reference_work, suite_name=suite.name,
                               suite_version=suite.version, budget=budget, concurrency=config.concurrency,
                               index_path=index_path, on_progress=progress, reuse=config.reuse)
        if config.probe:
            from vbench_suite.drift.probe import run_probe

            probes = run_probe(folder, backends, work, config.probe, budget=budget, concurrency=config.concurrency,
                               suite_name=suite.name, suite_version=suite.version)
    finally:
        # Before scoring: under --engine ray this stops the generation actors, whose reservations scoring needs.
        for backend in all_backends.values():
            backend.close()
    if budget.refused:
        log.warning("%d requests were not submitted: the budget cap of %.2f USD would have been exceeded",
                    budget.refused, config.budget_usd or 0.0)
    changed = {b for b, fp in meta["fingerprints"].items() if old_fingerprints.get(b, fp) != fp}
    _record_outcome(meta, folder, stats, work + reference_work, changed)
    if probes:
        meta.setdefault("probe", {}).update(probes)
    meta["finished"] = utc_now()
    folder.write_meta(meta)

    scored: dict[str, int] = {}
    if config.score:
        scored = _score(folder, config, suite, selection, on_score_progress, engine)
    import_run(index_path, folder.path)
    return RunOutcome(folder.path, stats, skipped, scored, index_path)


def _check_config(config: RunConfig) -> None:
    """Settings that are wrong whatever the backends do; fail before any folder is written."""
    if config.samples < 1:
        raise UserError(f"--samples must be at least 1, got {config.samples}")
    if config.reuse not in REUSE_POLICIES:
        raise ConfigError(f"--reuse must be one of {', '.join(REUSE_POLICIES)}, got '{config.reuse}'")
    check_engine(config.engine, config.ray_address)
    if config.device not in DEVICE_CHOICES and not config.device.startswith("cuda:"):
        raise ConfigError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, got '{config.device}'")
    if config.score_actors is not None and config.score_actors < 1:
        raise ConfigError(f"--score-actors must be at least 1, got {config.score_actors}")
    for path in (config.out, *config.out.parents):
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {config.out}: {path} is a file, not a folder; give a new folder path "
                              "(or an earlier run folder to resume it)")
    requested = list(dict.fromkeys(config.backends))
    for name in config.backend_options:
        if name not in requested:
            raise ConfigError(f"--option for backend '{name}', which is not in this run (backends: "
                              f"{', '.join(requested)}); add --backend {name} or drop the option")
        check_backend_options(name, config.backend_options[name])


def backend_option_names(cls: type) -> list[str] | None:
    """Keyword options the backend class's constructor accepts (following `**options` up to the base classes that
    take them), or None when it accepts any keyword (then the constructor itself must reject what it cannot use)."""
    names: list[str] = []
    seen = False
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            # The last constructor read took **options with nothing above to pass them to: it rejects the rest
            # (as RemoteBackend does) if it names any option, else it takes anything (a plugin's free-form
            # options) and is not checked. No constructor at all: no options.
            return names if names or not seen else None
        seen = True
        params = inspect.signature(klass.__init__).parameters.values()
        names += [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                  and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None


def check_backend_options(name: str, options: dict[str, Any]) -> None:
    """Raise `ConfigError` naming an option the backend `name` does not take, a close match and the valid ones.

    Placement options (`backends.base.PLACEMENT_OPTIONS`: num_cpus, num_gpus, memory_mb, actors) are taken by every
    backend and checked for their value."""
    from vbench_suite.backends import backend_class
    from vbench_suite.runner.engines.placement import check_placement_options

    ctor, placement = split_placement_options(options)
    check_placement_options(name, placement)
    valid = backend_option_names(backend_class(name))
    if valid is None:
        return
    for key in ctor:
        if key not in valid:
            close = difflib.get_close_matches(key, [*valid, *PLACEMENT_OPTIONS], n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"backend '{name}' has no option '{key}'.{hint} Valid options: "
                              f"{', '.join(valid) or '(none)'}; placement (--engine ray): "
                              f"{', '.join(PLACEMENT_OPTIONS)}")


def _create_backends(config: RunConfig, engine: Engine, helpers: tuple[str, ...] = ()
                     ) -> tuple[dict[str, Backend], dict[str, str], dict[str, Backend]]:
    """The run's configured backends, the reasons of those that cannot run here (closed again), and the helper
    backends the run needs without benchmarking them (the FVD reference renderer), all built by `engine` at once."""
    specs = {name: dict(config.backend_options.get(name, {})) for name in dict.fromkeys(config.backends)}
    created = engine.create_backends({**specs, **{name: {} for name in helpers}})
    backends: dict[str, Backend] = {}
    skipped: dict[str, str] = {}
    for name in specs:
        backend = created[name]
        reason = backend.not_configured_reason()
        if reason is not None:
            skipped[name] = reason
            log.warning("skipping backend %s: %s", name, reason)
            backend.close()
            continue
        backends[name] = backend
    return backends, skipped, {name: created[name] for name in helpers}


def _reference_items(config: RunConfig, suite: PromptSet) -> tuple[PromptItem, ...]:
    """The prompts of the FVD reference set for shapes-world suites (none when not scoring or not applicable)."""
    if not config.score or suite.fvd_reference != SHAPES_REFERENCE:
        return ()
    # The reference is the shapes world's own rendering of the prompt: plain text-to-video, no conditioning.
    return tuple(dataclasses.replace(it, mode="t2v", image=None, first_frame=None, last_frame=None)
                 for it in suite.items if it.shapes)


def _reference_work(config: RunConfig, suite: PromptSet, reference: Backend | None, items: tuple[PromptItem, ...],
                    inputs_dir: Path) -> list[WorkItem]:
    """FVD reference set for shapes-world suites: fresh renders of the suite's shapes prompts under their own seeds."""
    if not items or reference is None:
        return []
    return plan_work(suite, REFERENCE_BACKEND, reference.fingerprint(), config.reference_samples, config.seed,
                     inputs_dir, role=REFERENCE_ROLE, seed_namespace="fvd-reference/", items=items)


def _init_run_folder(folder: RunFolder, config: RunConfig, suite: PromptSet, backends: dict[str, Backend],
                     skipped: dict[str, str], selection: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create run.json, or check that a resumed run keeps the settings that its records depend on.

    Returns the metadata (as written) and the backend fingerprints recorded before this invocation.
    A resume may select other prompts (e.g. more of the suite); each invocation records its own selection, and
    the top-level `selection.prompts` is the union.
    """
    resolved = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    requested = list(dict.fromkeys(config.backends))
    invocation = {"at": utc_now(), "config": resolved, "requested_backends": requested, "skipped_backends": skipped,
                  "budget_usd": config.budget_usd, "reuse": config.reuse, "selection": selection,
                  "fingerprints": {n: b.fingerprint().to_dict() for n, b in backends.items()}}
    previous: dict[str, Any] = {}
    if folder.exists():
        meta = folder.read_meta()
        old_suite = meta.get("suite") or {}
        if (old_suite.get("name"), old_suite.get("version")) != (suite.name, suite.version) or meta.get("seed") != config.seed:
            raise UserError(
                f"{folder.path} holds a run of suite {old_suite.get('name')}@{old_suite.get('version')} with seed "
                f"{meta.get('seed')}; this command asks for {suite.name}@{suite.version} with seed {config.seed}. "
                "Use the same suite and --seed to resume, or a new --out folder.")
        previous = dict(meta.get("fingerprints") or {})
        meta.setdefault("invocations", []).append(invocation)
        meta["backends"] = sorted(set(meta.get("backends", [])) | set(backends))
        meta["fingerprints"] = {**previous, **invocation["fingerprints"]}
        old_selection = meta.get("selection") or {}
        prompts = list(dict.fromkeys([*old_selection.get("prompts", []), *selection["prompts"]]))
        meta["selection"] = {**selection, "prompts": prompts}
        requested = list(dict.fromkeys([*meta.get("requested_backends", []), *requested]))
        # A backend skipped earlier but configured now is no longer skipped.
        skipped = {**{b: r for b, r in (meta.get("skipped_backends") or {}).items() if b not in backends}, **skipped}
    else:
        meta = {"run_id": uuid.uuid4().hex, "created": utc_now(), "name": folder.path.name,
                "suite": {"name": suite.name, "version": suite.version, "path": str(suite.path or ""),
                          "fvd_reference": suite.fvd_reference},
                "seed": config.seed, "samples": config.samples, "backends": sorted(backends),
                "fingerprints": invocation["fingerprints"], "harness": harness_info(),
                "libraries": library_versions(), "hardware": hardware(), "invocations": [invocation],
                "selection": selection}
    meta["samples"] = max(int(meta.get("samples", 1)), config.samples)
    meta["requested_backends"] = requested
    meta["skipped_backends"] = skipped
    meta["budget_usd"] = config.budget_usd
    meta["reuse"] = config.reuse
    folder.write_meta(meta)
    return meta, previous


def _record_outcome(meta: dict[str, Any], folder: RunFolder, stats: GenerationStats, work: list[WorkItem],
                    changed: set[str]) -> None:
    """Write into `meta` what the run folder now holds per backend, cumulative over invocations.

    over_budget: requests planned but never sent because of the budget cap and still without a record (a resume
    that sends them clears them; a backend whose fingerprint changed starts afresh); unsupported: current records
    the backend could not take; reused: current records copied from other runs, per source run; billed_usd: money
    this folder's records billed, every record line counted (copies bill nothing); damaged: current records whose
    video was found damaged and could not be re-obtained without paying; may_have_billed_usd: upper estimate of
    what creates of unknown outcome (answer lost) may have billed, not in billed_usd.
    """
    records = folder.generations()
    planned: dict[str, set[str]] = {}
    for w in work:
        planned.setdefault(w.backend, set()).add(w.key)
    old_keys: dict[str, list[str]] = meta.get("over_budget_keys") or {}
    not_sent: dict[str, list[str]] = {}
    for b in set(old_keys) | set(stats.not_sent_keys):
        keep = [] if b in changed else [k for k in old_keys.get(b, []) if k not in planned.get(b, set())]
        keys = [k for k in dict.fromkeys(keep + stats.not_sent_keys.get(b, [])) if k not in records]
        if keys:
            not_sent[b] = keys
    backends = list(dict.fromkeys([*meta.get("backends", []), *not_sent]))
    # benchmark output only: not the FVD reference set, not the probe's replays
    current = [g for g in folder.current_generations() if g.get("role", "benchmark") == "benchmark"]
    unsupported = {b: 0 for b in backends}
    reused: dict[str, dict[str, int]] = {}
    for g in current:
        if _is_unsupported(g.get("result") or {}):
            unsupported[g["backend"]] = unsupported.get(g["backend"], 0) + 1
        if g.get("reused_from"):
            sources = reused.setdefault(g["backend"], {})
            sources[g["reused_from"]] = sources.get(g["reused_from"], 0) + 1
    billed = folder.billed_usd()
    damaged: dict[str, int] = {}
    for g in current:
        if ((g.get("result") or {}).get("info") or {}).get("damaged"):
            damaged[g["backend"]] = damaged.get(g["backend"], 0) + 1
    meta["damaged"] = damaged
    possible: dict[str, float] = {}
    for g in current:
        if g.get("may_have_billed_usd"):
            possible[g["backend"]] = possible.get(g["backend"], 0.0) + float(g["may_have_billed_usd"])
    meta["may_have_billed_usd"] = possible
    meta["over_budget_keys"] = not_sent
    meta["over_budget"] = {b: len(not_sent.get(b, [])) for b in backends}
    meta["unsupported"] = unsupported
    meta["reused"] = reused
    meta["billed_usd"] = billed
    meta["invocations"][-1]["stats"] = {"cached": stats.cached, "reused": stats.reused,
                                        "generated": stats.generated, "over_budget": stats.over_budget,
                                        "regenerated": stats.regenerated, "redownloaded": stats.redownloaded,
                                        "damaged": stats.damaged}


def _is_unsupported(result: dict[str, Any]) -> bool:
    """A request the backend cannot take (mode, duration, resolution): recorded, never sent."""
    return result.get("status") == "unsupported" or bool((result.get("info") or {}).get("unsupported"))


def _score(folder: RunFolder, config: RunConfig, suite: PromptSet, selection: Selection,
           on_progress: Callable[[str, int, int], None] | None, engine: Engine) -> dict[str, int]:
    from vbench_suite.metrics import available_metrics
    from vbench_suite.metrics.base import ScoringContext
    from vbench_suite.paths import cache_dir
    from vbench_suite.runner.score import reference_videos, run_scoring

    names = config.metrics or tuple(m for m in DEFAULT_METRICS if m in available_metrics())
    refs: list[str] = []
    ref_id = ""
    not_applicable: str | None = None
    if suite.fvd_reference == SHAPES_REFERENCE:
        # The reference is rendered from the shapes prompts this folder's runs selected (all invocations).
        refs = reference_videos(folder)
        ref_id = f"{SHAPES_REFERENCE}:{suite.name}@{suite.version}"
        if not refs:
            not_applicable = _no_shapes_reference_reason(suite, selection)
    elif suite.fvd_reference:
        refs, ref_id = _folder_videos(Path(suite.fvd_reference)), suite.fvd_reference
    written: dict[str, int] = {}
    if not_applicable is not None and "fvd" in names:
        names = tuple(n for n in names if n != "fvd")
        folder.append_scores([_fvd_not_applicable(not_applicable).to_dict()])
        written["fvd"] = 1
    # In a run, items without a conditioning image (t2v) have nothing to compare with: no lpips_ref row for them.
    ctx = ScoringContext(cache_dir=cache_dir(), device=config.device, reference_videos=refs, reference_id=ref_id,
                         options={"lpips_ref": {"unpaired": "skip"}})
    return {**written, **run_scoring(folder, names, ctx, on_progress=on_progress, scorer=engine.scorer())}


def _no_shapes_reference_reason(suite: PromptSet, selection: Selection) -> str:
    if not any(it.shapes for it in suite.items):
        picked = f" (selected with {selection.describe()})" if selection.is_subset() else ""
        return (f"not applicable: FVD against the shapes world is computed from the run's shapes-world prompts, and "
                f"none of this run's prompts{picked} is one; include shapes-world prompts to get it")
    return ("not applicable: no FVD reference video of the selected shapes-world prompts could be rendered "
            "(see the reference-shapes records in generations.jsonl)")


def _fvd_not_applicable(reason: str) -> ScoreRecord:
    from vbench_suite.metrics import metric_class

    info = metric_class("fvd").info
    return ScoreRecord(metric="fvd", status="unavailable", reason=reason, scope="set", unit=info.unit,
                       higher_is_better=info.higher_is_better, extra=(("not_applicable", True),))


VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".gif", ".npy", ".mkv")


def _folder_videos(path: Path) -> list[str]:
    if not path.is_dir():
        raise UserError(f"FVD reference folder {path} does not exist; fix `fvd_reference` in the suite file.")
    return sorted(str(p) for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
