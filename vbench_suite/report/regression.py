"""Quarter-over-quarter regression: compare a run with a baseline run, backend by backend.

One method per kind of quantity (docs/reports.md, "Regression verdicts"), each a test together with the interval that
inverts it, so a verdict is read off the printed interval and can never disagree with it:

- video-scope metrics and per-prompt set metrics (e.g. `lpips_diversity`): per-prompt means; a paired t-test over the
  prompts both runs scored, else Welch's t-test over prompts;
- run-level set metrics (FVD): a z-test from the two recorded 95 % intervals, only at equal profile, N and reference N;
- failure and refusal rates: Newcombe's hybrid score interval for the difference, its p-value found by inverting it;
- latency and cost: Welch's t-test on the means per ok generation (results reused from another run are left out:
  they are not a new measurement). Local backends only when both runs recorded the same hardware, and then their
  compute (hardware seconds per 10 s of video, what the process used) is tested; their wall-clock latency, which
  follows the machine's load, is shown beside it but not tested.

- drift (given the evidence, for a backend whose declared fingerprint did not change): permutation tests of the
  runs' same-seed outputs against the probe's replay noise and of their I3D feature distributions (`report.drift`);
  such a row is 'changed' exactly when its statistic exceeds the threshold printed beside it.

All tested rows of a comparison form one family, corrected with Holm's step-down method at family-wise error `alpha`.
Each interval is printed at the level its row was decided at (column `ci_level`), and the verdict is "regressed" or
"improved" exactly when that interval excludes 0, which is exactly when the Holm-adjusted p-value is below `alpha`.
Runs of different prompt sets (name or version) are not compared.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vbench_suite.report import stats
from vbench_suite.report.load import RunData
from vbench_suite.report.tables import is_local, metric_directions

DEFAULT_ALPHA = 0.05
"""Family-wise error rate of the verdicts of one comparison (Holm) unless the caller gives another."""
MIN_PAIRED_SHARE = 0.5
"""Paired tests are used when matched prompts cover at least this share of both runs' prompts (and at least 2)."""
HARDWARE_IGNORED_KEYS: frozenset[str] = frozenset({"python", "platform"})
"""Entries of run.json's "hardware" that do not change the speed of the machine (software versions)."""
LOCAL_WALL_NOTE = ("wall time of a local backend follows the machine's load; its compute (hardware s per 10 s) is "
                   "tested instead")
"""Why a local backend's wall-clock latency is shown but not tested."""
SIMULATED_LATENCY_NOTE = ("simulated: a fake vendor's latency is this machine's time to encode the file (and whether "
                          "the fake had it cached), not a vendor's; shown, not tested")
"""Why a simulated backend's latency is shown but not tested (the null scenarios flagged it whenever load or the
fake's file cache differed between the two runs)."""
CORRECTION = "Holm"
"""Multiple-testing correction across the rows of one comparison."""

REGRESSED, IMPROVED, NO_CHANGE = "regressed", "improved", "no significant change"
NOT_COMPARED, NOT_TESTED = "not compared", "not tested"

REGRESSION_COLUMNS: tuple[str, ...] = (
    "backend", "label", "simulated", "kind", "metric", "profile", "scope", "other", "category", "higher_is_better",
    "baseline", "current", "delta", "ci_low", "ci_high", "ci_level", "n_baseline", "n_current", "n_pairs", "test",
    "p_value", "p_adjusted", "verdict", "note", "threshold")


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
    not_compared_reason: str = ""
    """Non-empty when the runs are not comparable at all (different prompt sets): every row is 'not compared'."""
    hardware_note: str = ""
    """Why local latency and cost were not compared ('' when the recorded hardware matches)."""
    n_tests: int = 0
    """Rows in the Holm family (rows that were tested)."""
    drift_checked: bool = False
    """Drift evidence was given: backends with an unchanged declared fingerprint have drift rows (report.drift)."""


def verdict_from_interval(low: float, high: float, higher_is_better: bool) -> str:
    """'improved'/'regressed' when the interval excludes 0 (the side says which), else 'no significant change'."""
    if low > 0 or high < 0:
        return IMPROVED if (low > 0) == higher_is_better else REGRESSED
    return NO_CHANGE


def _fingerprints(run: RunData, backend: str) -> set[tuple[str, str, str]]:
    g = run.generations[run.generations["backend"] == backend]
    return {(str(m), str(v), str(s)) for m, v, s in zip(g["model"], g["version"], g["settings"])}


def _fmt_fps(fps: set[tuple[str, str, str]]) -> str:
    return "; ".join(f"{m}@{v}" + (f" {s}" if s not in ("{}", "") else "") for m, v, s in sorted(fps)) or "none"


