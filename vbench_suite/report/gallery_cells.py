"""What each cell of the report's video gallery holds: one cell per (requested backend, prompt, sample), with the
state of that generation and the per-video metric values recorded for it. Pure bookkeeping over `RunData`: nothing
here decodes a video (the gallery's media step does, and may turn an 'ok' cell into 'no-video').

Cell states, and what decides them (first match wins):

- a generation record exists: 'ok' (status ok and the video file is there), 'no-video' (status ok, file missing),
  'refused' (content moderation), 'unsupported' (outside the backend's declared capabilities, never sent),
  'outcome-unknown' (a create whose answer was lost; may have been billed), 'failed' (everything else);
- no record: 'not-configured' (the run skipped the backend: key or weights missing), 'budget' (the backend had
  requests not sent because of the budget cap), 'no-record' (the backend was not run for this prompt or sample).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vbench_suite.report.load import RunData
from vbench_suite.report.render import fmt
from vbench_suite.store.run_folder import RunFolder

OK, NO_VIDEO, REFUSED, UNSUPPORTED, OUTCOME_UNKNOWN, FAILED = (
    "ok", "no-video", "refused", "unsupported", "outcome-unknown", "failed")
NOT_CONFIGURED, BUDGET, NO_RECORD = "not-configured", "budget", "no-record"
STATES: tuple[str, ...] = (OK, NO_VIDEO, REFUSED, UNSUPPORTED, OUTCOME_UNKNOWN, FAILED, NOT_CONFIGURED, BUDGET,
                           NO_RECORD)
"""Every cell state, in the order the gallery's legend lists them."""


@dataclass(frozen=True)
class CellMetric:
    """One per-video score shown in a cell."""

    name: str
    """Metric name, with ' vs <other>' for paired metrics and '[profile]' when one metric has several profiles."""
    text: str
    """The value (4 significant digits, unit appended) or the record's status and reason when not ok."""
    higher_is_better: bool | None


@dataclass(frozen=True)
class GalleryCell:
    """One (backend, prompt, sample) of the gallery."""

    backend: str
    prompt_id: str
    sample: int
    state: str
    """One of `STATES`."""
    text: str
    """One line saying what happened ('ok', 'refused: <reason>', 'not configured: <why>', ...)."""
    key: str = ""
    """Generation key ('' without a record)."""
    video: Path | None = None
    """The recorded video file (absolute or relative to the working directory), for 'ok' and 'no-video' cells."""
    metrics: tuple[CellMetric, ...] = ()
    reused_from: str = ""
    """The run folder this result was copied from ('' when this run made it)."""


@dataclass(frozen=True)
class GalleryRow:
    """One gallery row: a prompt and a sample index."""

    category: str
    prompt_id: str
    prompt: str
    """Prompt text ('' when the run folder is not here to read it from)."""
    sample: int


@dataclass
class GalleryGrid:
    """Rows (grouped by category, in the run's order), columns (requested backends) and the cells between them."""

    backends: list[str]
    labels: dict[str, str]
    """backend -> display label ('(simulated)' marked)."""
    rows: list[GalleryRow]
    cells: dict[tuple[str, str, int], GalleryCell] = field(default_factory=dict)
    """(backend, prompt_id, sample) -> cell; every backend × row is present."""

    @property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(r.category for r in self.rows))

    @property
    def samples(self) -> list[int]:
        return sorted({r.sample for r in self.rows})

    def cell(self, backend: str, row: GalleryRow) -> GalleryCell:
        return self.cells[(backend, row.prompt_id, row.sample)]


def prompt_texts(run: RunData) -> dict[str, str]:
    """{prompt id: prompt text} from the run folder's generation records ({} when the folder is not here)."""
    folder = RunFolder(run.run_dir)
    if not folder.exists():
        return {}
    out: dict[str, str] = {}
    for rec in folder.generations().values():
        text = (rec.get("request") or {}).get("prompt")
        if rec.get("prompt_id") and isinstance(text, str):
            out.setdefault(str(rec["prompt_id"]), text)
    return out


def _metrics(scores: pd.DataFrame, key: str) -> tuple[CellMetric, ...]:
    mine = scores[(scores["key"] == key) & (scores["scope"] == "video")]
    if not len(mine):
        return ()
    profiles = mine.groupby("metric")["profile"].nunique()
    out = []
    for r in mine.sort_values(["metric", "other", "profile"]).itertuples(index=False):
        name = r.metric + (f" vs {r.other}" if r.other else "") + (f" [{r.profile}]" if profiles[r.metric] > 1 else "")
        if r.status == "ok" and r.value is not None and pd.notna(r.value):
            text = fmt(float(r.value)) + (f" {r.unit}" if r.unit else "")
        else:
            text = f"{r.status}: {r.reason}" if r.reason else str(r.status)
        out.append(CellMetric(name, text, None if r.higher_is_better is None else bool(r.higher_is_better)))
    return tuple(out)


