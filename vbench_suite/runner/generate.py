"""The generation stage: run pending work items on their backends, with cache, resume, budget and concurrency."""
from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.runner.budget import BudgetGate
from vbench_suite.runner.plan import WorkItem
from vbench_suite.store.index import find_finished_generation
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.types import GenerationResult

log = logging.getLogger(__name__)


@dataclass
class GenerationStats:
    """What the generation stage did, per backend."""

    cached: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    generated: dict[str, int] = field(default_factory=dict)
    over_budget: dict[str, int] = field(default_factory=dict)
    not_sent_keys: dict[str, list[str]] = field(default_factory=dict)
    """Keys of the work items that `over_budget` counts, per backend (run.json keeps them across resumes)."""
    reused_from: dict[str, dict[str, int]] = field(default_factory=dict)
    """backend -> {source run folder: results copied from it in this invocation}."""

    def bump(self, counter: dict[str, int], backend: str, n: int = 1) -> None:
        counter[backend] = counter.get(backend, 0) + n


REUSE_POLICIES = ("never", "local", "all")
"""`--reuse`: which results of *other* run folders a run may copy instead of generating (same cache key).

never: none; local (default): only backends that run on this machine (`Backend.remote` False), whose output the
cache key fully determines; all: remote backends too. A remote vendor may change the model behind the same name,
so by default each run of a paid API is a new measurement. Resuming into the same folder is not reuse."""


def may_reuse(backend: Backend, policy: str) -> bool:
    """Whether `policy` lets the runner copy `backend`'s results from another run instead of generating."""
    if policy not in REUSE_POLICIES:
        raise ValueError(f"unknown reuse policy {policy!r}; expected one of {REUSE_POLICIES}")
    return policy == "all" or (policy == "local" and not backend.remote)


def is_finished(record: dict[str, Any] | None, folder: RunFolder) -> bool:
    """A record is final when it is ok (video present), refused, or failed for a reason that will not go away."""
    if record is None:
        return False
    result = record.get("result") or {}
    status = result.get("status")
    if status == "ok":
        video = folder.resolve(result.get("video_path"))
        return video is not None and video.is_file()
    if status == "refused":
        return True
    return status == "failed" and not result.get("retriable", False)


def _record(work: WorkItem, result: GenerationResult, folder: RunFolder, suite_name: str, suite_version: str,
            **more: Any) -> dict[str, Any]:
    res = result.to_dict()
    if result.video_path:
        try:
            res["video_path"] = folder.relative(Path(result.video_path))
        except ValueError:
            res["video_path"] = str(result.video_path)
    return {"key": work.key, "backend": work.backend, "role": work.role, "prompt_id": work.item.id,
            "category": work.item.category, "sample": work.sample, "suite": suite_name,
            "suite_version": suite_version, "request": work.request.to_dict(), "adjustments": list(work.adjustments),
            "result": res, **more}


def _failure(backend: Backend, exc: BaseException) -> GenerationResult:
    # A backend bug must not lose the rest of the run; the text is the exception's own (backends keep secrets out).
    return GenerationResult(status="failed", fingerprint=backend.fingerprint(),
                            error=f"backend raised {type(exc).__name__}: {exc}", retriable=True)


