"""Quarter-over-quarter regression: compare a run with a baseline run, backend by backend.

Verdicts use a two-sided test at `alpha` per comparison (no multiple-comparison correction: with many metrics, expect
about alpha × (number of rows) false alarms). Quality metrics take their direction from the records; operational rows
(failure/refusal rate, latency, cost) are lower-is-better by definition.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vbench_suite.report import stats
from vbench_suite.report.load import RunData
from vbench_suite.report.tables import metric_directions

DEFAULT_ALPHA = 0.05
"""Significance level of every regression verdict unless the caller gives another."""
MIN_PAIRED_SHARE = 0.5
"""Paired tests are used when matched prompts cover at least this share of both runs' prompts (and at least 2)."""

REGRESSED, IMPROVED, NO_CHANGE = "regressed", "improved", "no significant change"
NOT_COMPARED, NOT_TESTED = "not compared", "not tested"

REGRESSION_COLUMNS: tuple[str, ...] = (
    "backend", "label", "simulated", "kind", "metric", "profile", "scope", "other", "category", "higher_is_better",
    "baseline", "current", "delta", "ci_low", "ci_high", "n_baseline", "n_current", "n_pairs", "test", "p_value",
    "verdict", "note")


@dataclass
class Regression:
    """Result of `compare_runs`: silent changes to call out first, then one row per compared quantity."""

    current: RunData
    baseline: RunData
    alpha: float
    callouts: list[str] = field(default_factory=list)
    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(REGRESSION_COLUMNS)))
    only_in_current: list[str] = field(default_factory=list)
    only_in_baseline: list[str] = field(default_factory=list)


def _verdict(delta: float, p: float, alpha: float, higher_is_better: bool) -> str:
    if not math.isfinite(p):
        return NOT_TESTED
    if p >= alpha or delta == 0:
        return NO_CHANGE
    return IMPROVED if (delta > 0) == higher_is_better else REGRESSED


def _fingerprints(run: RunData, backend: str) -> set[tuple[str, str, str]]:
    g = run.generations[run.generations["backend"] == backend]
    return {(str(m), str(v), str(s)) for m, v, s in zip(g["model"], g["version"], g["settings"])}


def _fmt_fps(fps: set[tuple[str, str, str]]) -> str:
    return "; ".join(f"{m}@{v}" + (f" {s}" if s not in ("{}", "") else "") for m, v, s in sorted(fps)) or "none"


def silent_changes(current: RunData, baseline: RunData, backends: list[str]) -> list[str]:
    """Human sentences for changes that make numbers incomparable without anyone noticing: backend fingerprint
    (model, version, settings), prompt-set name or version, metric profile, metric direction."""
    out: list[str] = []
    for b in backends:
        fc, fb = _fingerprints(current, b), _fingerprints(baseline, b)
        if fc != fb:
            out.append(f"Backend '{b}' fingerprint changed: {_fmt_fps(fb)} → {_fmt_fps(fc)}. Differences below mix a "
                       "model change with anything else that changed.")
    sc, sb = current.suite_versions(), baseline.suite_versions()
    for suite in sorted(set(sc) & set(sb)):
        if sc[suite] != sb[suite]:
            out.append(f"Prompt set '{suite}' version changed: {sb[suite]} → {sc[suite]}. Prompts with the same id may "
                       "have different text.")
    if set(sc) != set(sb):
        out.append(f"Prompt sets differ: baseline {sorted(sb) or 'unknown'}, current {sorted(sc) or 'unknown'}.")
    def profiles(run: RunData, metric: str, backend: str) -> set[str]:
        s = run.scores
        return set(s.loc[(s["metric"] == metric) & (s["backend"] == backend), "profile"])

    for metric in sorted(set(current.scores["metric"]) & set(baseline.scores["metric"])):
        for b in backends:
            pc, pb = profiles(current, metric, b), profiles(baseline, metric, b)
            if pc and pb and pc != pb:
                out.append(f"Metric '{metric}' profile changed for '{b}': {', '.join(sorted(pb))} → "
                           f"{', '.join(sorted(pc))}. Only matching profiles are compared.")
    dc, db = metric_directions(current.scores), metric_directions(baseline.scores)
    for metric in sorted(set(dc) & set(db)):
        if dc[metric] != db[metric]:
            out.append(f"Metric '{metric}' declares a different direction (higher_is_better {db[metric]} → "
                       f"{dc[metric]}); it is not compared.")
    return out


def _row(backend: str, run: RunData, **kw: object) -> dict:
    base = {c: None for c in REGRESSION_COLUMNS}
    base.update(backend=backend, label=run.label(backend), simulated=run.is_simulated(backend), other="",
                category="all", note="")
    base.update(kw)
    return base