def record_cell(g: dict, run_dir: Path, scores: pd.DataFrame) -> GalleryCell:
    """The cell of one generation row (a `RunData.generations` record as a dict); video paths are resolved
    against `run_dir`."""
    backend, pid, sample, key = str(g["backend"]), str(g["prompt_id"]), int(g["sample"]), str(g["key"])
    error = str(g.get("error") or "").strip()
    common = dict(backend=backend, prompt_id=pid, sample=sample, key=key, reused_from=str(g.get("reused_from") or ""))
    if g["status"] == "ok":
        rel = g.get("video_path")
        video = None if not rel else (Path(rel) if Path(rel).is_absolute() else run_dir / rel)
        metrics = _metrics(scores, key)
        if video is None or not video.is_file():
            return GalleryCell(state=NO_VIDEO, text=f"video missing: {rel or 'no path recorded'}", video=video,
                               metrics=metrics, **common)
        return GalleryCell(state=OK, text="ok", video=video, metrics=metrics, **common)
    if bool(g.get("unsupported")):
        return GalleryCell(state=UNSUPPORTED, text=f"unsupported: {error or 'outside declared capabilities'}",
                           **common)
    if bool(g.get("outcome_unknown")):
        return GalleryCell(state=OUTCOME_UNKNOWN, text=f"outcome unknown (may have been billed): {error}".rstrip(": "),
                           **common)
    if g["status"] == "refused":
        return GalleryCell(state=REFUSED, text=f"refused: {error or 'no reason given'}", **common)
    retriable = " (retriable)" if bool(g.get("retriable")) else ""
    return GalleryCell(state=FAILED, text=f"failed{retriable}: {error or 'no reason given'}", **common)


def missing_cell(run: RunData, backend: str, prompt_id: str, sample: int) -> GalleryCell:
    """The cell of a requested backend with no record for (prompt, sample): not configured, budget, or no record."""
    skipped = run.skipped_backends()
    if backend in skipped:
        return GalleryCell(backend, prompt_id, sample, NOT_CONFIGURED, f"not configured: {skipped[backend]}")
    over = run.over_budget().get(backend, 0)
    if over:
        cap = run.budget_usd()
        cap_text = f" ${cap:,.2f}" if cap is not None else ""
        return GalleryCell(backend, prompt_id, sample, BUDGET,
                           f"not sent: budget cap{cap_text} ({over} request(s) of this backend not sent)")
    return GalleryCell(backend, prompt_id, sample, NO_RECORD, "no record: not run for this prompt and sample")


def gallery_grid(run: RunData, prompts: dict[str, str] | None = None) -> GalleryGrid:
    """Every requested backend × every (prompt, sample) with a benchmark record in the run. `prompts` maps prompt
    ids to their text (default: read from the run folder). Rows follow the suite's order (run.json's selection; else
    the records' order), grouped by category in order of first appearance."""
    prompts = prompt_texts(run) if prompts is None else prompts
    g = run.generations
    backends = run.requested_backends()
    for b in run.backends_with_generations():
        if b not in backends:
            backends.append(b)
    seen: dict[tuple[str, int], str] = {}
    for r in g[["prompt_id", "sample", "category"]].itertuples(index=False):
        seen.setdefault((str(r.prompt_id), int(r.sample)), str(r.category))
    selected = (run.meta.get("selection") or {}).get("prompts") or []  # the suite's order of the selected prompts
    prompt_order = list(dict.fromkeys([str(p) for p in selected] + [p for p, _ in seen]))
    cat_of = {pid: cat for (pid, _), cat in seen.items()}
    cat_rank = {c: i for i, c in enumerate(dict.fromkeys(cat_of[p] for p in prompt_order if p in cat_of))}
    prompt_rank = {p: i for i, p in enumerate(prompt_order)}
    rows = [GalleryRow(cat, pid, prompts.get(pid, ""), s)
            for (pid, s), cat in sorted(seen.items(), key=lambda kv: (cat_rank[kv[1]], prompt_rank[kv[0][0]],
                                                                      kv[0][1]))]
    grid = GalleryGrid(backends=backends, labels={b: run.label(b) for b in backends}, rows=rows)
    by_cell = {(str(r["backend"]), str(r["prompt_id"]), int(r["sample"])): r for r in g.to_dict("records")}
    for row in rows:
        for b in backends:
            rec = by_cell.get((b, row.prompt_id, row.sample))
            grid.cells[(b, row.prompt_id, row.sample)] = (
                record_cell(rec, run.run_dir, run.scores) if rec is not None
                else missing_cell(run, b, row.prompt_id, row.sample))
    return grid
