"""Loading layer of the reports: a run from the run store (a run folder, or the SQLite index when the folder is not
here) as pandas DataFrames.

Folders are read through `vbench_suite.store.RunFolder` (the same "last line wins" rules as the runner); the index
holds the same records verbatim (`record_json`), so a run imported on another machine reports identically. Never
imports torch. Generations with role 'reference' (the FVD reference set) are not a benchmarked backend's output and
are left out of every table.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from vbench_suite.errors import UserError
from vbench_suite.report.render import fmt_usd
from vbench_suite.store.index import default_index_path
from vbench_suite.store.run_folder import GENERATIONS, SCORES, RunFolder, current_generations, scores_of
from vbench_suite.types import GenerationResult, ScoreRecord, thaw

REFERENCE_ROLE = "reference"
"""`role` of generation records that form the FVD reference set (same value as `runner.plan.REFERENCE_ROLE`; the
report does not import the runner, a test keeps the two equal)."""
STAGE_ORDER: tuple[str, ...] = ("text_encoding", "image_encoding", "encoding", "denoising", "decoding")
"""Display order of the usual local pipeline stages (records store them as a JSON object, whose key order the
store does not keep); other stage names follow alphabetically."""
CREATE_OUTCOME_UNKNOWN = "create_outcome_unknown"
"""`failure_code` of a create whose answer was lost (same value as `runner.generate.CREATE_OUTCOME_UNKNOWN`; the
report does not import the runner, a test keeps the two equal)."""
SIMULATED_MARK = " (simulated)"
"""Suffix on every backend label whose results came from a fake vendor server."""

GENERATION_COLUMNS: tuple[str, ...] = (
    "key", "backend", "prompt_id", "category", "sample", "suite", "suite_version", "status", "error", "retriable",
    "model", "version", "settings", "simulated", "queued_s", "generating_s", "downloading_s", "total_s",
    "cost_usd", "hardware_s", "video_seconds", "billed_units", "billing_unit", "peak_memory_mb", "video_path",
    "requested_duration_s", "finished_at", "unsupported", "width", "height", "reused_from", "outcome_unknown",
    "may_have_billed_usd", "dashboard_hint", "info")
"""Columns of `RunData.generations` (plus one `stage_<name>` column per local latency stage seen in the run).
`settings` and `info` are the fingerprint's settings and the result's info as JSON text."""

SCORE_COLUMNS: tuple[str, ...] = tuple(ScoreRecord.__dataclass_fields__) + ("scored_at",)
"""Columns of `RunData.scores`: every ScoreRecord field (extra as a dict) plus `scored_at`."""


class RunFolderError(UserError):
    """A run folder is missing or unreadable. The message names the folder and what is missing."""


@dataclass
class RunData:
    """One run, ready for reporting.

    `generations`: one row per benchmark generation key (the last line for a key wins), columns
    `GENERATION_COLUMNS` + `stage_*`. `scores`: the current score records (latest per identity), `SCORE_COLUMNS`.
    """

    run_dir: Path
    name: str
    meta: dict[str, Any]
    generations: pd.DataFrame
    scores: pd.DataFrame
    skipped_lines: int = 0
    stage_names: list[str] = field(default_factory=list)
    reference_generations: int = 0
    superseded: dict[str, int] = field(default_factory=dict)
    """backend -> generations made under an earlier fingerprint of it (kept in the run folder, not reported)."""
    """Generations of the FVD reference set (role 'reference'), left out of `generations`."""

    def is_simulated(self, backend: str) -> bool:
        """True if any generation or score of `backend` is marked simulated."""
        g = self.generations
        s = self.scores
        return bool(g.loc[g["backend"] == backend, "simulated"].any()) or bool(
            s.loc[s["backend"] == backend, "simulated"].any())

    def label(self, backend: str) -> str:
        """Display label of a backend: its name, plus ' (simulated)' when it talked to a fake vendor; records that
        belong to no backend (a metric unavailable for the whole run) read '(all backends)'."""
        if not backend:
            return "(all backends)"
        return backend + SIMULATED_MARK if self.is_simulated(backend) else backend

    def reused(self, backend: str | None = None) -> dict[str, int]:
        """{source run folder: results copied from it} over benchmark generations (of `backend`, if given)."""
        g = self.generations
        if backend is not None:
            g = g[g["backend"] == backend]
        counts = g.loc[g["reused_from"] != "", "reused_from"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    def requested_backends(self) -> list[str]:
        """Every backend the user asked for: run.json's `requested_backends` when recorded, else the union of the
        backends with records, the skipped (not configured) ones and those stopped by the budget cap."""
        requested = self.meta.get("requested_backends")
        if isinstance(requested, list) and requested:
            return sorted(set(str(b) for b in requested) | set(self.backends_with_generations()))
        names = set(self.backends_with_generations()) | set(self.meta.get("backends") or [])
        names |= set(self.skipped_backends()) | set(self.over_budget())
        return sorted(str(n) for n in names)

    def backends_with_generations(self) -> list[str]:
        """Backends with at least one benchmark generation record."""
        return sorted(str(b) for b in self.generations["backend"].unique())

    def skipped_backends(self) -> dict[str, str]:
        """{backend: why it was not run} for backends that were not configured (run.json `skipped_backends`)."""
        skipped = self.meta.get("skipped_backends") or {}
        return {str(k): str(v) for k, v in skipped.items()} if isinstance(skipped, dict) else {}

    def over_budget(self) -> dict[str, int]:
        """{backend: requests not sent because the budget cap would have been exceeded} (run.json `over_budget`)."""
        over = self.meta.get("over_budget") or {}
        return {str(k): int(v) for k, v in over.items() if int(v) > 0} if isinstance(over, dict) else {}

    def budget_usd(self) -> float | None:
        """The budget cap of the run in USD: run.json `budget_usd`, else the last invocation's config; None if none."""
        value = self.meta.get("budget_usd")
        if value is None:
            for inv in reversed(self.meta.get("invocations") or []):
                value = ((inv or {}).get("config") or {}).get("budget_usd")
                if value is not None:
                    break
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None

    def outcome_notes(self, backend: str) -> list[str]:
        """What happened to a requested backend beyond its records: not configured, requests not sent for the
        budget cap, unsupported requests, results reused from other runs (each with its count and cause)."""
        notes: list[str] = []
        skipped = self.skipped_backends()
        if backend in skipped:
            notes.append(f"not configured: {skipped[backend]}")
        over = self.over_budget().get(backend, 0)
        if over:
            cap = self.budget_usd()
            notes.append(f"{over} request(s) not sent: budget cap" + (f" ${cap:,.2f}" if cap is not None else ""))
        g = self.generations[self.generations["backend"] == backend]
        n_unsupported = int(g["unsupported"].astype(bool).sum())
        if n_unsupported:
            notes.append(f"{n_unsupported} unsupported (outside the backend's declared capabilities, not sent)")
        for source, n in sorted(self.reused(backend).items()):
            notes.append(f"{n} result(s) reused from {source}")
        unknown = self.outcome_unknown_note(backend)
        if unknown:
            notes.append(unknown)
        if not len(g) and not notes:
            notes.append("no generation recorded")
        return notes

    def outcome_unknown_note(self, backend: str) -> str:
        """'' or a sentence on `backend`'s creates of unknown outcome: how many, what they may have billed (upper
        estimate) and where to check in the vendor's dashboard (the hint its records carry)."""
        g = self.generations[self.generations["backend"] == backend]
        n = int(g["outcome_unknown"].astype(bool).sum())
        if not n:
            return ""
        usd = float(g["may_have_billed_usd"].sum())
        hints = [h for h in dict.fromkeys(g["dashboard_hint"]) if h]
        check = f"; check {hints[-1]}" if hints else "; check the vendor's dashboard for jobs made at those times"
        return (f"{n} create(s) with outcome unknown (answer lost; may have been billed, up to {fmt_usd(usd)}; not "
                f"resent){check}")

    def backends(self) -> list[str]:
        """Backends with generations or scores, sorted by name."""
        names = set(self.generations["backend"]) | set(self.scores.loc[self.scores["backend"] != "", "backend"])
        return sorted(str(n) for n in names)

    def suite_versions(self) -> dict[str, str]:
        """{suite name: version} as recorded in generations, falling back to run.json."""
        out: dict[str, str] = {}
        g = self.generations
        if len(g):
            for suite, version in g[["suite", "suite_version"]].drop_duplicates().itertuples(index=False):
                if suite or version:
                    out[str(suite)] = str(version)
        if not out:
            suite = self.meta.get("suite")
            if isinstance(suite, dict):
                out[str(suite.get("name", ""))] = str(suite.get("version", ""))
            elif suite:
                out[str(suite)] = str(self.meta.get("suite_version", ""))
        return out


