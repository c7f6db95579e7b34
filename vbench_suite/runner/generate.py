"""The generation stage: run pending work items on their backends, with cache, resume, budget and concurrency."""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.keys import file_sha256
from vbench_suite.runner.budget import BudgetGate, possibly_billed_by_key
from vbench_suite.runner.plan import WorkItem
from vbench_suite.store.index import find_finished_generation
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.tempfiles import make_temp
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
    regenerated: dict[str, int] = field(default_factory=dict)
    """Finished local videos found damaged (see `video_damage`) and sent to be generated again."""
    redownloaded: dict[str, int] = field(default_factory=dict)
    """Finished remote videos found damaged and downloaded again from their recorded job (nothing paid)."""
    damaged: dict[str, int] = field(default_factory=dict)
    """Finished remote videos found damaged that could not be re-obtained without paying: recorded as damaged."""

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


@runtime_checkable
class Redownloads(Protocol):
    """A backend that can fetch the output of a job it finished earlier again, without creating a new one."""

    def redownload(self, job: dict[str, Any], ctx: GenerationContext) -> GenerationResult: ...


def video_damage(record: dict[str, Any], folder: RunFolder) -> str | None:
    """Why the video of an ok record no longer is the one recorded (missing, other size, other sha256), or None.

    Size first (a stat), then the hash (one read of the file); a record without `video_bytes` (older releases)
    is checked by hash alone, one without either is trusted.
    """
    result = record.get("result") or {}
    video = folder.resolve(result.get("video_path"))
    if video is None or not video.is_file():
        return f"video {result.get('video_path')} is missing"
    size, want = video.stat().st_size, record.get("video_bytes")
    if want is not None and size != want:
        return f"video {result['video_path']} has {size} bytes, the record says {want}"
    sha = result.get("video_sha256")
    if sha and file_sha256(video) != sha:
        return f"video {result['video_path']} does not match the sha256 in its record"
    return None


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
    video: dict[str, Any] = {}
    if result.video_path:
        try:
            res["video_path"] = folder.relative(Path(result.video_path))
        except ValueError:
            res["video_path"] = str(result.video_path)
        if result.status == "ok" and Path(result.video_path).is_file():
            # Size and hash let a resume notice a damaged file (`video_damage`).
            video["video_bytes"] = Path(result.video_path).stat().st_size
            res["video_sha256"] = res.get("video_sha256") or file_sha256(result.video_path)
    return {**video, "key": work.key, "backend": work.backend, "role": work.role, "prompt_id": work.item.id,
            "category": work.item.category, "sample": work.sample, "suite": suite_name,
            "suite_version": suite_version, "request": work.request.to_dict(), "adjustments": list(work.adjustments),
            "result": res, **more}


CREATE_OUTCOME_UNKNOWN = "create_outcome_unknown"
"""`failure_code` (in `GenerationResult.info`) of a create request whose answer was lost: the vendor may have made,
and billed, the job (see `backends.remote.base`). No vendor has idempotency keys, so it is never blindly resent."""


def is_outcome_unknown(result: dict[str, Any]) -> bool:
    """Whether a record's result (`GenerationResult.to_dict()`) is a create whose outcome is unknown."""
    return (result.get("info") or {}).get("failure_code") == CREATE_OUTCOME_UNKNOWN


