"""SQLite index of every run, generation and score, for queries across runs and quarters.

The index is derived data: `import_run` (re)builds a run's rows from its folder, so copying a run folder from
another machine and importing it is all a quarter-over-quarter comparison needs.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vbench_suite.store.run_folder import RunFolder

INDEX_SCHEMA_VERSION = 1
INDEX_FILENAME = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, created TEXT, suite TEXT, suite_version TEXT,
    seed INTEGER, harness_version TEXT, git_commit TEXT, meta_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    run_id TEXT NOT NULL, key TEXT NOT NULL, backend TEXT, model TEXT, version TEXT, simulated INTEGER,
    prompt_id TEXT, category TEXT, sample INTEGER, status TEXT, error TEXT, retriable INTEGER,
    total_s REAL, queued_s REAL, generating_s REAL, downloading_s REAL, cost_usd REAL, video_seconds REAL,
    hardware_s REAL, video_path TEXT, record_json TEXT NOT NULL, PRIMARY KEY (run_id, key));
CREATE INDEX IF NOT EXISTS generations_by_key ON generations (key, status);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL, metric TEXT, profile TEXT, scope TEXT, backend TEXT, other TEXT, prompt_id TEXT,
    category TEXT, sample INTEGER, key TEXT, status TEXT, value REAL, n INTEGER, n_ref INTEGER, ci_low REAL,
    ci_high REAL, higher_is_better INTEGER, unit TEXT, simulated INTEGER, record_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scores_by_run ON scores (run_id, metric);
"""


def default_index_path(run_dir: str | Path) -> Path:
    """The index lives beside the run folders: `<parent of run_dir>/index.sqlite`."""
    return Path(run_dir).resolve().parent / INDEX_FILENAME


@contextmanager
def connect(index_path: str | Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) the index; commits on success, rolls back on error."""
    index_path = Path(index_path)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(index_path, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(INDEX_SCHEMA_VERSION),))
        elif int(row["value"]) != INDEX_SCHEMA_VERSION:
            raise RuntimeError(f"{index_path} has index schema {row['value']}, expected {INDEX_SCHEMA_VERSION}; "
                               "delete it and it will be rebuilt from the run folders")
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def import_run(index_path: str | Path, run_dir: str | Path) -> str:
    """Replace the index rows of the run in `run_dir` with what its folder holds now. Returns the run id."""
    folder = RunFolder(run_dir)
    meta = folder.read_meta()
    run_id = meta["run_id"]
    with connect(index_path) as conn:
        for table in ("runs", "generations", "scores"):
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        suite = meta.get("suite") or {}
        harness = meta.get("harness") or {}
        conn.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)", (
            run_id, str(folder.path.resolve()), folder.path.name, meta.get("created"), suite.get("name"),
            suite.get("version"), meta.get("seed"), harness.get("version"), harness.get("git_commit"),
            json.dumps(meta, sort_keys=True, default=str)))
        conn.executemany("INSERT INTO generations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         [_generation_row(run_id, r) for r in folder.generations().values()])
        conn.executemany("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         [_score_row(run_id, s) for s in folder.latest_scores()])
    return run_id


def _generation_row(run_id: str, rec: dict[str, Any]) -> tuple:
    res = rec.get("result") or {}
    fp = res.get("fingerprint") or {}
    lat = res.get("latency") or {}
    return (run_id, rec["key"], rec.get("backend"), fp.get("model"), fp.get("version"), int(bool(fp.get("simulated"))),
            rec.get("prompt_id"), rec.get("category"), rec.get("sample"), res.get("status"), res.get("error"),
            int(bool(res.get("retriable"))), lat.get("total_s"), lat.get("queued_s"), lat.get("generating_s"),
            lat.get("downloading_s"), res.get("cost_usd"), res.get("video_seconds"), res.get("hardware_s"),
            res.get("video_path"), json.dumps(rec, sort_keys=True, default=str))


def _score_row(run_id: str, s: dict[str, Any]) -> tuple:
    return (run_id, s.get("metric"), s.get("profile"), s.get("scope"), s.get("backend"), s.get("other"),
            s.get("prompt_id"), s.get("category"), s.get("sample"), s.get("key"), s.get("status"), s.get("value"),
            s.get("n"), s.get("n_ref"), s.get("ci_low"), s.get("ci_high"), int(bool(s.get("higher_is_better"))),
            s.get("unit"), int(bool(s.get("simulated"))), json.dumps(s, sort_keys=True, default=str))


def find_finished_generation(index_path: str | Path, key: str, exclude: str | Path | None = None
                             ) -> tuple[Path, dict[str, Any]] | None:
    """A successful generation with this cache key in any indexed run (newest first) whose video still exists, or
    None. `exclude`: a run folder whose rows are not candidates (the run asking)."""
    index_path = Path(index_path)
    skip = Path(exclude).resolve() if exclude is not None else None
    if not index_path.exists():
        return None
    with connect(index_path) as conn:
        rows = conn.execute(
            "SELECT r.path AS run_path, g.record_json AS rec FROM generations g JOIN runs r USING (run_id) "
            "WHERE g.key = ? AND g.status = 'ok' ORDER BY r.created DESC", (key,)).fetchall()
    for row in rows:
        if skip is not None and Path(row["run_path"]).resolve() == skip:
            continue
        rec = json.loads(row["rec"])
        video = Path(row["run_path"]) / (rec.get("result") or {}).get("video_path", "")
        if video.is_file():
            return Path(row["run_path"]), rec
    return None


def list_runs(index_path: str | Path) -> list[dict[str, Any]]:
    """All indexed runs, newest first."""
    with connect(index_path) as conn:
        rows = conn.execute("SELECT run_id, path, name, created, suite, suite_version, seed, harness_version, "
                            "git_commit FROM runs ORDER BY created DESC").fetchall()
    return [dict(r) for r in rows]
