"""The scoring stage: score a run's finished videos with the same code as `vbench-suite score`."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from vbench_suite.metrics import create_metric, score_items
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.runner.plan import REFERENCE_ROLE
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.types import ScoreRecord

log = logging.getLogger(__name__)


def scoring_items(folder: RunFolder, role: str = "benchmark") -> list[ScoringItem]:
    """Finished (status ok) generations of the run with the given role, as metric inputs."""
    items = []
    for rec in folder.current_generations():
        result = rec.get("result") or {}
        if rec.get("role", "benchmark") != role or result.get("status") != "ok":
            continue
        video = folder.resolve(result.get("video_path"))
        if video is None or not video.is_file():
            continue
        request = rec.get("request") or {}
        reference = (request.get("images") or [None])[0] or request.get("first_frame")
        items.append(ScoringItem(
            video_path=str(video), key=rec["key"], backend=rec["backend"], prompt_id=rec.get("prompt_id", ""),
            prompt=request.get("prompt", ""), category=rec.get("category", ""), sample=int(rec.get("sample", 0)),
            reference_path=reference, simulated=bool((result.get("fingerprint") or {}).get("simulated"))))
    items.sort(key=lambda it: (it.backend, it.prompt_id, it.sample))
    return items


def reference_videos(folder: RunFolder) -> list[str]:
    return [it.video_path for it in scoring_items(folder, role=REFERENCE_ROLE)]


SCORE_CHUNK = 4
"""Videos per call of a per-video metric in a run: progress (and the records on disk) advance chunk by chunk."""


def run_scoring(folder: RunFolder, metric_names: Sequence[str], ctx: ScoringContext,
                on_progress: Callable[[str, int, int], None] | None = None,
                scorer: Scorer | None = None) -> dict[str, int]:
    """Score what is not scored yet and append the records. Returns records written per metric.

    Video-scope metrics score only videos without a record for that metric, a few at a time, appending each
    chunk's records as they exist (a kill loses at most the chunks in flight); set-scope metrics (FVD) are
    recomputed whenever any video is new, and their latest records supersede older ones. A video is identified by
    its key *and* the sha256 of its file (stored in each score record), so a video replaced after damage is scored
    again. `on_progress(metric, n_done_increment, total)` reports videos done per metric (set-scope: all at once).
    `scorer` runs the metrics (default: `LocalScorer`, in this process; `--engine ray` passes one that spreads
    the work over Ray actors); what it returns, not where it ran, decides the records.
    """
    progress = on_progress or (lambda metric, n, total: None)
    scorer = scorer or LocalScorer()
    items = scoring_items(folder)
    shas = video_shas(folder)
    done = scored_videos(folder, shas)
    written: dict[str, int] = {}
    for name in metric_names:
        scope = create_metric(name).info.scope
        todo = [it for it in items if (it.key, shas.get(it.key)) not in done.get(name, set())]
        if not todo:
            continue
        if scope == "video":
            n = _score_in_chunks(folder, name, todo, ctx, lambda k, t=len(todo), m=name: progress(m, k, t), shas,
                                 scorer)
        else:
            progress(name, 0, len(items))
            records = scorer.score_set(name, items, ctx)
            folder.append_scores(_with_sha(r, shas) for r in records)
            progress(name, len(items), len(items))
            n = len(records)
        written[name] = n
        log.info("scored %s: %d records", name, n)
    return written


class Scorer(Protocol):
    """Runs metrics over items for `run_scoring`; the local and Ray engines each have one."""

    def score_chunks(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext,
                     size: int) -> Iterator[tuple[Sequence[ScoringItem], list[ScoreRecord]]]:
        """Score a video-scope metric `size` items at a time; yield (the items covered, their records) as each part
        finishes, in any order, until every item is covered."""
        ...

    def score_set(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        """Score a set-scope metric over all `items` at once (records as `metrics.score_items` gives them)."""
        ...


class LocalScorer:
    """Scores in this process (the local engine): one metric instance per metric, its model loaded once.

    `ctx.device` 'auto' is resolved here (CUDA when present)."""

    def score_chunks(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext,
                     size: int) -> Iterator[tuple[Sequence[ScoringItem], list[ScoreRecord]]]:
        """If the metric cannot be built or raises, the rest goes through `score_items`, which turns the problem
        into records exactly as `vbench-suite score` does."""
        ctx = _resolved(ctx)
        try:
            metric = create_metric(name, **dict(ctx.options.get(name) or {}))
        except Exception:  # noqa: BLE001 - score_items records why
            metric = None
        for start in range(0, len(items), size):
            chunk = items[start:start + size]
            try:
                if metric is None:
                    raise RuntimeError("metric could not be built")
                records = metric.score(chunk, ctx)
            except Exception:  # noqa: BLE001 - see docstring
                yield items[start:], score_items(items[start:], [name], ctx)
                return
            yield chunk, records

    def score_set(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        return score_items(items, [name], _resolved(ctx))


def _resolved(ctx: ScoringContext) -> ScoringContext:
    from vbench_suite.device import resolve_device

    device = resolve_device(ctx.device)
    return ctx if device == ctx.device else dataclasses.replace(ctx, device=device)


def video_shas(folder: RunFolder) -> dict[str, str | None]:
    """key -> sha256 of the current ok generation's video, as recorded."""
    return {g["key"]: (g.get("result") or {}).get("video_sha256") for g in folder.current_generations()
            if (g.get("result") or {}).get("status") == "ok"}


