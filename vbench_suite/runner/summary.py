"""The end-of-run summary table (per requested backend: outcomes, latency, cost per 10 s, each metric's overall value).

Creates whose answer was lost have their own column ("outcome unknown (may have been billed)"), not 'failed'.

Every number comes from the report's own tables (`vbench_suite.report.tables`), read from the run folder the same way
the report reads it, so the terminal, summary.md and report.md can never disagree (one median function, one way of
aggregating each kind of metric record).
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

from vbench_suite.store.run_folder import RunFolder

OUTCOME_ALL_SENT = "all requests sent"
"""Outcome column text for a backend with nothing to report beyond its counts."""


OPERATION_COLUMNS = 9
"""The summary table's columns are: OPERATION_COLUMNS operational ones (backend first), one per metric, then outcome."""


def summarise(folder: RunFolder) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table: one row per backend the user asked for (with generations or not)."""
    from vbench_suite.report.build import OUTCOME_UNKNOWN_HEADER
    from vbench_suite.report.render import fmt_usd
    from vbench_suite.report.load import load_run
    from vbench_suite.report.tables import metric_directions, operations_table, quality_table

    run = load_run(folder.path)
    ops = operations_table(run)
    quality = quality_table(run)
    metrics = sorted(set(run.scores["metric"]))
    directions = metric_directions(run.scores)
    header = ["backend", "ok", "refused", "failed", OUTCOME_UNKNOWN_HEADER, "unsupported", "latency p50 (s)",
              "latency p90 (s)", "USD per 10 s"]
    assert len(header) == OPERATION_COLUMNS
    header += [f"{m} {'↑' if directions.get(m) else '↓' if directions.get(m) is False else '?'}" for m in metrics]
    header.append("outcome")
    by_backend = {str(r["backend"]): r for r in ops.to_dict("records")} if len(ops) else {}
    rows = []
    for backend in run.requested_backends():
        r = by_backend.get(backend)
        outcome = "; ".join(run.outcome_notes(backend)) or OUTCOME_ALL_SENT
        if r is None:
            rows.append([run.label(backend), "0", "0", "0", "0", "0", "–", "–", "–"] + ["–"] * len(metrics)
                        + [outcome])
            continue
        unknown = str(r["n_outcome_unknown"]) + (f" (up to {fmt_usd(float(r['may_have_billed_usd']))})"
                                                 if r["n_outcome_unknown"] else "")
        row = [run.label(backend), str(r["n_ok"]), str(r["n_refused"]), str(r["n_failed"]), unknown,
               str(r["n_unsupported"]),
               _fmt(r["total_s_median"]), _fmt(r["total_s_p90"]), _usd(r["usd_per_10s"])]
        row += [_metric_cell(quality, m, backend) for m in metrics]
        rows.append(row + [outcome])
    return header, rows


def may_have_billed_lines(folder: RunFolder) -> list[str]:
    """Sentences for the terminal and summary.md about creates whose outcome is unknown: the report's "may have been
    billed" line (the same words, from the same table) and, per backend, how many and where to check."""
    from vbench_suite.report.build import may_have_billed_line
    from vbench_suite.report.load import load_run
    from vbench_suite.report.tables import operations_table

    run = load_run(folder.path)
    ops = operations_table(run)
    total = may_have_billed_line(ops)
    if not total:
        return []
    return [total] + [f"{run.label(b)}: {run.outcome_unknown_note(b)}" for b in run.backends_with_generations()
                      if run.outcome_unknown_note(b)]


def _metric_cell(quality: pd.DataFrame, metric: str, backend: str) -> str:
    """The metric's overall ('all' categories) value for `backend`, as the report's quality table has it."""
    q = quality[(quality["metric"] == metric) & (quality["category"] == "all")]
    mine = q[q["backend"] == backend]
    ok = mine[mine["status"] == "ok"]
    if len(ok):
        r = ok.iloc[0]
        if r["scope"] != "video" and r["ci_method"] != "bootstrap over prompts":
            return f"{r['value']:.2f} (N={int(r['n'])}/{int(r['n_ref'])})"
        return f"{r['value']:.3f} (n={int(r['n'])})"
    if len(mine[mine["status"] == "unavailable"]) or len(q[(q["backend"] == "") & (q["status"] == "unavailable")]):
        return "unavailable"
    errors = int(mine["n_error"].sum()) if len(mine) else 0
    return f"error ×{errors}" if errors else "–"


def _fmt(v: Any, digits: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _usd(v: Any) -> str:
    # self-hosted costs can be fractions of a cent
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown pipe table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def unavailable_reasons(folder: RunFolder) -> dict[str, str]:
    """metric -> reason, for metrics that could not run in this run (shown under the table)."""
    return {s["metric"]: s.get("reason") or "" for s in folder.latest_scores() if s["status"] == "unavailable"}