def comparable_hardware(current: RunData, baseline: RunData) -> str:
    """'' when both runs recorded the same hardware (run.json "hardware", software versions aside), else why not."""
    hc, hb = current.meta.get("hardware"), baseline.meta.get("hardware")
    if not isinstance(hc, dict) or not isinstance(hb, dict):
        which = " and ".join(n for n, h in (("baseline", hb), ("current", hc)) if not isinstance(h, dict))
        return f"the {which} run did not record its hardware"
    keys = sorted((set(hc) | set(hb)) - HARDWARE_IGNORED_KEYS)
    differ = [k for k in keys if hc.get(k) != hb.get(k)]
    if differ:
        return "the runs' hardware differs (" + "; ".join(f"{k}: {hb.get(k)} → {hc.get(k)}" for k in differ) + ")"
    return ""


def suites_reason(current: RunData, baseline: RunData) -> str:
    """'' when both runs used the same prompt sets at the same versions, else a sentence saying how they differ."""
    sc, sb = current.suite_versions(), baseline.suite_versions()
    if sc == sb:
        return ""
    fmt = lambda s: ", ".join(f"{k} {v}".strip() for k, v in sorted(s.items())) or "unknown"  # noqa: E731
    return (f"the runs used different prompt sets (baseline {fmt(sb)}, current {fmt(sc)}): prompts and their "
            "number differ, so no verdict is given")


def silent_changes(current: RunData, baseline: RunData, backends: list[str]) -> list[str]:
    """Human sentences for changes that make numbers incomparable without anyone noticing: backend fingerprint
    (model, version, settings), prompt-set name or version, metric profile, metric direction, reused results."""
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
    for b in backends:
        reused = current.reused(b)
        if reused:
            sources = ", ".join(f"{n} from {src}" for src, n in sorted(reused.items()))
            total = int((current.generations["backend"] == b).sum())
            out.append(f"{sum(reused.values())} of {total} current '{b}' result(s) were reused from earlier runs "
                       f"({sources}), not generated again: they are not a new measurement, and their latency and "
                       "cost are left out of the comparison.")
    return out


def _row(backend: str, run: RunData, **kw: object) -> dict[str, Any]:
    base: dict[str, Any] = {c: None for c in REGRESSION_COLUMNS}
    base.update(backend=backend, label=run.label(backend), simulated=run.is_simulated(backend), other="",
                category="all", note="", _test=None)
    base.update(kw)
    return base


def _item_scores(run: RunData, backend: str) -> pd.DataFrame:
    """Score records with one value per video or per prompt (video scope, or a set-scope record of one prompt)."""
    s = run.scores
    return s[(s["backend"] == backend) & ((s["scope"] == "video") | (s["prompt_id"] != ""))]


def _missing_note(ob: pd.DataFrame, oc: pd.DataFrame, mb: pd.DataFrame, mc: pd.DataFrame, profile: str) -> str:
    why = []
    for name, sub, allrec in (("baseline", ob, mb), ("current", oc, mc)):
        if not len(sub):
            reasons = [r for r in allrec.loc[allrec["profile"] == profile, "reason"] if r]
            why.append(f"{name}: unavailable: {reasons[0]}" if reasons else f"{name}: no ok values")
    if len(why) == 2 and why[0].split(": ", 1)[1] == why[1].split(": ", 1)[1]:
        return "both runs: " + why[0].split(": ", 1)[1]
    return "; ".join(why)


def _item_metric_rows(cur: RunData, base: RunData, backend: str, directions: tuple[dict, dict]) -> list[dict]:
    rows: list[dict] = []
    sc, sb = _item_scores(cur, backend), _item_scores(base, backend)
    for metric in sorted(set(sc["metric"]) & set(sb["metric"])):
        hib_c, hib_b = directions[0].get(metric), directions[1].get(metric)
        mc, mb = sc[sc["metric"] == metric], sb[sb["metric"] == metric]
        scope = str(mc["scope"].iloc[0])
        common = dict(kind="quality", metric=metric, scope=scope)
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
            # One value per prompt: samples of one prompt are not independent observations.
            pc = oc.groupby("prompt_id")["value"].mean()
            pb = ob.groupby("prompt_id")["value"].mean()
            row = _row(backend, cur, **common, profile=profile, higher_is_better=hib_c,
                       n_baseline=len(pb), n_current=len(pc), n_pairs=0)
            if not len(oc) or not len(ob):
                rows.append(row | {"verdict": NOT_COMPARED, "note": _missing_note(ob, oc, mb, mc, profile)})
                continue
            matched = pc.index.intersection(pb.index)
            share = len(matched) / max(len(pc), len(pb))
            row.update(baseline=float(pb.mean()), current=float(pc.mean()))
            if len(matched) >= 2 and share >= MIN_PAIRED_SHARE:
                test = stats.paired_t((pc[matched] - pb[matched]).to_numpy())
                row.update(n_pairs=len(matched), note="per-prompt means; delta = mean difference over the "
                           f"{len(matched)} prompts both runs scored")
            else:
                test = stats.welch_t(pc.to_numpy(), pb.to_numpy())
                row.update(note="per-prompt means; prompts do not match, so an unpaired test")
            if test is None:
                rows.append(row | {"delta": row["current"] - row["baseline"], "verdict": NOT_TESTED,
                                   "note": "fewer than 2 prompts on a side: no test"})
                continue
            rows.append(row | {"delta": test.delta, "_test": test})
    return rows


