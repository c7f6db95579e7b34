"""The end-of-run summary table (per backend: outcomes, latency, cost per 10 s, mean of each metric)."""
from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from vbench_suite.runner.plan import REFERENCE_ROLE
from vbench_suite.store.run_folder import RunFolder


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarise(folder: RunFolder) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table, one row per benchmarked backend."""
    gens = [g for g in folder.current_generations() if g.get("role", "benchmark") != REFERENCE_ROLE]
    by_backend: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for g in gens:
        by_backend[g["backend"]].append(g)
    scores = folder.current_scores()
    metric_names = sorted({s["metric"] for s in scores})
    header = ["backend", "ok", "refused", "failed", "unsupported", "latency p50 (s)", "latency p90 (s)",
              "USD per 10 s"]
    header += [_metric_header(scores, m) for m in metric_names]
    rows = []
    for backend in sorted(by_backend):
        records = by_backend[backend]
        results = [r["result"] for r in records]
        simulated = any((r.get("fingerprint") or {}).get("simulated") for r in results)
        ok = [r for r in results if r["status"] == "ok"]
        lat = [r["latency"]["total_s"] for r in ok if r.get("latency")]
        seconds = sum(r.get("video_seconds") or 0.0 for r in ok)
        cost = sum(r.get("cost_usd") or 0.0 for r in results)
        row = [backend + (" (simulated)" if simulated else ""), str(len(ok)),
               str(sum(r["status"] == "refused" for r in results)),
               str(sum(r["status"] == "failed" and not _unsupported(r) for r in results)),
               str(sum(_unsupported(r) for r in results)),
               _fmt(_pct(lat, 0.5)), _fmt(_pct(lat, 0.9)), _usd(cost / seconds * 10 if seconds else None)]
        row += [_metric_cell(scores, m, backend) for m in metric_names]
        rows.append(row)
    return header, rows


def _unsupported(result: dict[str, Any]) -> bool:
    return bool((result.get("info") or {}).get("unsupported"))


def _metric_header(scores: list[dict[str, Any]], metric: str) -> str:
    rec = next(s for s in scores if s["metric"] == metric)
    arrow = "↑" if rec.get("higher_is_better") else "↓"
    return f"{metric} {arrow}"


def _metric_cell(scores: list[dict[str, Any]], metric: str, backend: str) -> str:
    mine = [s for s in scores if s["metric"] == metric and s.get("backend") == backend]
    overall = [s for s in mine if s.get("scope") == "set" and not s.get("category") and not s.get("prompt_id")
               and s["status"] == "ok"]
    if overall:
        s = overall[-1]
        return f"{s['value']:.2f} (N={s.get('n')}/{s.get('n_ref')})"
    # Per-video values, or per-prompt set values (e.g. diversity across samples of one prompt): their mean.
    values = [s["value"] for s in mine if s["status"] == "ok"]
    if values:
        return f"{statistics.fmean(values):.3f} (n={len(values)})"
    unavailable = [s for s in scores if s["metric"] == metric and s["status"] == "unavailable"
                   and s.get("backend") in ("", backend)]
    if unavailable:
        return "unavailable"
    errors = [s for s in mine if s["status"] == "error"]
    return f"error ×{len(errors)}" if errors else "–"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _usd(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}"  # self-hosted costs can be fractions of a cent


def to_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def unavailable_reasons(folder: RunFolder) -> dict[str, str]:
    """metric -> reason, for metrics that could not run in this run (shown under the table)."""
    return {s["metric"]: s.get("reason") or "" for s in folder.latest_scores() if s["status"] == "unavailable"}
