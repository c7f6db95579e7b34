"""Drift in the reports: the rows a comparison adds for a backend whose declared model did not change, the headline
that says whether its output changed anyway, and the reproducibility probe's section. Never imports torch: the
evidence (`drift.evidence.BackendEvidence`) was gathered before.

Two tests per backend, both one-sided permutation tests (`drift.mmd`) that join the comparison's Holm family:
- `same-seed outputs vs replay floor (LPIPS)`, only when both runs' probes found the backend bit-exact or
  seed-faithful: LPIPS between the two runs' outputs of the same request and seed, against the LPIPS between an
  output and its replay in the probes;
- `I3D feature distribution (kernel MMD²)`, for every backend: the two runs' videos, permuted within prompts.
A row is 'changed' exactly when its statistic exceeds the permutation null's threshold printed beside it (at the
level Holm decided the row at), which is exactly when its Holm-adjusted p is below alpha.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from vbench_suite.drift.evidence import BackendEvidence, fingerprint_set
from vbench_suite.drift.mmd import excess_test, mmd_test
from vbench_suite.report.load import RunData
from vbench_suite.report.render import Cell, Section, Table, fmt, fmt_usd

DRIFT_KIND = "drift"
"""`kind` of drift rows in the regression table."""
CHANGED, NOT_DETECTED = "changed", "no change detected"
"""Verdicts of drift rows (they have no direction: a change is neither better nor worse by itself)."""
LPIPS_ROW = "same-seed outputs vs replay floor (LPIPS)"
MMD_ROW = "I3D feature distribution (kernel MMD²)"
FALSE_ALARM_NOTE = ("Both tests are exact permutation tests, so a run pair where nothing changed is flagged with "
                    "probability at most alpha; measured false-alarm and detection rates with the fake vendors: "
                    "docs/drift.md.")


def drift_rows(current: RunData, baseline: RunData, backend: str, ev: BackendEvidence | None,
               make_row: Any, seed: int = 0) -> list[dict[str, Any]]:
    """The drift rows of one backend (empty when its declared fingerprint changed: that is called out instead).
    `make_row(backend, run, **columns)` is the regression table's row constructor."""
    if fingerprint_set(current, backend) != fingerprint_set(baseline, backend):
        return []
    common = dict(kind=DRIFT_KIND, higher_is_better=None, scope="set")
    if ev is None:
        return [make_row(backend, current, **common, metric=MMD_ROW, verdict="not tested",
                         note="no drift evidence for this backend (its videos were not measured)")]
    rows = [_lpips_row(current, backend, ev, make_row, common, seed),
            _mmd_row(current, backend, ev, make_row, common, seed)]
    return rows


def _lpips_row(current: RunData, backend: str, ev: BackendEvidence, make_row: Any, common: dict,
               seed: int) -> dict[str, Any]:
    row = make_row(backend, current, **common, metric=LPIPS_ROW, profile=ev.lpips_profile,
                   n_baseline=len(ev.floor), n_current=len(ev.pairs), n_pairs=len(ev.pairs))
    if not ev.reproducible:
        base, cur = ev.classes
        why = ("a run has no reproducibility probe of it (run with --probe)" if None in ev.classes else
               f"the probes found it {base} (baseline) and {cur} (current): the seed does not fix its video")
        return row | {"verdict": "not tested", "note": f"no pairwise test: {why}"}
    if not ev.pairs or not ev.floor:
        what = "no request and seed has an ok output in both runs" if not ev.pairs else "no replay was measured"
        return row | {"verdict": "not tested", "note": what}
    test = excess_test([d for _, d in ev.pairs], ev.floor, seed=seed)
    mean_pairs = sum(d for _, d in ev.pairs) / len(ev.pairs)
    return row | {"baseline": sum(ev.floor) / len(ev.floor), "current": mean_pairs, "_test": test,
                  "note": f"baseline = mean replay LPIPS of the probes ({', '.join(c or '?' for c in ev.classes)}); "
                          f"current = mean LPIPS between the runs' same-seed outputs; statistic = their difference"}


def _mmd_row(current: RunData, backend: str, ev: BackendEvidence, make_row: Any, common: dict,
             seed: int) -> dict[str, Any]:
    shared = ev.shared_strata()
    keep_b = [i for i, s in enumerate(ev.baseline_strata) if s in shared]
    keep_c = [i for i, s in enumerate(ev.current_strata) if s in shared]
    row = make_row(backend, current, **common, metric=MMD_ROW, profile=ev.i3d_profile, n_baseline=len(keep_b),
                   n_current=len(keep_c), n_pairs=len(shared))
    if len(shared) < 2:
        notes = f" ({'; '.join(ev.notes)})" if ev.notes else ""
        return row | {"verdict": "not tested",
                      "note": f"fewer than 2 prompts with a measured video in both runs{notes}"}
    test = mmd_test(ev.baseline_features[keep_b], [ev.baseline_strata[i] for i in keep_b],
                    ev.current_features[keep_c], [ev.current_strata[i] for i in keep_c], seed=seed)
    note = f"{len(shared)} prompts; labels permuted within each prompt"
    if ev.notes:
        note += "; " + "; ".join(ev.notes)
    return row | {"_test": test, "note": note}


