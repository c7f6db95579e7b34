"""The scoring stage: score a run's finished videos with the same code as `vbench-suite score`."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from vbench_suite.metrics import create_metric, score_items
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.runner.plan import REFERENCE_ROLE
from vbench_suite.store.run_folder import RunFolder

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


def run_scoring(folder: RunFolder, metric_names: Sequence[str], ctx: ScoringContext) -> dict[str, int]:
    """Score what is not scored yet and append the records. Returns records written per metric.

    Video-scope metrics score only videos without a record for that metric; set-scope metrics (FVD) are
    recomputed whenever any video is new, and their latest records supersede older ones.
    """
    items = scoring_items(folder)
    done: dict[str, set[str]] = {}
    for rec in folder.scores():
        if rec.get("key") and rec.get("status") in ("ok", "error"):
            done.setdefault(rec["metric"], set()).add(rec["key"])
    written: dict[str, int] = {}
    for name in metric_names:
        scope = create_metric(name).info.scope
        todo = [it for it in items if it.key not in done.get(name, set())]
        if not todo:
            continue
        batch = items if scope != "video" else todo
        records = score_items(batch, [name], ctx)
        folder.append_scores(r.to_dict() for r in records)
        written[name] = len(records)
        log.info("scored %s: %d records", name, len(records))
    return written
