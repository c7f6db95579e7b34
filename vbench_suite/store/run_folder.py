"""A run folder: run.json + append-only JSONL records + videos. See docs/architecture.md for the format.

Every record is appended (and fsynced) the moment it exists, so a kill at any point loses at most the work in
flight; readers ignore a torn last line.
"""
from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from vbench_suite.errors import UserError
from vbench_suite.keys import video_filename
from vbench_suite.tempfiles import is_temp_name, make_temp, remove_temp_files

SCHEMA_VERSION = 1
"""Version of the run-folder format; stored in run.json and checked on open."""

RUN_JSON = "run.json"
GENERATIONS = "generations.jsonl"
JOBS = "jobs.jsonl"
SCORES = "scores.jsonl"
VIDEOS = "videos"
SCORE_IDENTITY = ("metric", "profile", "scope", "backend", "other", "prompt_id", "category", "sample", "key")


def current_generations(records: Iterable[dict[str, Any]], fingerprints: dict[str, Any]
                        ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Split generation records into the current ones and a count of superseded ones per backend.

    A backend's records are current when made under its fingerprint in `fingerprints` (run.json: the one of its
    latest invocation). Records made under an earlier fingerprint (other weights, settings or model version) stay
    on disk but are not the same generator, so reports and scores leave them out rather than pool two models in one
    row. Backends without a recorded fingerprint (e.g. the FVD reference renderer) keep every record.
    """
    kept: list[dict[str, Any]] = []
    superseded: dict[str, int] = {}
    for rec in records:
        want = fingerprints.get(rec.get("backend", ""))
        got = (rec.get("result") or {}).get("fingerprint")
        if want is None or got is None or got == want:
            kept.append(rec)
        else:
            superseded[rec["backend"]] = superseded.get(rec["backend"], 0) + 1
    return kept, superseded


def scores_of(scores: Iterable[dict[str, Any]], keys: set[str]) -> list[dict[str, Any]]:
    """Score records of the generations `keys`, plus every set-level record (those carry no key and are recomputed
    over the current generations whenever one is added)."""
    return [s for s in scores if not s.get("key") or s["key"] in keys]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to `path` via a temporary file and rename (never a half-written file under the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = make_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of `path` ([] if missing). A torn or corrupt line (from a kill mid-write) is skipped."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


class _JsonlAppender:
    """Thread-safe, fsynced line appends that repair a torn tail left by a killed writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._checked_tail = False

    def append(self, objs: Iterable[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(o, sort_keys=True, default=str) + "\n" for o in objs)
        if not lines:
            return
        with self._lock:
            with open(self.path, "a+b") as f:
                if not self._checked_tail:
                    f.seek(0, os.SEEK_END)
                    if f.tell() > 0:
                        f.seek(-1, os.SEEK_END)
                        if f.read(1) != b"\n":
                            f.write(b"\n")  # isolate the torn line so the next record parses
                    self._checked_tail = True
                f.write(lines.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())


class RunFolder:
    """Reader/writer of one run folder. Safe to use from several threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._generations = _JsonlAppender(self.path / GENERATIONS)
        self._jobs = _JsonlAppender(self.path / JOBS)
        self._scores = _JsonlAppender(self.path / SCORES)

    # ---- metadata -------------------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.path / RUN_JSON

    def exists(self) -> bool:
        return self.run_json.is_file()

    def read_meta(self) -> dict[str, Any]:
        """Contents of run.json. Raises UserError when missing or from a newer schema."""
        if not self.exists():
            raise UserError(f"{self.path} is not a run folder (no {RUN_JSON}); pass the folder given to `run --out`.")
        try:
            meta = json.loads(self.run_json.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserError(f"{self.run_json} is not valid JSON ({exc}); restore it or start a new --out folder.")
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise UserError(f"{self.run_json} has schema version {version}; this vbench-suite reads version "
                            f"{SCHEMA_VERSION}. Use the vbench-suite release that wrote it.")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        meta = dict(meta, schema_version=SCHEMA_VERSION)
        write_json_atomic(self.run_json, meta)

    # ---- records --------------------------------------------------------------------------------------------
    def append_generation(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._generations.append([dict(record, finished_at=record.get("finished_at") or utc_now())])

    def generations(self) -> dict[str, dict[str, Any]]:
        """Latest generation record per cache key."""
        return {r["key"]: r for r in self.all_generations()}

    def all_generations(self) -> list[dict[str, Any]]:
        """Every generation record line, oldest first: earlier attempts at a key and superseded fingerprints too."""
        return [r for r in read_jsonl(self.path / GENERATIONS) if "key" in r]

    def billed_usd(self) -> dict[str, float]:
        """backend -> money this folder's records billed: the sum over every record line, not the latest per key.

        Each line is one attempt, and each attempt bills what it says (a failed attempt the vendor charged for and
        its retry are two charges; copies from other runs, re-downloads and damage notes bill 0), so nothing is
        counted twice and nothing paid is forgotten."""
        billed: dict[str, float] = {}
        for r in self.all_generations():
            billed[r.get("backend", "")] = billed.get(r.get("backend", ""), 0.0) + float(r.get("billed_usd") or 0.0)
        return billed

    def _split_generations(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        meta = self.read_meta() if self.run_json.is_file() else {}
        return current_generations(self.generations().values(), meta.get("fingerprints") or {})

    def current_generations(self) -> list[dict[str, Any]]:
        """`generations()` without records superseded by a newer fingerprint of their backend (see
        `current_generations`); what scores, summaries and reports use. Spending and resuming use every record."""
        return self._split_generations()[0]

    def superseded_generations(self) -> dict[str, int]:
        """backend -> number of its records made under an earlier fingerprint (kept on disk, not reported)."""
        return self._split_generations()[1]

    def current_scores(self) -> list[dict[str, Any]]:
        """`latest_scores()` of the current generations (see `scores_of`)."""
        return scores_of(self.latest_scores(), {g["key"] for g in self.current_generations()})

    def append_job(self, key: str, backend: str, job: dict[str, Any]) -> None:
        """Persist a remote job (id, status URL, ...) before polling; never pass secrets."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._jobs.append([{"key": key, "backend": backend, "job": job, "at": utc_now()}])

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Latest recorded job per cache key."""
        return {r["key"]: r["job"] for r in read_jsonl(self.path / JOBS) if "key" in r and "job" in r}

    def append_scores(self, records: Iterable[dict[str, Any]]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        now = utc_now()
        self._scores.append([dict(r, scored_at=r.get("scored_at") or now) for r in records])

    def scores(self) -> list[dict[str, Any]]:
        """Every score record ever appended, oldest first (see `latest_scores` for the current view)."""
        return read_jsonl(self.path / SCORES)

    def retract_scores(self, key: str, reason: str) -> int:
        """Void the current video-level scores of generation `key` (its video was found damaged): for each, append a
        record of the same identity with status 'error', `reason` and `retracted` true, which supersedes it (and
        which `runner.score` counts as scoring no video, so the replacement is scored). Returns how many."""
        void = [{**s, "status": "error", "value": None, "reason": reason, "ci_low": None, "ci_high": None,
                 "scored_at": None, "video_sha256": None, "retracted": True}
                for s in self.latest_scores()
                if s.get("key") == key and s.get("status") in ("ok", "error") and not s.get("retracted")]
        self.append_scores(void)
        return len(void)

    def latest_scores(self) -> list[dict[str, Any]]:
        """Current scores: for each identity (metric, profile, scope, backend, other, prompt, category, sample,
        key) the record written last (set-level metrics are recomputed as a run grows).

        A metric-level 'unavailable' record (no key: the metric could not run, or did not apply to what was
        selected then) is dropped once a later record of the same metric exists: the metric has run since.
        """
        latest: dict[tuple, tuple[int, dict[str, Any]]] = {}
        last_ran: dict[str, int] = {}
        for i, r in enumerate(self.scores()):
            latest[tuple(r.get(k) for k in SCORE_IDENTITY)] = (i, r)
            if r.get("status") != "unavailable":
                last_ran[r.get("metric", "")] = i
        return [r for i, r in latest.values() if not (r.get("status") == "unavailable" and not r.get("key")
                                                      and last_ran.get(r.get("metric", ""), -1) > i)]

    # ---- videos ---------------------------------------------------------------------------------------------
    def video_path(self, backend: str, key: str, suffix: str = ".mp4") -> Path:
        """Where the video of generation `key` lives (the one place that names it)."""
        return self.path / VIDEOS / backend / video_filename(key, suffix)

    def resolve(self, relative: str | None) -> Path | None:
        """Absolute path of a path stored relative to the run folder."""
        return None if relative is None else self.path / relative

    def remove_temp_files(self) -> list[Path]:
        """Delete the temporary files a killed process left in this folder (run.json rewrites at the top, renders,
        downloads and copies under videos/); returns them. Only while holding the folder's lock (`store.lock`)."""
        top = [p for p in self.path.iterdir() if p.is_file() and is_temp_name(p.name)] if self.path.is_dir() else []
        for p in top:
            p.unlink(missing_ok=True)
        return top + remove_temp_files(self.path / VIDEOS, in_videos=True)

    def relative(self, path: Path) -> str:
        return str(Path(path).resolve().relative_to(self.path.resolve()))
