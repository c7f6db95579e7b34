"""The report's "Human preference" section: Bradley-Terry ratings from the run's blind pairwise votes
(`vbench-suite vote`), shown beside the automatic metrics, with how often each per-video metric agrees with the
raters. Without votes the section says how to collect them.

A vote counts while both videos it judged are current ok generations of the run (same cache keys; a key names the
backend fingerprint, the full request and the seed, so the same key is the same generation). Votes on videos that
were since regenerated under another fingerprint are kept in votes.jsonl and counted as left out.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vbench_suite.report.load import RunData
from vbench_suite.report.render import Cell, Section, Table, fmt
from vbench_suite.votes.ratings import (CI_LEVEL, PRIOR_SD_LOG_TIE, PRIOR_SD_STRENGTH, Agreement, Ratings, agreement,
                                        fit_ratings)
from vbench_suite.votes.store import VOTES, Vote, read_votes

TITLE = "Human preference"
MODEL_NOTE = (
    "Model: Bradley-Terry with ties (Davidson): P(A preferred) = e^θA / D, P(tie) = ν·e^((θA+θB)/2) / D, so among "
    "decisive votes P(A preferred over B) = 1 / (1 + e^(θB − θA)). 'Tie' and 'both bad' votes are both ties for "
    "the model. Fitted by Newton's method at the posterior mode with Gaussian priors θ ~ "
    f"N(0, {PRIOR_SD_STRENGTH:g}²) and log ν ~ N(0, {PRIOR_SD_LOG_TIE:g}²): a backend that never won gets a "
    "finite, not infinite, strength. "
    "Strengths are on the log-odds scale relative to the average voted backend (they sum to 0): a difference of 1 "
    "means the stronger one is preferred in 73 % of decisive votes. Intervals: 95 % percentile bootstrap over votes "
    "(votes treated as independent). See docs/votes.md.")
AGREEMENT_NOTE = (
    "Share of decisive votes (left or right) in which the metric's value, read in its declared direction, favours "
    "the video the rater preferred; 95 % Wilson interval over those votes (treated as independent); 0.5 is chance. "
    "Votes where the two videos have the same value or either lacks a value are left out (counted). Only per-video "
    "metrics can be compared; set-level ones (FVD, diversity) cannot.")


def _how_to_vote(run: RunData) -> str:
    return (f"No votes yet. Collect them with `vbench-suite vote {run.run_dir}`: a local page shows two videos of "
            "the same prompt from two backends, blind and in random order, and records which one the rater prefers "
            "(left, right, tie, both bad) in votes.jsonl in the run folder. Then write this report again; the "
            "ratings appear here beside the automatic metrics. See docs/votes.md.")


def _ok_keys(run: RunData) -> dict[str, tuple[str, str, int]]:
    """key -> (backend, prompt id, sample) of the run's current ok generations."""
    g = run.generations
    ok = g[g["status"] == "ok"]
    return {str(k): (str(b), str(p), int(s)) for k, b, p, s in zip(ok["key"], ok["backend"], ok["prompt_id"],
                                                                  ok["sample"])}