def decide_row(row: dict[str, Any], p_adjusted: float, level: float) -> None:
    """Fill a tested drift row: statistic, the threshold at its Holm level, p-values and the verdict."""
    test = row["_test"]
    row.update(delta=test.statistic, threshold=test.threshold(level), ci_level=1.0 - level, test=test.method,
               p_value=test.p_value, p_adjusted=p_adjusted, verdict=CHANGED if test.rejects(level) else NOT_DETECTED)


def _date(run: RunData) -> str:
    created = str(run.meta.get("created") or "")
    return created[:10] or run.name


def headlines(reg: Any) -> tuple[list[str], list[str]]:
    """(callouts, paragraphs) of a `regression.Regression`: 'the output of B changed ... although its declared model
    did not (p = ...)' for every backend with a changed drift row; for the others what was found or why nothing was
    tested."""
    rows, current, baseline, alpha = reg.rows, reg.current, reg.baseline, reg.alpha
    callouts: list[str] = []
    paragraphs: list[str] = []
    if rows is None or not len(rows) or "kind" not in rows:
        return callouts, paragraphs
    drift = rows[rows["kind"] == DRIFT_KIND]
    span = f"between {_date(baseline)} ({baseline.name}) and {_date(current)} ({current.name})"
    for backend, g in drift.groupby("backend", sort=True):
        label = str(g["label"].iloc[0])
        changed = g[g["verdict"] == CHANGED]
        tested = g[g["verdict"].isin([CHANGED, NOT_DETECTED])]
        if len(changed):
            best = changed.sort_values("p_adjusted").iloc[0]
            others = rows[(rows["backend"] == backend) & (rows["kind"] != DRIFT_KIND)
                          & rows["verdict"].isin(["regressed", "improved"])]
            also = (" Also shifted: " + ", ".join(f"{m} ({v})" for m, v in zip(others["metric"], others["verdict"]))
                    + ".") if len(others) else ""
            callouts.append(f"The output of {label} changed {span} although its declared model did not "
                            f"(p = {best['p_adjusted']:.3g}, Holm-adjusted over the comparison's {reg.n_tests} tests "
                            f"at "
                            f"alpha {alpha}; {best['metric']}).{also}")
        elif len(tested):
            p = float(tested["p_adjusted"].min())
            paragraphs.append(f"No change detected in the output of {label} {span} (smallest Holm-adjusted p = "
                              f"{p:.3g} over its {len(tested)} drift test(s)). {FALSE_ALARM_NOTE}")
        else:
            paragraphs.append(f"Output drift of {label} not tested: {'; '.join(str(n) for n in g['note'])}.")
    for backend in sorted(set(drift["backend"])):
        pb = ((baseline.meta.get("probe") or {}).get(backend) or {}).get("class")
        pc = ((current.meta.get("probe") or {}).get(backend) or {}).get("class")
        if pb and pc and pb != pc:
            callouts.append(f"The reproducibility of {current.label(backend)} changed {span}: the probe found it "
                            f"{pb}, now {pc}.")
    return callouts, paragraphs


PROBE_NOTE = ("Each probed prompt was sent a second time with the same request and seed (a new, paid request). "
              "Bit-exact: every decoded pixel equal. Seed-faithful within noise: same size and length, LPIPS (drift "
              "profile: AlexNet, 16 frames spread over the clip, short side 224) at most the threshold. "
              "Non-deterministic: otherwise; then only distribution tests can detect drift.")


def probe_section(run: RunData) -> Section | None:
    """The run's reproducibility probe, one row per probed backend (None when the run has no probe)."""
    probes = run.meta.get("probe") or {}
    if not probes:
        return None
    rows = []
    for backend, p in sorted(probes.items()):
        pairs = p.get("pairs") or []
        ok = [x for x in pairs if x.get("status") == "ok"]
        lp = max((x["lpips"] for x in ok), default=None)
        px = max((x["max_abs_diff"] for x in ok), default=None)
        mean_px = max((x["mean_abs_diff"] for x in ok), default=None)
        not_ok = "; ".join(f"{x['prompt_id']}: {x['status']}" for x in pairs if x.get("status") != "ok")
        rows.append([Cell(run.label(backend), "simulated" if run.is_simulated(backend) else ""),
                     Cell(str(p.get("class"))), Cell(str(p.get("reason") or "")), Cell(f"{len(ok)} / {len(pairs)}"),
                     Cell(fmt(lp)), Cell("—" if px is None else f"{px} (mean {fmt(mean_px, 3)})"),
                     Cell(f"{p.get('seed_faithful_max_lpips')}"), Cell(fmt_usd(p.get("billed_usd"))),
                     Cell(not_ok or "—")])
    table = Table("Reproducibility probe (same request and seed, sent twice)",
                  ["backend", "class", "why", "pairs measured", "max LPIPS", "max pixel diff (0-255)",
                   "seed-faithful threshold", "replays billed", "not measured"], rows, PROBE_NOTE)
    return Section("Reproducibility", tables=[table])