def scored_videos(folder: RunFolder, shas: dict[str, str | None]) -> dict[str, set[tuple[str, str | None]]]:
    """metric -> {(key, video sha256)} already scored (ok or error), judged by the latest record of each metric
    and key: score records carry the sha256 of the video they scored; a retraction (`RunFolder.retract_scores`,
    written when the video was found damaged) counts for no video, so whatever replaces it is scored; a record
    from before sha256s were stored counts for the key's current video."""
    latest: dict[tuple[str, str], dict[str, object]] = {}
    for rec in folder.scores():
        if rec.get("key") and rec.get("status") in ("ok", "error"):
            latest[(rec["metric"], rec["key"])] = rec
    done: dict[str, set[tuple[str, str | None]]] = {}
    for (metric, key), rec in latest.items():
        if rec.get("retracted"):
            continue
        sha = rec["video_sha256"] if "video_sha256" in rec else shas.get(key)
        done.setdefault(metric, set()).add((key, sha))  # type: ignore[arg-type]
    return done


def _with_sha(record: ScoreRecord, shas: dict[str, str | None]) -> dict[str, object]:
    out = record.to_dict()
    if record.key:
        out["video_sha256"] = shas.get(record.key)
    return out


def _score_in_chunks(folder: RunFolder, name: str, items: Sequence[ScoringItem], ctx: ScoringContext,
                     advance: Callable[[int], None], shas: dict[str, str | None], scorer: Scorer) -> int:
    """Score a per-video metric chunk by chunk (`scorer.score_chunks`), appending each chunk's records as they come.
    Returns records written.

    'unavailable' records describe a whole batch (e.g. lpips_ref: "no video has a paired reference"), so a chunk's
    verdict is kept back and written only when no chunk produced a value: the result does not depend on chunking.
    """
    written = 0
    held: dict[str, ScoreRecord] = {}
    for chunk, records in scorer.score_chunks(name, items, ctx, SCORE_CHUNK):
        for r in records:
            if r.status == "unavailable":
                held.setdefault(r.reason or "", r)
        kept = [r for r in records if r.status != "unavailable"]
        folder.append_scores(_with_sha(r, shas) for r in kept)
        written += len(kept)
        advance(len(chunk))
    if not written and held:
        folder.append_scores(_with_sha(r, shas) for r in held.values())
        written = len(held)
    return written
