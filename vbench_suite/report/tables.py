"""The numbers of the comparison report, as long-form pandas DataFrames (one row per fact; rendering is elsewhere).

Directions come from each ScoreRecord's `higher_is_better`; nothing here knows which way any metric should go.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from vbench_suite.report import stats
from vbench_suite.report.load import RunData

ALL = "all"
"""Category label for 'every category together' (set-scope records use '' for this; we show 'all')."""
LATENCY_PARTS: tuple[str, ...] = ("total_s", "queued_s", "generating_s", "downloading_s")
"""Latency components every backend records (local backends add `stage_*`)."""

QUALITY_COLUMNS: tuple[str, ...] = (
    "metric", "profile", "scope", "other", "unit", "higher_is_better", "category", "backend", "label", "simulated",
    "status", "value", "ci_low", "ci_high", "ci_method", "n", "n_ref", "n_error", "reason", "rank", "best")


def metric_directions(scores: pd.DataFrame) -> dict[str, bool | None]:
    """{metric: higher_is_better} as the records declare it; None when records of one metric disagree."""
    out: dict[str, bool | None] = {}
    for metric, group in scores.groupby("metric", sort=True):
        values = set(bool(v) for v in group["higher_is_better"])
        out[str(metric)] = values.pop() if len(values) == 1 else None
    return out


def _summarise_missing(group: pd.DataFrame) -> tuple[str, str]:
    """(status, reason) for a cell with no ok value: unavailable wins over error; the commonest reason is shown."""
    for status in ("unavailable", "error"):
        sub = group[group["status"] == status]
        if len(sub):
            reasons = Counter(str(r) for r in sub["reason"] if r)
            reason = reasons.most_common(1)[0][0] if reasons else "no reason recorded"
            if status == "error":
                reason = f"{len(sub)} of {len(group)} inputs failed: {reason}"
            return status, reason
    return "missing", "no records"


def _item_rows(run: RunData, scores: pd.DataFrame, seed: int) -> list[dict]:
    """Rows for records with one value per video (video scope) or per prompt (a set-scope record of one prompt,
    e.g. diversity across the samples of a prompt): the mean over those items with a bootstrap CI over them."""
    rows: list[dict] = []
    categories = sorted(c for c in scores["category"].unique() if c)
    for (metric, profile, backend, scope), group in scores.groupby(["metric", "profile", "backend", "scope"],
                                                                   sort=True):
        per_prompt = scope != "video"
        for category in [ALL] + categories:
            sub = group if category == ALL else group[group["category"] == category]
            if not len(sub):
                continue
            ok = sub[(sub["status"] == "ok") & np.isfinite(sub["value"].astype(float))]
            method = "bootstrap over prompts" if per_prompt else "bootstrap over videos"
            base = {"metric": metric, "profile": profile, "scope": scope, "other": str(sub["other"].iloc[0]),
                    "unit": str(sub["unit"].iloc[0]), "higher_is_better": bool(sub["higher_is_better"].iloc[0]),
                    "category": category, "backend": backend, "label": run.label(str(backend)),
                    "simulated": run.is_simulated(str(backend)), "n_ref": 0,
                    "n_error": int((sub["status"] == "error").sum()), "ci_method": method}
            if len(ok):
                values = ok.groupby("prompt_id")["value"].mean() if per_prompt else ok["value"]
                est = stats.bootstrap_mean(values.to_numpy(), seed=seed)
                rows.append(base | {"status": "ok", "value": est.value, "ci_low": est.ci_low,
                                    "ci_high": est.ci_high, "n": est.n, "reason": ""})
            else:
                status, reason = _summarise_missing(sub)
                rows.append(base | {"status": status, "value": np.nan, "ci_low": None, "ci_high": None,
                                    "n": 0, "reason": reason, "ci_method": ""})
    return rows


def _set_scope_rows(run: RunData, scores: pd.DataFrame) -> list[dict]:
    rows: list[dict] = []
    for rec in scores.itertuples(index=False):
        ok = rec.status == "ok" and rec.value is not None and np.isfinite(rec.value)
        rows.append({
            "metric": rec.metric, "profile": rec.profile, "scope": rec.scope, "other": rec.other, "unit": rec.unit,
            "higher_is_better": bool(rec.higher_is_better), "category": rec.category or ALL, "backend": rec.backend,
            "label": run.label(rec.backend), "simulated": bool(rec.simulated) or run.is_simulated(rec.backend),
            "status": rec.status if not ok else "ok", "value": float(rec.value) if ok else np.nan,
            "ci_low": rec.ci_low if ok else None, "ci_high": rec.ci_high if ok else None,
            "ci_method": "recorded by the metric" if ok and rec.ci_low is not None else "",
            "n": int(rec.n), "n_ref": int(rec.n_ref), "n_error": 0,
            "reason": "" if ok else (rec.reason or "no reason recorded")})
    return rows


def quality_table(run: RunData, seed: int = 0) -> pd.DataFrame:
    """Per (metric, profile, backend, category): value, 95 % CI, N, status and rank, columns `QUALITY_COLUMNS`.

    Video-scope metrics: mean over videos with a bootstrap CI over videos; set-scope records of one prompt each
    (`prompt_id` set, e.g. `lpips_diversity`): mean over prompts with a bootstrap CI over prompts, n = prompts;
    run-level set/pair records (FVD): the record's own value and CI.
    `category` 'all' pools every category. `rank` 1 is best within (metric, profile, scope, other, category) by the
    metric's declared direction; cells without a value, or metrics whose records disagree on direction, get no rank.
    """
    scores = run.scores
    if not len(scores):
        return pd.DataFrame(columns=list(QUALITY_COLUMNS))
    per_item = (scores["scope"] == "video") | (scores["prompt_id"] != "")
    rows = _item_rows(run, scores[per_item], seed)
    rows += _set_scope_rows(run, scores[~per_item])
    df = pd.DataFrame(rows)
    directions = metric_directions(scores)
    df["rank"] = np.nan
    df["best"] = False
    for _, group in df.groupby(["metric", "profile", "scope", "other", "category"], sort=False):
        direction = directions.get(str(group["metric"].iloc[0]))
        ok = group[group["status"] == "ok"]
        if direction is None or not len(ok):
            continue
        ranks = ok["value"].rank(ascending=not direction, method="min")
        df.loc[ranks.index, "rank"] = ranks
        df.loc[ranks.index, "best"] = ranks == 1
    order = ["metric", "profile", "scope", "other", "category", "rank", "backend"]
    return df[list(QUALITY_COLUMNS)].sort_values(order, na_position="last").reset_index(drop=True)


def latency_median(seconds: np.ndarray) -> float:
    """Median latency in seconds (linear interpolation between the middle values; NaN when empty). The terminal
    summary, summary.md and the report all call this one function."""
    return stats.quantile(seconds, 0.5)


def is_local(run: RunData, backend: str) -> bool:
    """A backend is local when it reports hardware seconds or local latency stages (remote ones report neither)."""
    g = run.generations[run.generations["backend"] == backend]
    stage_cols = [c for c in g.columns if c.startswith("stage_")]
    has_stages = bool(stage_cols) and bool(g[stage_cols].notna().any().any())
    return bool((g["hardware_s"] > 0).any()) or has_stages


def operations_table(run: RunData) -> pd.DataFrame:
    """One row per backend with generations: request counts, refusal/failure rates (Wilson 95 % CI), latency
    median/p90 per component (ok generations), cost per 10 s and hardware seconds.

    `n_requests` counts requests sent (unsupported ones are not); `n_outcome_unknown` those of them whose create
    answer was lost (the vendor may have made and billed the job; `may_have_billed_usd` sums their recorded upper
    estimates, money not in `cost_usd`). Refusal and failure rates are over the `n_known` = `n_requests` -
    `n_outcome_unknown` requests whose outcome is known; `n_failed` leaves the unknown ones out.

    Cost per 10 s = (sum of cost_usd over every attempt, billed failures included) / (seconds of video delivered) × 10
    (a price, so results reused from other runs count). `cost_usd_total` sums every record; `cost_usd_spent` is
    what this run spent (reused results left out: their cost is `cost_usd_reused`, paid by the run they came from). Latency medians come from
    `latency_median`, the one function the run summary uses too.
    Hardware figures are per ok video; `videos_per_hw_hour` = 3600 / mean hardware seconds per ok video.
    """
    g = run.generations
    rows: list[dict] = []
    stage_cols = [f"stage_{s}" for s in run.stage_names]
    for backend in sorted(str(b) for b in g["backend"].unique()):
        every = g[g["backend"] == backend]
        unsupported = every["unsupported"].astype(bool) if "unsupported" in every else pd.Series(False, every.index)
        sub = every[~unsupported]  # rates are over requests actually sent to the backend
        ok = sub[sub["status"] == "ok"]
        unknown = sub["outcome_unknown"].astype(bool)
        # Rates are over requests whose outcome is known: a create whose answer was lost may have succeeded,
        # failed or been refused at the vendor, so it is counted in neither numerator nor denominator.
        n = len(sub) - int(unknown.sum())
        n_ref = int((sub["status"] == "refused").sum())
        n_fail = int(((sub["status"] == "failed") & ~unknown).sum())
        local = is_local(run, backend)
        fps = sorted({f"{m}@{v}" for m, v in zip(sub["model"], sub["version"])})
        row: dict = {"backend": backend, "label": run.label(backend), "simulated": run.is_simulated(backend),
                     "local": local, "fingerprints": ", ".join(fps), "n_requests": len(sub), "n_ok": len(ok),
                     "n_unsupported": int(unsupported.sum()), "n_known": n,
                     "n_refused": n_ref, "n_failed": n_fail, "n_outcome_unknown": int(unknown.sum()),
                     "may_have_billed_usd": float(sub["may_have_billed_usd"].sum()),
                     "refusal_rate": n_ref / n if n else np.nan, "failure_rate": n_fail / n if n else np.nan}
        row["refusal_ci_low"], row["refusal_ci_high"] = stats.wilson_interval(n_ref, n)
        row["failure_ci_low"], row["failure_ci_high"] = stats.wilson_interval(n_fail, n)
        for col in list(LATENCY_PARTS) + (stage_cols if local else []):
            values = ok[col].to_numpy(dtype=np.float64) if col in ok else np.array([])
            row[f"{col}_median"] = latency_median(values)
            row[f"{col}_p90"] = stats.quantile(values, 0.9)
        video_s = float(ok["video_seconds"].sum())
        cost = float(sub["cost_usd"].sum())
        reused = sub["reused_from"] != ""
        # Money is attributed to the run that spent it: a reused result's cost was paid by its source run.
        row["cost_usd_total"] = cost
        row["cost_usd_spent"] = float(sub.loc[~reused, "cost_usd"].sum())
        row["cost_usd_reused"] = float(sub.loc[reused, "cost_usd"].sum())
        row["n_reused"] = int(reused.sum())
        row["video_seconds_total"] = video_s
        row["usd_per_10s"] = cost / video_s * 10.0 if video_s > 0 else np.nan
        hw = ok["hardware_s"].to_numpy(dtype=np.float64)
        row["hardware_s_total"] = float(sub["hardware_s"].sum()) if local else np.nan
        row["hardware_s_per_video_median"] = stats.quantile(hw, 0.5) if local else np.nan
        row["hardware_s_per_10s"] = float(hw.sum()) / video_s * 10.0 if local and video_s > 0 else np.nan
        row["videos_per_hw_hour"] = 3600.0 / float(hw.mean()) if local and len(hw) and hw.mean() > 0 else np.nan
        row["video_seconds_mean"] = float(ok["video_seconds"].mean()) if len(ok) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