def possible_bill(result: GenerationResult, estimate_usd: float, before_usd: float) -> float:
    """USD that this key's creates of unknown outcome may have billed, as of this record (its `may_have_billed_usd`).

    Cumulative per key, so the latest record of a key that carries the field is all a reader needs (the report and
    `budget.possibly_billed_usd` read only that one): `before_usd` (what the key's earlier records said) is carried
    on, and `estimate_usd` (the backend's upper estimate) is added when this attempt is a new unknown create: it sent a
    create whose answer was lost (one or more HTTP requests), or it is the first record of a create that an earlier
    process was killed in (the backend found the job recorded as 'submitting' and no record counted it yet). A resume
    that only finds the same lost create again sends nothing and adds nothing. Nothing is ever subtracted: no vendor
    can find a job without its id, so the money may have been spent whatever happens later.
    """
    res = result.to_dict()
    if not is_outcome_unknown(res):
        return before_usd
    sent_now = int((res.get("info") or {}).get("http_requests") or 0) > 0
    return before_usd + (estimate_usd if sent_now or before_usd == 0.0 else 0.0)


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
    possible_before = possibly_billed_by_key(folder.all_generations())
    pending: dict[str, list[WorkItem]] = {}
    for w in work:
        record = existing.get(w.key)
        is_ok = record is not None and (record.get("result") or {}).get("status") == "ok"
        damage = video_damage(record, folder) if record is not None and is_ok else None
        if damage is None and is_finished(record, folder):
            stats.bump(stats.cached, w.backend)
            progress(w.backend, 1)
            continue
        if record is not None and damage is not None:
            folder.retract_scores(w.key, f"not a score of the current video: {damage}")
            if not backends[w.backend].remote:
                log.warning("%s: %s; generating it again (local backend)", w.backend, damage)
                stats.bump(stats.regenerated, w.backend)
            else:
                # Never paid for twice: copy it again (a copy of another run's result), download it again from its
                # job, or say it is damaged.
                copied = (record.get("reused_from") and index_path is not None
                          and may_reuse(backends[w.backend], reuse)
                          and _reuse_from_index(w, folder, index_path, suite_name, suite_version))
                if not copied:
                    _recover_remote(w, record, damage, backends[w.backend], folder, jobs.get(w.key), stats)
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
                before = possible_before.get(w.key, 0.0)
                possible = possible_bill(result, estimate, before)
                budget.settle(estimate, billed, possible_usd=possible - before)
                more: dict[str, Any] = {"billed_usd": billed}
                if possible or is_outcome_unknown(result.to_dict()):
                    # The report never imports backends: the hint on where to look travels in the record.
                    more.update(may_have_billed_usd=possible,
                                dashboard_hint=getattr(backend, "dashboard_hint", "") or "")
                folder.append_generation(_record(w, result, folder, suite_name, suite_version, **more))
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


def _recover_remote(w: WorkItem, record: dict[str, Any], damage: str, backend: Backend, folder: RunFolder,
                    job: dict[str, Any] | None, stats: GenerationStats) -> None:
    """Replace the damaged video of a finished remote generation by downloading it again from its recorded job, or
    append a record marking it damaged (failed, not retriable: a resume does not pay for it again). Either record
    bills nothing; the money stays on the record line of the original generation."""
    result = dict(record.get("result") or {})
    if not isinstance(backend, Redownloads):
        why = f"backend {backend.name} cannot download a finished job again"
    elif not job or not job.get("job_id") or job.get("job_id") != result.get("job_id"):
        why = "no recorded job to download it from"
    else:
        ctx = GenerationContext(out_path=folder.video_path(w.backend, w.key), key=w.key, recorded_job=dict(job))
        ctx.out_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            got = backend.redownload(dict(job), ctx)
        except Exception as exc:  # noqa: BLE001 - a failed re-download marks the video damaged, it stops nothing
            got = _failure(backend, exc)
        if got.status == "ok" and got.video_path:
            path = Path(got.video_path)
            result.update(video_path=folder.relative(path), video_sha256=got.video_sha256 or file_sha256(path),
                          info={**(result.get("info") or {}), "redownloaded": True})
            folder.append_generation({**record, "result": result, "video_bytes": path.stat().st_size,
                                      "billed_usd": 0.0, "recovered": "redownloaded", "finished_at": None})
            stats.bump(stats.redownloaded, w.backend)
            log.warning("%s: %s; downloaded it again from job %s (nothing paid)", w.backend, damage, job["job_id"])
            return
        why = got.error or "the vendor did not serve it"
    result.update(status="failed", video_path=None, retriable=False,
                  error=f"damaged: {damage}; not re-obtained ({why}) and not generated again, to avoid paying twice",
                  info={**(result.get("info") or {}), "damaged": True})
    folder.append_generation({**{k: v for k, v in record.items() if k != "video_bytes"}, "result": result,
                              "billed_usd": 0.0, "damaged": damage, "finished_at": None})
    stats.bump(stats.damaged, w.backend)
    log.warning("%s: %s; marked damaged, not re-obtained (%s) and not paid for again", w.backend, damage, why)


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
    fd, tmp = make_temp(target.parent, target.name, ".copy")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        want = rec["result"].get("video_sha256")
        if want and file_sha256(tmp) != want:
            log.warning("not reusing %s: it does not match the sha256 in its record (damaged)", source)
            return None
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    result = GenerationResult.from_dict({**rec["result"], "video_path": str(target)})
    # A copy of a copy names the run that generated (and paid for) the result.
    origin = str(rec.get("reused_from") or run_path)
    folder.append_generation(_record(w, result, folder, suite_name, suite_version, reused_from=origin,
                                     billed_usd=0.0))
    return origin