def _run_level_sets(run: RunData, backend: str) -> pd.DataFrame:
    s = run.scores
    sub = s[(s["backend"] == backend) & (s["scope"] != "video") & (s["prompt_id"] == "")]
    # one record per identity (the latest): a repeated record must not become a repeated row
    return sub.drop_duplicates(subset=["metric", "profile", "scope", "other", "category"], keep="last")


def _set_metric_rows(cur: RunData, base: RunData, backend: str, directions: tuple[dict, dict]) -> list[dict]:
    rows: list[dict] = []
    sc, sb = _run_level_sets(cur, backend), _run_level_sets(base, backend)
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
        row.update(n_baseline=int(b["n"]), n_pairs=0)
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
        test = stats.normal_from_cis(float(rec.value), float(rec.ci_low), float(rec.ci_high),
                                     float(b["value"]), float(b["ci_low"]), float(b["ci_high"]))
        rows.append(row | {"_test": test})
    return rows


def _measured(run: RunData, backend: str) -> pd.DataFrame:
    """Generations of `backend` measured in this run: requests actually sent (not unsupported), not reused."""
    g = run.generations
    g = g[(g["backend"] == backend) & ~g["unsupported"].astype(bool)]
    return g[g["reused_from"] == ""]


def _ops_rows(cur: RunData, base: RunData, backend: str, hardware_reason: str) -> list[dict]:
    gc, gb = _measured(cur, backend), _measured(base, backend)
    rows: list[dict] = []
    if not len(gc) or not len(gb):
        which = "current" if not len(gc) else "baseline"
        return [_row(backend, cur, kind="operations", metric="failure/refusal rates, latency, cost",
                     higher_is_better=False, verdict=NOT_COMPARED,
                     note=f"the {which} run has no generation of its own for this backend (all reused or none sent)")]
    # Creates whose answer was lost have no known outcome: left out of both rates, as in the reliability table.
    kc_all, kb_all = gc[~gc["outcome_unknown"].astype(bool)], gb[~gb["outcome_unknown"].astype(bool)]
    for status, name in (("failed", "failure rate"), ("refused", "refusal rate")):
        if not len(kc_all) or not len(kb_all):
            rows.append(_row(backend, cur, kind="operations", metric=name, higher_is_better=False,
                             verdict=NOT_COMPARED, note="no request with a known outcome on a side"))
            continue
        kc, kb = int((kc_all["status"] == status).sum()), int((kb_all["status"] == status).sum())
        test = stats.newcombe_test(kc, len(kc_all), kb, len(kb_all))
        rows.append(_row(backend, cur, kind="operations", metric=name, higher_is_better=False,
                         baseline=kb / len(kb_all), current=kc / len(kc_all), delta=test.delta if test else None,
                         n_baseline=len(kb_all), n_current=len(kc_all), n_pairs=0, _test=test,
                         note="over requests sent whose outcome is known (unsupported, reused and creates of "
                              "unknown outcome left out)"))
    oc, ob = gc[gc["status"] == "ok"], gb[gb["status"] == "ok"]
    local = is_local(cur, backend) or is_local(base, backend)
    if local:
        quantities = (("latency total_s (mean, wall clock)", "total_s", False),
                      ("hardware s per 10 s of video (mean)", "hardware_s", True))
    else:
        quantities = (("latency total_s (mean)", "total_s", False), ("cost per 10 s (mean, USD)", "cost_usd", True))
    for name, col, per_10s in quantities:
        xc, xb = _per_generation(oc, col, per_10s), _per_generation(ob, col, per_10s)
        row = _row(backend, cur, kind="operations", metric=name, higher_is_better=False,
                   baseline=float(np.mean(xb)) if len(xb) else None, current=float(np.mean(xc)) if len(xc) else None,
                   n_baseline=len(xb), n_current=len(xc), n_pairs=0)
        if local and hardware_reason:
            rows.append(row | {"verdict": NOT_COMPARED, "note": f"local backend and {hardware_reason}"})
            continue
        simulated = cur.is_simulated(backend) or base.is_simulated(backend)
        if not per_10s and (local or simulated):
            rows.append(row | {"delta": row["current"] - row["baseline"] if len(xc) and len(xb) else None,
                               "verdict": NOT_TESTED, "note": LOCAL_WALL_NOTE if local else SIMULATED_LATENCY_NOTE})
            continue
        test = stats.welch_t(xc, xb)
        if test is None:
            rows.append(row | {"verdict": NOT_TESTED, "note": "fewer than 2 ok generations on a side"})
            continue
        rows.append(row | {"delta": test.delta, "_test": test})
    return rows