def _video_metric_rows(cur: RunData, base: RunData, backend: str, alpha: float, seed: int,
                       directions: tuple[dict, dict]) -> list[dict]:
    rows: list[dict] = []
    sc = cur.scores[(cur.scores["backend"] == backend) & (cur.scores["scope"] == "video")]
    sb = base.scores[(base.scores["backend"] == backend) & (base.scores["scope"] == "video")]
    for metric in sorted(set(sc["metric"]) & set(sb["metric"])):
        hib_c, hib_b = directions[0].get(metric), directions[1].get(metric)
        mc, mb = sc[sc["metric"] == metric], sb[sb["metric"] == metric]
        common = dict(kind="quality", metric=metric, scope="video")
        if hib_c is None or hib_c != hib_b:
            rows.append(_row(backend, cur, **common, verdict=NOT_COMPARED, note="direction differs or is inconsistent"))
            continue
        profiles = sorted(set(mc["profile"]) & set(mb["profile"]))
        if not profiles:
            rows.append(_row(backend, cur, **common, profile=f"{', '.join(sorted(set(mb['profile'])))} → "
                             f"{', '.join(sorted(set(mc['profile'])))}", higher_is_better=hib_c, verdict=NOT_COMPARED,
                             note="metric profile changed; numbers under different profiles are not comparable"))
            continue
        for profile in profiles:
            oc = mc[(mc["profile"] == profile) & (mc["status"] == "ok")].dropna(subset=["value"])
            ob = mb[(mb["profile"] == profile) & (mb["status"] == "ok")].dropna(subset=["value"])
            row = _row(backend, cur, **common, profile=profile, higher_is_better=hib_c,
                       n_baseline=len(ob), n_current=len(oc))
            if not len(oc) or not len(ob):
                why = []
                for name, sub, allrec in (("baseline", ob, mb), ("current", oc, mc)):
                    if not len(sub):
                        reasons = [r for r in allrec.loc[allrec["profile"] == profile, "reason"] if r]
                        why.append(f"{name}: unavailable: {reasons[0]}" if reasons else f"{name}: no ok values")
                note = "; ".join(why)
                if len(why) == 2 and why[0].split(": ", 1)[1] == why[1].split(": ", 1)[1]:
                    note = "both runs: " + why[0].split(": ", 1)[1]
                rows.append(row | {"verdict": NOT_COMPARED, "note": note})
                continue
            pc = oc.groupby("prompt_id")["value"].mean()
            pb = ob.groupby("prompt_id")["value"].mean()
            matched = pc.index.intersection(pb.index)
            share = len(matched) / max(len(pc), len(pb))
            row.update(baseline=float(ob["value"].mean()), current=float(oc["value"].mean()))
            if len(matched) >= 2 and share >= MIN_PAIRED_SHARE:
                diffs = (pc[matched] - pb[matched]).to_numpy()
                est = stats.bootstrap_mean(diffs, seed=seed)
                p = stats.paired_wilcoxon(diffs)
                row.update(delta=est.value, ci_low=est.ci_low, ci_high=est.ci_high, n_pairs=len(matched),
                           test="Wilcoxon signed-rank, paired by prompt", p_value=p,
                           note="delta = mean per-prompt difference over matched prompts")
            else:
                est = stats.bootstrap_diff(oc["value"].to_numpy(), ob["value"].to_numpy(), seed=seed)
                p = stats.unpaired_mannwhitney(oc["value"].to_numpy(), ob["value"].to_numpy())
                row.update(delta=est.value, ci_low=est.ci_low, ci_high=est.ci_high, n_pairs=len(matched),
                           test="Mann-Whitney U (prompts do not match)", p_value=p)
            row["verdict"] = _verdict(float(row["delta"]), p, alpha, hib_c)
            rows.append(row)
    return rows


