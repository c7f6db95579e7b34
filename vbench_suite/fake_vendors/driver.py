"""A minimal stand-in for the runner's generation stage, for exercising backends against the fake (tests and
`benchmarks/bench_vendors.py`): a thread pool, `jobs.jsonl` for record_job/recorded_job, `generations.jsonl`
for results (last line per key wins), resume by re-running over the same folder.

It follows the runner's contract: a key whose latest record is ok (video present), refused, or failed and not
retriable is finished; anything else is generated again with the key's latest recorded job.
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.keys import generation_key, video_filename
from vbench_suite.types import GenerationRequest, GenerationResult

JOBS = "jobs.jsonl"
GENERATIONS = "generations.jsonl"


class SimulatedCrash(BaseException):
    """Raised (after the job id is persisted) to simulate the process dying mid-run; not an `Exception`, so the
    backends' error handling cannot swallow it, just as it cannot swallow SIGKILL."""


@dataclass(frozen=True)
class Work:
    backend: Backend
    request: GenerationRequest

    @property
    def key(self) -> str:
        return generation_key(self.backend.fingerprint(), self.request)


class _Jsonl:
    """Append-only JSON lines with fsync (what a crash-safe run folder does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self.lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def latest(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:  # a line cut by a kill -9
                    continue
                out[rec["key"]] = rec
        return out


def is_finished(record: dict[str, Any] | None, run_dir: Path) -> bool:
    if record is None:
        return False
    result = record["result"]
    if result["status"] == "ok":
        return bool(result.get("video_path")) and (run_dir / result["video_path"]).is_file()
    return result["status"] == "refused" or not result.get("retriable", False)


def run_jobs(work: Sequence[Work], run_dir: Path, *, concurrency: int = 8, crash_after_submits: int | None = None,
             on_result: Callable[[Work, GenerationResult], None] | None = None) -> dict[str, dict[str, Any]]:
    """Generate every unfinished work item into `run_dir`; return the latest record per key.

    `crash_after_submits=N`: once more than N jobs have been submitted in this call, every job id recorded from
    then on is persisted and then SimulatedCrash is raised (the process 'dies' while those jobs are in flight),
    and no new work starts.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs, gens = _Jsonl(run_dir / JOBS), _Jsonl(run_dir / GENERATIONS)
    recorded = {k: r["job"] for k, r in jobs.latest().items()}
    existing = gens.latest()
    crashed = threading.Event()
    submits = [0]
    count_lock = threading.Lock()

    def record(key: str, job: dict[str, Any]) -> None:
        jobs.append({"key": key, "job": job})
        if crash_after_submits is None or job.get("state") != "submitted":
            return
        with count_lock:
            submits[0] += 1
            if submits[0] > crash_after_submits:
                crashed.set()
        if crashed.is_set():
            raise SimulatedCrash()

    def one(w: Work) -> None:
        if crashed.is_set():
            return
        key = w.key
        out = run_dir / "videos" / w.backend.name / video_filename(key)
        out.parent.mkdir(parents=True, exist_ok=True)
        ctx = GenerationContext(out_path=out, key=key, record_job=lambda job: record(key, job),
                                recorded_job=recorded.get(key))
        try:
            result = w.backend.generate(w.request, ctx)
        except SimulatedCrash:
            crashed.set()
            return
        res = result.to_dict()
        if result.video_path:
            res["video_path"] = str(Path(result.video_path).relative_to(run_dir))
        gens.append({"key": key, "backend": w.backend.name, "prompt_id": w.request.prompt_id, "result": res})
        if on_result is not None:
            on_result(w, result)

    todo = [w for w in work if not is_finished(existing.get(w.key), run_dir)]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for fut in [pool.submit(one, w) for w in todo]:
            fut.result()
    return gens.latest()