def _count_bad_lines(path: Path) -> int:
    """Lines of a JSONL file that are not a JSON object (a torn last line after a kill); the store skips them."""
    if not path.is_file():
        return 0
    bad = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                ok = isinstance(json.loads(line), dict)
            except json.JSONDecodeError:
                ok = False
            bad += not ok
    return bad


def _generation_row(d: dict[str, Any]) -> dict[str, Any]:
    result = GenerationResult.from_dict(d["result"])
    request = d.get("request") or {}
    lat = result.latency
    size = request.get("resolution") or (0, 0)
    row: dict[str, Any] = {
        "key": str(d.get("key", "")), "backend": str(d.get("backend") or result.fingerprint.backend),
        "prompt_id": str(d.get("prompt_id", request.get("prompt_id", ""))), "category": str(d.get("category", "")),
        "sample": int(d.get("sample", 0)), "suite": str(d.get("suite", "")),
        "suite_version": str(d.get("suite_version", "")), "status": result.status, "error": result.error,
        "retriable": result.retriable, "model": result.fingerprint.model, "version": result.fingerprint.version,
        "settings": json.dumps(result.fingerprint.to_dict()["settings"], sort_keys=True, default=str),
        "simulated": result.fingerprint.simulated, "queued_s": lat.queued_s, "generating_s": lat.generating_s,
        "downloading_s": lat.downloading_s, "total_s": lat.total_s, "cost_usd": result.cost_usd,
        "hardware_s": result.hardware_s, "video_seconds": result.video_seconds, "billed_units": result.billed_units,
        "billing_unit": result.billing_unit, "peak_memory_mb": result.peak_memory_mb, "video_path": result.video_path,
        "requested_duration_s": float(request.get("duration_s", float("nan"))),
        "finished_at": str(d.get("finished_at", "")),
        # The runner never sent it: outside the backend's declared capabilities (not a vendor failure).
        "unsupported": bool(dict(result.info).get("unsupported", False)),
        # Requested (fitted) frame size: break-even compares only like formats (report.economics.VideoFormat).
        "width": int(size[0]), "height": int(size[1]),
        # The run folder this result was copied from ('' when this run generated it): not this run's measurement.
        "reused_from": str(d.get("reused_from") or ""),
        # A create whose answer was lost: the vendor may have made (and billed) the job; neither ok nor failed.
        "outcome_unknown": dict(result.info).get("failure_code") == CREATE_OUTCOME_UNKNOWN,
        "may_have_billed_usd": float(d.get("may_have_billed_usd") or 0.0),
        "dashboard_hint": str(d.get("dashboard_hint") or ""),
        # What a self-hosted backend ran on and how it was priced (`backends.hardware`): read by the break-even.
        "info": json.dumps(thaw(result.info), sort_keys=True, default=str),
    }
    for name, seconds in lat.stages:
        row[f"stage_{name}"] = seconds
    return row