def _set_metric_rows(cur: RunData, base: RunData, backend: str, alpha: float,
                     directions: tuple[dict, dict]) -> list[dict]:
    rows: list[dict] = []
    sc = cur.scores[(cur.scores["backend"] == backend) & (cur.scores["scope"] != "video")]
    sb = base.scores[(base.scores["backend"] == backend) & (base.scores["scope"] != "video")]
    for rec in sc.itertuples(index=False):
        same = sb[(sb["metric"] == rec.metric) & (sb["category"] == rec.category) & (sb["other"] == rec.other)
                  & (sb["scope"] == rec.scope)]
        if not len(same):
            continue
        hib = directions[0].get(rec.metric)
        row = _row(backend, cur, kind="quality", metric=rec.metric, profile=rec.profile, scope=rec.scope,
                   other=rec.other, category=rec.category or "all", higher_is_better=hib, n_current=int(rec.n))
        match = same[same["profile"] == rec.profile]
        if not len(match):
            rows.append(row | {"verdict": NOT_COMPARED, "note": f"profile differs (baseline "
                               f"{', '.join(sorted(set(same['profile'])))}, current {rec.profile})"})
            continue
        b = match.iloc[-1]
        row.update(n_baseline=int(b["n"]))
        if hib is None or hib != directions[1].get(rec.metric):
            rows.append(row | {"verdict": NOT_COMPARED, "note": "direction differs or is inconsistent"})
            continue
        if rec.status != "ok" or b["status"] != "ok" or not np.isfinite(b["value"]) or not np.isfinite(rec.value):
            rows.append(row | {"verdict": NOT_COMPARED, "note": f"no value (baseline: {b['reason'] or b['status']}; "
                               f"current: {rec.reason or rec.status})"})
            continue
        row.update(baseline=float(b["value"]), current=float(rec.value), delta=float(rec.value - b["value"]))
        if int(b["n"]) != int(rec.n) or int(b["n_ref"]) != int(rec.n_ref):
            rows.append(row | {"verdict": NOT_COMPARED, "note": f"N differs (baseline n={int(b['n'])}, "
                               f"n_ref={int(b['n_ref'])}; current n={int(rec.n)}, n_ref={int(rec.n_ref)}): the "
                               "estimator's bias depends on N, so the values are not comparable"})
            continue
        cis = (rec.ci_low, rec.ci_high, b["ci_low"], b["ci_high"])
        if any(c is None or not np.isfinite(c) for c in cis):
            rows.append(row | {"verdict": NOT_TESTED, "note": "matched N and profile, but no recorded CI to test with"})
            continue
        lo, hi, p = stats.normal_diff_from_cis(float(rec.value), float(rec.ci_low), float(rec.ci_high),
                                               float(b["value"]), float(b["ci_low"]), float(b["ci_high"]))
        rows.append(row | {"ci_low": lo, "ci_high": hi, "p_value": p, "n_pairs": 0,
                           "test": "normal approximation from the recorded CIs",
                           "verdict": _verdict(row["delta"], p, alpha, hib)})
    return rows


def _ops_rows(cur: RunData, base: RunData, backend: str, alpha: float, seed: int) -> list[dict]:
    gc = cur.generations[cur.generations["backend"] == backend]
    gb = base.generations[base.generations["backend"] == backend]
    rows: list[dict] = []
    for status, name in (("failed", "failure rate"), ("refused", "refusal rate")):
        kc, kb = int((gc["status"] == status).sum()), int((gb["status"] == status).sum())
        rc = kc / len(gc) if len(gc) else float("nan")
        rb = kb / len(gb) if len(gb) else float("nan")
        p = stats.fisher_exact(kc, len(gc), kb, len(gb))
        rows.append(_row(backend, cur, kind="operations", metric=name, higher_is_better=False, baseline=rb, current=rc,
                         delta=rc - rb, n_baseline=len(gb), n_current=len(gc), n_pairs=0, test="Fisher exact",
                         p_value=p, verdict=_verdict(rc - rb, p, alpha, False)))
    oc, ob = gc[gc["status"] == "ok"], gb[gb["status"] == "ok"]
    per10 = {}
    for name, g in (("c", oc), ("b", ob)):
        ok = g[g["video_seconds"] > 0]
        per10[name] = (ok["cost_usd"] / ok["video_seconds"] * 10.0).to_numpy()
    for metric, xc, xb in (("latency total_s (median)", oc["total_s"].to_numpy(), ob["total_s"].to_numpy()),
                           ("cost per 10 s (median, USD)", per10["c"], per10["b"])):
        est = stats.bootstrap_diff(xc, xb, seed=seed, statistic="median")
        p = stats.unpaired_mannwhitney(xc, xb)
        rows.append(_row(backend, cur, kind="operations", metric=metric, higher_is_better=False,
                         baseline=stats.quantile(xb, 0.5), current=stats.quantile(xc, 0.5), delta=est.value,
                         ci_low=est.ci_low, ci_high=est.ci_high, n_baseline=len(xb), n_current=len(xc), n_pairs=0,
                         test="Mann-Whitney U", p_value=p, verdict=_verdict(est.value, p, alpha, False)))
    return rows


def compare_runs(current: RunData, baseline: RunData, alpha: float = DEFAULT_ALPHA, seed: int = 0) -> Regression:
    """Compare `current` against `baseline` for every backend present in both.

    Video-scope metrics: delta with a bootstrap 95 % CI, Wilcoxon signed-rank on per-prompt means when prompts match
    (else Mann-Whitney U). Set-scope metrics (FVD): compared only at equal profile, N and reference N, tested with a
    normal approximation from their recorded CIs. Verdicts are direction-aware at `alpha`.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    bc, bb = set(current.backends()), set(baseline.backends())
    common = sorted(bc & bb)
    directions = (metric_directions(current.scores), metric_directions(baseline.scores))
    rows: list[dict] = []
    for backend in common:
        rows += _video_metric_rows(current, baseline, backend, alpha, seed, directions)
        rows += _set_metric_rows(current, baseline, backend, alpha, directions)
        rows += _ops_rows(current, baseline, backend, alpha, seed)
    df = pd.DataFrame(rows, columns=list(REGRESSION_COLUMNS))
    return Regression(current=current, baseline=baseline, alpha=alpha,
                      callouts=silent_changes(current, baseline, common), rows=df,
                      only_in_current=sorted(bc - bb), only_in_baseline=sorted(bb - bc))

