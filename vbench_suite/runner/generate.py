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

    def bump(self, counter: dict[str, int], backend: str, n: int = 1) -> None:
        counter[backend] = counter.get(backend, 0) + n


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
                   index_path: Path | None, on_progress: Callable[[str, int], None] | None = None) -> GenerationStats:
    """Generate every unfinished work item; each result is appended to the run folder the moment it exists.

    `concurrency` caps requests in flight per backend (default: the backend's own `max_concurrency`).
    `on_progress(backend, n)` is called as items finish (including cached ones).
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
        if index_path is not None and _reuse_from_index(w, folder, index_path, suite_name, suite_version):
            stats.bump(stats.reused, w.backend)
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
                stats.bump(stats.over_budget, backend.name, len(chunk) - len(done))
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


def _reuse_from_index(w: WorkItem, folder: RunFolder, index_path: Path, suite_name: str, suite_version: str) -> bool:
    """Copy a finished generation with the same key from another indexed run (never generate twice)."""
    found = find_finished_generation(index_path, w.key)
    if found is None:
        return False
    run_path, rec = found
    if run_path.resolve() == folder.path.resolve():
        return False
    source = run_path / rec["result"]["video_path"]
    target = folder.video_path(w.backend, w.key, source.suffix)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.copy")
    shutil.copyfile(source, tmp)
    tmp.replace(target)
    result = GenerationResult.from_dict({**rec["result"], "video_path": str(target)})
    folder.append_generation(_record(w, result, folder, suite_name, suite_version, reused_from=str(run_path)))
    return True