def _n_pairs(ok: dict[str, tuple[str, str, int]]) -> tuple[int, list[str]]:
    """(number of votable pairs, backends with ok videos): pairs share prompt and sample across two backends."""
    groups: dict[tuple[str, int], set[str]] = {}
    for backend, prompt, sample in ok.values():
        groups.setdefault((prompt, sample), set()).add(backend)
    return sum(len(s) * (len(s) - 1) // 2 for s in groups.values()), sorted({b for b, _, _ in ok.values()})


def _video_metric_values(run: RunData) -> dict[tuple[str, str, str], tuple[bool, dict[str, float]]]:
    """(metric, profile, other) -> (higher_is_better, {generation key: value}) over ok video-scope scores."""
    s = run.scores
    s = s[(s["scope"] == "video") & (s["status"] == "ok") & (s["key"] != "")]
    out: dict[tuple[str, str, str], tuple[bool, dict[str, float]]] = {}
    for (metric, profile, other), g in s.groupby(["metric", "profile", "other"], sort=True):
        values = {str(k): float(v) for k, v in zip(g["key"], g["value"]) if v is not None and np.isfinite(v)}
        directions = set(bool(x) for x in g["higher_is_better"])
        if values and len(directions) == 1:
            out[(str(metric), str(profile), str(other))] = (directions.pop(), values)
    return out


def _metric_label(metric: str, other: str, hib: bool) -> str:
    return f"{metric}{f' vs {other}' if other else ''} {'↑' if hib else '↓'}"


def _automatic_columns(run: RunData, quality: pd.DataFrame) -> list[tuple[str, dict[str, str]]]:
    """(column title, {backend: cell text}) for every metric's overall value ('all' categories)."""
    if not len(quality):
        return []
    q = quality[(quality["category"] == "all") & (quality["status"] == "ok")]
    groups = list(q.groupby(["metric", "profile", "scope", "other"], sort=True))
    several = _with_several_profiles([(m, p) for (m, p, _, _), _ in groups])
    cols = []
    for (metric, profile, scope, other), g in groups:
        hib = bool(g["higher_is_better"].iloc[0])
        title = _metric_label(str(metric), str(other), hib) + (f" [{profile}]" if metric in several else "")
        cols.append((title, {str(b): fmt(float(v)) for b, v in zip(g["backend"], g["value"])}))
    return cols


def _with_several_profiles(metric_profiles: list[tuple[str, str]]) -> set[str]:
    """Metrics that appear under more than one profile (only those need the profile in their label)."""
    seen: dict[str, set[str]] = {}
    for metric, profile in metric_profiles:
        seen.setdefault(metric, set()).add(profile)
    return {m for m, profiles in seen.items() if len(profiles) > 1}


def _strength_table(ratings: Ratings, votes: list[Vote], run: RunData,
                    quality: pd.DataFrame) -> tuple[Table, pd.DataFrame]:
    auto = _automatic_columns(run, quality)
    rows: list[list[Cell]] = []
    records = []
    for rank, backend in enumerate(ratings.backends, start=1):
        theta, lo, hi = ratings.interval(backend)
        mine = [v for v in votes if backend in (v.left_backend, v.right_backend)]
        won = sum(v.winner == backend for v in mine)
        lost = sum(v.loser == backend for v in mine)
        tie = sum(v.choice == "tie" for v in mine)
        bad = sum(v.choice == "both_bad" for v in mine)
        rows.append([Cell(str(rank)), Cell(run.label(backend), "best" if rank == 1 else ""),
                     Cell(f"{theta:+.2f} [{lo:+.2f}, {hi:+.2f}]"), Cell(str(len(mine))), Cell(str(won)),
                     Cell(str(tie)), Cell(str(bad)), Cell(str(lost))]
                    + [Cell(col.get(backend, "—")) for _, col in auto])
        records.append({"backend": backend, "rank": rank, "strength": theta, "ci_low": lo, "ci_high": hi,
                        "ci_level": ratings.level, "votes": len(mine), "preferred": won, "tie": tie,
                        "both_bad": bad, "not_preferred": lost, "n_votes_total": ratings.n_votes})
    table = Table("Bradley-Terry strength from blind votes, beside the automatic metrics",
                  ["rank", "backend", "strength θ [95 % CI]", "votes", "preferred", "tie", "both bad",
                   "not preferred"] + [title for title, _ in auto], rows,
                  "Automatic metric columns: the overall value from the quality tables (all categories).")
    return table, pd.DataFrame(records)


def _pair_table(ratings: Ratings, run: RunData) -> Table:
    rows = []
    for p in ratings.pairs:
        rows.append([Cell(run.label(p.a)), Cell(run.label(p.b)), Cell(str(p.n)), Cell(str(p.a_preferred)),
                     Cell(str(p.b_preferred)), Cell(str(p.ties - p.both_bad)), Cell(str(p.both_bad)),
                     Cell(f"{p.p_a_over_b:.1%} [{p.ci_low:.1%}, {p.ci_high:.1%}]")])
    return Table("Votes per pair of backends", ["A", "B", "votes", "A preferred", "B preferred", "tie", "both bad",
                                                "P(A preferred over B | decisive), model [95 % CI]"], rows,
                 "Counts are votes as cast; the probability is the model's, from all votes (so it borrows strength "
                 "from comparisons with other backends).")


def _agreement_table(results: list[tuple[str, Agreement]]) -> Table:
    rows = []
    for label, a in results:
        value = "no decisive vote on two scored videos" if not a.n else (
            f"{a.rate:.1%} [{a.ci_low:.1%}, {a.ci_high:.1%}]")
        rows.append([Cell(label), Cell(value, "" if a.n else "unavailable"), Cell(f"{a.agree}/{a.n}"),
                     Cell(str(a.n_metric_tied)), Cell(str(a.n_missing))])
    return Table("Agreement between votes and automatic metrics",
                 ["metric", "agreement [95 % CI]", "agree / n", "left out: equal values", "left out: no value"],
                 rows, AGREEMENT_NOTE)


def human_preference_section(run: RunData, quality: pd.DataFrame, seed: int = 0
                             ) -> tuple[Section, dict[str, pd.DataFrame]]:
    """The section, and the DataFrames behind it ({'human_preference', 'vote_agreement'} when there are votes)."""
    section = Section(TITLE)
    run_dir = Path(run.run_dir)
    votes, bad = read_votes(run_dir) if run_dir.is_dir() else ([], 0)
    ok = _ok_keys(run)
    n_pairs, backends = _n_pairs(ok)
    if bad:
        section.callouts.append(f"{bad} line(s) of {VOTES} are not valid votes (a torn last line after a kill, or "
                                "edited by hand) and were skipped.")
    counted = [v for v in votes if v.left_key in ok and v.right_key in ok]
    if not counted:
        if not run_dir.is_dir():
            section.paragraphs.append(f"Votes are read from the run folder, which is not on this machine ({run_dir}).")
        if votes:
            section.paragraphs.append(f"{len(votes)} vote(s) in {VOTES}, none on videos that are current ok "
                                      "generations of this run (they were regenerated under a newer fingerprint).")
        section.paragraphs.append(_how_to_vote(run) if n_pairs else (
            f"Voting needs ok videos of the same prompt and sample from at least two backends; this run has ok "
            f"videos from {', '.join(backends) or 'no backend'} only."))
        return section, {}
    ratings = fit_ratings([(v.left_backend, v.right_backend, v.choice) for v in counted], seed=seed)
    assert ratings is not None
    raters = sorted({v.rater for v in counted})
    voted_pairs = {frozenset((v.left_key, v.right_key)) for v in counted}
    decisive = [v for v in counted if v.winner is not None]
    n_tie = sum(v.choice == "tie" for v in counted)
    n_bad = sum(v.choice == "both_bad" for v in counted)
    times = sorted(v.voted_at for v in counted)
    section.paragraphs.append(
        f"{len(counted)} blind vote(s) by {len(raters)} rater(s) ({', '.join(raters)}) between {times[0][:16]} and "
        f"{times[-1][:16]} UTC, on {len(voted_pairs)} of the {n_pairs} video pairs of this run (pairs: the same "
        f"prompt and sample from two backends): {len(decisive)} decisive, {n_tie} tie, {n_bad} both bad. "
        f"Estimated tie parameter ν = {fmt(ratings.tie_nu, 3)}.")
    if len(counted) < len(votes):
        section.paragraphs.append(f"{len(votes) - len(counted)} older vote(s) judged videos that are no longer "
                                  "current generations of this run (regenerated under a newer fingerprint) and are "
                                  "left out.")
    if not ratings.connected:
        section.callouts.append("Some backends were never compared with others, directly or through a chain of "
                                "votes: their strengths are tied together only by the prior and must not be compared "
                                "across those groups. Vote more (the vote page balances pairs).")
    unvoted = [b for b in backends if b not in ratings.backends]
    if unvoted:
        section.paragraphs.append(f"No counted vote yet for: {', '.join(run.label(b) for b in unvoted)}.")
    section.paragraphs.append(MODEL_NOTE)
    strength, frame = _strength_table(ratings, counted, run, quality)
    results = []
    agree_rows = []
    wins = [(v.left_key, v.right_key) if v.choice == "left" else (v.right_key, v.left_key) for v in decisive]
    metric_values = _video_metric_values(run)
    several = _with_several_profiles([(m, p) for m, p, _ in metric_values])
    for (metric, profile, other), (hib, values) in metric_values.items():
        a = agreement(wins, values, hib, CI_LEVEL)
        label = _metric_label(metric, other, hib) + (f" [{profile}]" if metric in several else "")
        results.append((label, a))
        agree_rows.append({"metric": metric, "profile": profile, "other": other, "higher_is_better": hib,
                           "agreement": a.rate if a.n else math.nan, "ci_low": a.ci_low, "ci_high": a.ci_high,
                           "agree": a.agree, "n": a.n, "n_metric_tied": a.n_metric_tied, "n_missing": a.n_missing})
    section.tables += [strength, _pair_table(ratings, run)]
    if results:
        section.tables.append(_agreement_table(results))
    else:
        section.paragraphs.append("No per-video metric has values for this run, so agreement with the votes cannot "
                                  "be computed.")
    return section, {"human_preference": frame, "vote_agreement": pd.DataFrame(agree_rows)}