def generations_frame(records: Iterable[dict[str, Any]]) -> tuple[pd.DataFrame, list[str], int, int]:
    """Latest generation records (one per key) → (DataFrame of benchmark generations, stage names in `STAGE_ORDER`,
    reference-role records left out, records that could not be parsed)."""
    rows: list[dict[str, Any]] = []
    n_reference = bad = 0
    for d in records:
        if d.get("role", "benchmark") == REFERENCE_ROLE:
            n_reference += 1
            continue
        if d.get("role", "benchmark") != "benchmark":  # e.g. the reproducibility probe's replays (run.json 'probe')
            continue
        try:
            rows.append(_generation_row(d))
        except (KeyError, TypeError, ValueError):
            bad += 1
    seen = {k[6:] for r in rows for k in r if k.startswith("stage_")}
    stages = sorted(seen, key=lambda name: (STAGE_ORDER.index(name) if name in STAGE_ORDER else len(STAGE_ORDER), name))
    df = pd.DataFrame(rows, columns=list(GENERATION_COLUMNS) + [f"stage_{s}" for s in stages])
    if len(df):
        df = df.drop_duplicates(subset="key", keep="last").reset_index(drop=True)
    df["simulated"] = df["simulated"].astype(bool)
    return df, stages, n_reference, bad