def run_generation(folder: RunFolder, backends: dict[str, Backend], work: Sequence[WorkItem], *,
                   suite_name: str, suite_version: str, budget: BudgetGate, concurrency: int | None,
                   index_path: Path | None, on_progress: Callable[[str, int], None] | None = None,
                   reuse: str = "local") -> GenerationStats:
    """Generate every unfinished work item; each result is appended to the run folder the moment it exists.

    `concurrency` caps requests in flight per backend (default: the backend's own `max_concurrency`).
    `on_progress(backend, n)` is called as items finish (including cached ones).
    `reuse` (see `REUSE_POLICIES`) decides whose finished results may be copied from other runs in the index.
    """
    stats = GenerationStats()
    progress = on_progress or (lambda backend, n: None)
    existing = folder.generations()
    jobs = folder.jobs()
    pending: dict[str, list[WorkItem]] = {}
    for w in work:
        if is_finished(existing.get(w.key), folder):
            stats.bump(stats.cached, w.backend)
            progress(w.backend, 1)
            continue
        source = (_reuse_from_index(w, folder, index_path, suite_name, suite_version)
                  if index_path is not None and may_reuse(backends[w.backend], reuse) else None)
        if source is not None:
            stats.bump(stats.reused, w.backend)
            stats.bump(stats.reused_from.setdefault(w.backend, {}), source)
            progress(w.backend, 1)
            continue
        backend = backends[w.backend]
        unsupported = backend.unsupported_reason(w.request)
        if unsupported is not None:
            result = GenerationResult(status="failed", fingerprint=backend.fingerprint(),
                                      error=f"unsupported request: {unsupported}", retriable=False,
                                      info=(("unsupported", True),))
            folder.append_generation(_record(w, result, folder, suite_name, suite_version))
            progress(w.backend, 1)
            continue
        pending.setdefault(w.backend, []).append(w)

    executors: list[ThreadPoolExecutor] = []
    futures: dict[Future, list[WorkItem]] = {}
    try:
        for name, items in pending.items():
            backend = backends[name]
            pool = ThreadPoolExecutor(max_workers=max(1, concurrency or backend.max_concurrency),
                                      thread_name_prefix=f"gen-{name}")
            executors.append(pool)
            size = max(1, backend.batch_size)
            for start in range(0, len(items), size):
                chunk = items[start:start + size]
                futures[pool.submit(_run_chunk, backend, chunk, folder, jobs, budget)] = chunk
        for fut in as_completed(futures):
            chunk = futures[fut]
            backend = backends[chunk[0].backend]
            try:
                done = fut.result()
            except Exception as exc:  # noqa: BLE001 - isolate one backend's crash
                log.warning("backend %s raised %s", backend.name, type(exc).__name__)
                done = [(w, 0.0, _failure(backend, exc)) for w in chunk]
            for w, estimate, result in done:
                billed = result.cost_usd if backend.bills_usd else 0.0
                budget.settle(estimate, billed)
                folder.append_generation(_record(w, result, folder, suite_name, suite_version, billed_usd=billed))
                stats.bump(stats.generated, w.backend)
            if len(done) < len(chunk):
                sent = {w.key for w, _, _ in done}
                not_sent = [w.key for w in chunk if w.key not in sent]
                stats.bump(stats.over_budget, backend.name, len(not_sent))
                stats.not_sent_keys.setdefault(backend.name, []).extend(not_sent)
            progress(backend.name, len(chunk))
    finally:
        for pool in executors:
            pool.shutdown(wait=True, cancel_futures=True)
    return stats


def _run_chunk(backend: Backend, chunk: list[WorkItem], folder: RunFolder, jobs: dict[str, dict[str, Any]],
               budget: BudgetGate) -> list[tuple[WorkItem, float, GenerationResult]]:
    """Reserve budget (at submission time, so earlier actual costs count), then generate the admitted items."""
    admitted = [(w, e) for w in chunk
                if budget.try_reserve(e := backend.estimate_cost_usd(w.request) if backend.bills_usd else 0.0)]
    if not admitted:
        return []
    ctxs = [GenerationContext(out_path=folder.video_path(w.backend, w.key), key=w.key,
                              record_job=_job_recorder(folder, w), recorded_job=jobs.get(w.key))
            for w, _ in admitted]
    for ctx in ctxs:
        ctx.out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = backend.generate_batch([w.request for w, _ in admitted], ctxs)
    except Exception as exc:  # noqa: BLE001 - a crash becomes a retriable failure of these items only
        results = [_failure(backend, exc) for _ in admitted]
    return [(w, e, r) for (w, e), r in zip(admitted, results, strict=True)]


def _job_recorder(folder: RunFolder, w: WorkItem) -> Callable[[dict[str, Any]], None]:
    return lambda job: folder.append_job(w.key, w.backend, job)


def _reuse_from_index(w: WorkItem, folder: RunFolder, index_path: Path, suite_name: str,
                      suite_version: str) -> str | None:
    """Copy a finished generation with the same key from another indexed run; returns that run's folder, or None.

    The copy names its source (`reused_from`) and bills nothing here (`billed_usd` 0): the money was spent by the
    run that generated it. Its `cost_usd` stays, as the price of that output.
    """
    found = find_finished_generation(index_path, w.key, exclude=folder.path)
    if found is None:
        return None
    run_path, rec = found
    source = run_path / rec["result"]["video_path"]
    target = folder.video_path(w.backend, w.key, source.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.copy")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    result = GenerationResult.from_dict({**rec["result"], "video_path": str(target)})
    # A copy of a copy names the run that generated (and paid for) the result.
    origin = str(rec.get("reused_from") or run_path)
    folder.append_generation(_record(w, result, folder, suite_name, suite_version, reused_from=origin,
                                     billed_usd=0.0))
    return origin
