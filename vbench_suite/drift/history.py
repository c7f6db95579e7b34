"""Which runs to compare, chosen from the run index: the previous canary run (`canary --against auto`), or the first
and last run of a backend in a time window (`vbench-suite drift --since ... --until ...`)."""
from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from vbench_suite.errors import ConfigError, UserError

_RELATIVE = re.compile(r"^(\d{1,5})d$")


@dataclass(frozen=True)
class IndexedRun:
    """One run as the index knows it."""

    run_id: str
    name: str
    path: Path
    created: datetime
    suite: str
    suite_version: str
    backends: tuple[str, ...]
    """Backends benchmarked (run.json `backends`)."""
    fingerprints: dict[str, Any]
    """backend -> declared fingerprint of its latest invocation (run.json `fingerprints`)."""

    def declared(self, backend: str) -> str:
        """The declared model of `backend` as one comparable string (model@version plus settings)."""
        fp = self.fingerprints.get(backend) or {}
        settings = json.dumps(fp.get("settings") or {}, sort_keys=True)
        return f"{fp.get('model')}@{fp.get('version')}" + ("" if settings == "{}" else f" {settings}")


def parse_when(text: str, *, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """'2026-10-01' (UTC; with `end_of_day`, the last instant of that day), an ISO time, or 'Nd' (N days before
    now). Raises `ConfigError` naming the accepted forms."""
    now = now or datetime.now(timezone.utc)
    m = _RELATIVE.match(text.strip())
    if m:
        return now - timedelta(days=int(m.group(1)))
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"cannot read the date '{text}': use YYYY-MM-DD, an ISO time such as 2026-10-01T12:00, "
                          "or Nd for N days ago (e.g. 30d)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if end_of_day and len(text.strip()) == 10:
        value = datetime.combine(value.date(), time.max, tzinfo=value.tzinfo)
    return value


def _created(text: str | None) -> datetime:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def indexed_runs(index_path: Path) -> list[IndexedRun]:
    """Every run in the index, oldest first. Raises `UserError` when there is no index at `index_path`."""
    if not Path(index_path).is_file():
        raise UserError(f"no run index at {index_path}: run `vbench-suite canary --backend NAME` (or `run`) first, "
                        "or pass --index PATH (index.sqlite beside your run folders)")
    conn = sqlite3.connect(f"{Path(index_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT run_id, name, path, created, suite, suite_version, meta_json FROM runs").fetchall()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"cannot read the run index {index_path} ({exc}); delete it and re-import the run "
                        "folders") from None
    finally:
        conn.close()
    out = []
    for run_id, name, path, created, suite, version, meta_json in rows:
        meta = json.loads(meta_json)
        out.append(IndexedRun(str(run_id), str(name), Path(path), _created(created), str(suite or ""),
                              str(version or ""), tuple(sorted(meta.get("backends") or [])),
                              dict(meta.get("fingerprints") or {})))
    return sorted(out, key=lambda r: r.created)


def previous_run(index_path: Path, current: IndexedRun, backends: tuple[str, ...]) -> IndexedRun | None:
    """The latest run before `current` of the same prompt set and version that benchmarked all of `backends` (else
    the latest sharing any of them), or None when there is none."""
    earlier = [r for r in indexed_runs(index_path) if r.run_id != current.run_id and r.created < current.created
               and (r.suite, r.suite_version) == (current.suite, current.suite_version)]
    full = [r for r in earlier if set(backends) <= set(r.backends)]
    some = [r for r in earlier if set(backends) & set(r.backends)]
    return (full or some or [None])[-1]


def find_run(index_path: Path, run_id: str) -> IndexedRun:
    for r in indexed_runs(index_path):
        if r.run_id == run_id:
            return r
    raise UserError(f"run {run_id} is not in the index {index_path}")


@dataclass(frozen=True)
class Window:
    """The runs of one backend in a time window: what to compare, and the declared changes in between."""

    runs: list[IndexedRun]
    baseline: IndexedRun
    current: IndexedRun
    declared_changes: list[str]
    """Sentences for each change of the backend's declared model between consecutive runs of the window."""


def window(index_path: Path, backend: str, since: datetime | None, until: datetime | None,
           suite: str | None) -> Window:
    """The runs of `backend` (of prompt set `suite` when given) created in [since, until]: the current run is the
    latest; the baseline the earliest with the same prompt-set version and the same declared model (so the drift
    test asks whether the output changed while the declared model did not). Raises `UserError` when fewer than two
    such runs exist, saying what was found."""
    runs = [r for r in indexed_runs(index_path) if backend in r.backends and (suite is None or r.suite == suite)
            and (since is None or r.created >= since) and (until is None or r.created <= until)]
    span = f"between {since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC" if since and until else \
        f"since {since:%Y-%m-%d %H:%M} UTC" if since else f"until {until:%Y-%m-%d %H:%M} UTC" if until else "at all"
    what = f"runs of '{backend}'" + (f" on prompt set '{suite}'" if suite else "")
    if len(runs) < 2:
        raise UserError(f"the index {index_path} has {len(runs)} {what} {span}; a drift check needs two. Schedule "
                        f"`vbench-suite canary --backend {backend}` (docs/drift.md) or widen --since/--until.")
    current = runs[-1]
    same = [r for r in runs if (r.suite, r.suite_version) == (current.suite, current.suite_version)
            and r.declared(backend) == current.declared(backend) and r.run_id != current.run_id]
    changes = [f"{backend}'s declared model changed between {a.created:%Y-%m-%d} ({a.name}) and {b.created:%Y-%m-%d} "
               f"({b.name}): {a.declared(backend)} → {b.declared(backend)}"
               for a, b in zip(runs, runs[1:]) if a.declared(backend) != b.declared(backend)]
    if not same:
        raise UserError(f"{what} {span}: no earlier run has the same prompt-set version and declared model as the "
                        f"latest ({current.name}, {current.declared(backend)}). " + " ".join(changes))
    return Window(runs, same[0], current, changes)