def scores_frame(records: Iterable[dict[str, Any]]) -> tuple[pd.DataFrame, int]:
    """Current score records (latest per identity, as `RunFolder.latest_scores` gives them) → (DataFrame with
    `SCORE_COLUMNS`, records that could not be parsed)."""
    rows: list[dict[str, Any]] = []
    bad = 0
    for d in records:
        try:
            rec = ScoreRecord.from_dict({k: v for k, v in d.items() if k in ScoreRecord.__dataclass_fields__})
        except (KeyError, TypeError, ValueError):
            bad += 1
            continue
        row = rec.to_dict()
        row["scored_at"] = str(d.get("scored_at", ""))
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["simulated"] = df["simulated"].astype(bool)
    return df, bad


def _run_data(path: Path, meta: dict[str, Any], generations: Iterable[dict[str, Any]],
              scores: Iterable[dict[str, Any]], bad_lines: int) -> RunData:
    current, superseded = current_generations(generations, meta.get("fingerprints") or {})
    gens, stages, n_reference, bad_g = generations_frame(current)
    score_df, bad_s = scores_frame(scores_of(scores, {g["key"] for g in current if "key" in g}))
    name = str(meta.get("name") or path.resolve().name)
    return RunData(run_dir=path, name=name, meta=meta, generations=gens, scores=score_df,
                   skipped_lines=bad_lines + bad_g + bad_s, stage_names=stages, reference_generations=n_reference,
                   superseded=superseded)


def load_run(run_ref: str | Path, index_path: str | Path | None = None) -> RunData:
    """Read one run: from its folder when `run_ref` is a directory, else from the SQLite index (`run_ref` is then
    the run's name or id; `index_path` defaults to the store's `index.sqlite` beside where the folder would be, where
    the name is the folder's last component). Raises `RunFolderError` naming what is missing."""
    path = Path(run_ref)
    if path.is_dir():
        folder = RunFolder(path)
        meta = folder.read_meta()  # UserError when run.json is missing or from another schema version
        bad = _count_bad_lines(path / GENERATIONS) + _count_bad_lines(path / SCORES)
        return _run_data(path, meta, folder.generations().values(), folder.latest_scores(), bad)
    index = Path(index_path) if index_path is not None else default_index_path(path)
    if index.is_file():
        return load_run_from_index(index, path.name if index_path is None else str(run_ref))
    raise RunFolderError(f"Run folder '{path}' does not exist and no index at '{index}' has it. Pass the --out "
                         "folder of a `vbench-suite run`, or a run name or id with --index PATH.")


def load_run_from_index(index_path: str | Path, run: str) -> RunData:
    """Read a run from the SQLite index by name or run id (the index stores every record verbatim).

    Opens the index read-only. Raises `RunFolderError` when no run (or more than one run) matches.
    """
    uri = f"{Path(index_path).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        found = conn.execute("SELECT run_id, path, meta_json FROM runs WHERE run_id = ? OR name = ?",
                             (run, run)).fetchall()
        if len(found) != 1:
            names = [r[0] for r in conn.execute("SELECT name FROM runs ORDER BY created DESC").fetchall()]
            what = "no run" if not found else f"{len(found)} runs (use the run id)"
            raise RunFolderError(f"Index '{index_path}' has {what} named '{run}'. Runs there: "
                                 f"{', '.join(names) or 'none'}.")
        run_id, run_path, meta_json = found[0]
        gens = [json.loads(r[0]) for r in conn.execute(
            "SELECT record_json FROM generations WHERE run_id = ? ORDER BY rowid", (run_id,))]
        scores = [json.loads(r[0]) for r in conn.execute(
            "SELECT record_json FROM scores WHERE run_id = ? ORDER BY rowid", (run_id,))]
    except sqlite3.DatabaseError as exc:
        raise RunFolderError(f"Cannot read index '{index_path}' ({exc}); rebuild it from the run folders.") from exc
    finally:
        conn.close()
    return _run_data(Path(run_path), json.loads(meta_json), gens, scores, 0)