PER_10S_DECIMALS = 9
"""Cost (USD) and hardware seconds per 10 s of video are rounded to this many decimals before testing: below that
they are float noise of unit conversions (one price gives 0.4 and 0.39999999999999997), and two runs at one price
must not differ 'significantly' by 5e-17 USD (a t-test on constant sides one ulp apart gives p = 0)."""


def _per_generation(ok: pd.DataFrame, col: str, per_10s: bool) -> np.ndarray:
    if not per_10s:
        return ok[col].to_numpy(dtype=np.float64)
    sub = ok[ok["video_seconds"] > 0]
    return np.round((sub[col] / sub["video_seconds"] * 10.0).to_numpy(dtype=np.float64), PER_10S_DECIMALS)


def _decide(rows: list[dict], alpha: float) -> int:
    """Holm across every tested row; fill interval, level, p-values and verdicts. Returns the family size."""
    tested = [r for r in rows if r["_test"] is not None]
    adjusted, levels = stats.holm_levels([r["_test"].p_value for r in tested], alpha)
    for r, p_adj, level in zip(tested, adjusted, levels):
        if r.get("kind") == "drift":  # a permutation test: its verdict is read off a threshold (report.drift)
            from vbench_suite.report.drift import decide_row

            decide_row(r, p_adj, level)
            continue
        test: stats.DeltaTest = r["_test"]
        lo, hi = test.interval(level)
        r.update(delta=test.delta, ci_low=lo, ci_high=hi, ci_level=1.0 - level, test=test.method,
                 p_value=test.p_value, p_adjusted=p_adj, verdict=verdict_from_interval(lo, hi, bool(r["higher_is_better"])))
    return len(tested)


def compare_runs(current: RunData, baseline: RunData, alpha: float = DEFAULT_ALPHA, seed: int = 0,
                 drift: Mapping[str, Any] | None = None) -> Regression:
    """Compare `current` against `baseline` for every backend present in both (methods: the module docstring).

    `drift` ({backend: `drift.evidence.BackendEvidence`}, gathered beforehand) adds the drift rows of every backend
    whose declared fingerprint is unchanged (`report.drift`) to the same Holm family; `seed` seeds their random
    permutations when there are too many to enumerate. Raises ValueError for alpha outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    bc, bb = set(current.backends()), set(baseline.backends())
    common = sorted(bc & bb)
    directions = (metric_directions(current.scores), metric_directions(baseline.scores))
    hardware_reason = comparable_hardware(current, baseline)
    rows: list[dict] = []
    for backend in common:
        rows += _item_metric_rows(current, baseline, backend, directions)
        rows += _set_metric_rows(current, baseline, backend, directions)
        rows += _ops_rows(current, baseline, backend, hardware_reason)
        if drift is not None:
            from vbench_suite.report.drift import drift_rows

            rows += drift_rows(current, baseline, backend, drift.get(backend), _row, seed=seed)
    reason = suites_reason(current, baseline)
    n_tests = 0
    if reason:
        for r in rows:
            if r["_test"] is not None or r["verdict"] == NOT_TESTED:
                r.update(_test=None, verdict=NOT_COMPARED, note=reason)
    else:
        n_tests = _decide(rows, alpha)
    for r in rows:
        r.pop("_test")
    df = pd.DataFrame(rows, columns=list(REGRESSION_COLUMNS))
    local_backends = [b for b in common if is_local(current, b) or is_local(baseline, b)]
    hardware_note = (f"Local latency and compute ({', '.join(local_backends)}) not compared: {hardware_reason}."
                     if hardware_reason and local_backends else "")
    return Regression(current=current, baseline=baseline, alpha=alpha,
                      callouts=silent_changes(current, baseline, common), rows=df,
                      only_in_current=sorted(bc - bb), only_in_baseline=sorted(bb - bc),
                      not_compared_reason=reason, hardware_note=hardware_note, n_tests=n_tests,
                      drift_checked=drift is not None)

