"""Assemble and write reports: the comparison report (with optional regression against a baseline) and the
break-even report. This is the module the CLI and `make run` call."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vbench_suite import __version__
from vbench_suite.report import drift as drift_report
from vbench_suite.report import economics, plots, tables
from vbench_suite.report.economics import BreakEven, BreakEvenInputs
from vbench_suite.report.gallery import gallery_section
from vbench_suite.report.gallery_media import GalleryOptions
from vbench_suite.report.load import RunData, load_run
from vbench_suite.report.ratings_section import human_preference_section
from vbench_suite.report.regression import (IMPROVED, NO_CHANGE, NOT_COMPARED, NOT_TESTED, REGRESSED, Regression,
                                             compare_runs)
from vbench_suite.report.render import Cell, Plot, Section, Table, fmt, fmt_ci, fmt_usd, to_html, to_markdown

DEFAULT_REPORTS_DIR = Path("reports")
"""Reports go to `reports/<run name>/` (relative to the working directory) unless an output folder is given."""
REPORT_STEM = "report"
"""File stem of the written report: report.md, report.html."""


def default_out_dir(run: RunData) -> Path:
    """`reports/<run name>/`, with the run name reduced to characters safe in a folder name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run.name).strip("._") or "run"
    return DEFAULT_REPORTS_DIR / safe


def _direction(hib: bool) -> str:
    return "higher is better" if hib else "lower is better"


def _quality_cell(r: pd.Series) -> Cell:
    if r["status"] != "ok":
        return Cell(f"{r['status']}: {r['reason']}", "unavailable")
    n_text = int(r["n"])
    text = fmt_ci(r["value"], r["ci_low"], r["ci_high"], n_text)
    if r["scope"] != "video" and r["n_ref"]:
        text += f" n_ref={int(r['n_ref'])}"
    return Cell(text, "best" if bool(r["best"]) else "")


QUALITY_NOTES: dict[str, str] = {
    "bootstrap over videos": "Mean over videos, 95 % bootstrap CI over videos, n = videos scored.",
    "bootstrap over prompts": "One value per prompt (across that prompt's samples); mean over prompts, 95 % bootstrap "
                              "CI over prompts, n = prompts scored.",
}
"""Table notes by how the cells were aggregated (`ci_method` of the quality table)."""
SET_NOTE = "Value and 95 % CI as recorded by the metric; n = generated videos, n_ref = reference videos."


def missing_backend_text(run: RunData | None, backend: str, default: str = "no records for this backend") -> str:
    """Cell text for a requested backend that has no value in a table: what happened to it (else `default`)."""
    notes = run.outcome_notes(backend) if run is not None else []
    return "; ".join(notes) if notes else default


def quality_tables(quality: pd.DataFrame, run: RunData | None = None) -> list[Table]:
    """One table per (metric, profile, scope, reference): rows are backends sorted best first by the metric's declared
    direction (overall value), columns are prompt categories; the best cell in each column is highlighted.

    With `run`, every backend the user asked for has a row: one without scores says why (not configured, requests
    not sent for the budget cap, unsupported, or no score record)."""
    out: list[Table] = []
    requested = run.requested_backends() if run is not None else []
    for (metric, profile, scope, other), g in quality.groupby(["metric", "profile", "scope", "other"], sort=True):
        first = g.iloc[0]
        cats = ["all"] + sorted(c for c in g["category"].unique() if c != "all")
        if not (g["status"] == "ok").any():
            cats = ["all"]  # nothing to break down: one cell per backend says why there is no value
        ranks = {b: r for b, r in zip(g.loc[g["category"] == "all", "backend"], g.loc[g["category"] == "all", "rank"])
                 if np.isfinite(r)}
        order = sorted(g["backend"].unique(), key=lambda b: (ranks.get(b, math.inf), b))  # best first, unranked last
        rows: list[list[Cell]] = []
        for b in order:
            sub = g[g["backend"] == b]
            label = str(sub["label"].iloc[0])
            row = [Cell(label, "simulated" if bool(sub["simulated"].iloc[0]) else "")]
            for c in cats:
                cell = sub[sub["category"] == c]
                row.append(_quality_cell(cell.iloc[0]) if len(cell) else Cell("no value in this category"))
            rows.append(row)
        if "" not in set(g["backend"]):  # a metric unavailable for the whole run already speaks for every backend
            for b in requested:
                if b not in set(g["backend"]):
                    text = missing_backend_text(run, b, "no score record for this metric")
                    rows.append([Cell(run.label(b) if run is not None else b)]
                                + [Cell(text, "unavailable")] + [Cell("—") for _ in cats[1:]])
        unit = f" [{first['unit']}]" if first["unit"] else ""
        ref = f" vs {other}" if other else ""
        directions = set(bool(x) for x in g["higher_is_better"])
        direction = (_direction(directions.pop()) if len(directions) == 1
                     else "records disagree on direction: not ranked")
        methods = set(g.loc[g["ci_method"] != "", "ci_method"])
        per_prompt = "bootstrap over prompts" in methods
        title = (f"{metric}{unit}{ref} — {direction} — profile {profile or '(none)'} — scope "
                 f"{scope}{' (one value per prompt)' if per_prompt else ''}")
        note = (QUALITY_NOTES["bootstrap over prompts"] if per_prompt else
                QUALITY_NOTES["bootstrap over videos"] if scope == "video" else SET_NOTE)
        out.append(Table(title, ["backend"] + cats, rows, note))
    return out


OUTCOME_UNKNOWN_HEADER = "outcome unknown (may have been billed)"
"""Column of creates whose answer was lost, in the reliability table and the run summary (one spelling)."""
RELIABILITY_NOTE = (
    "Rates with 95 % Wilson intervals (count / denominator in brackets) over requests sent whose outcome is known: "
    "'unsupported' requests (outside the backend's declared modes, durations or resolutions) were not sent, and "
    "creates whose answer was lost ('outcome unknown') are left out of both the count and the denominator of every "
    "rate, because the vendor may have made the job and it may have succeeded, failed or been refused there; "
    "counting them as failures would overstate the failure rate and as successes understate it. They are shown "
    "apart with the upper estimate of what they may have billed (not in 'spent by this run') and where to check in "
    "the vendor's dashboard (outcome column). Cost per 10 s = total cost of all attempts (billed failures included) "
    "/ seconds of video delivered × 10. 'Spent by this run' leaves out results reused from earlier runs: their cost "
    "was paid there.")


def _rate(rate: float, low: float, high: float, k: int, n: int) -> str:
    """A rate with its Wilson interval and `k/n`, or a dash when no request has a known outcome."""
    if not n:
        return "— (0/0)"
    return f"{rate:.1%} [{low:.1%}, {high:.1%}] ({k}/{n})"


def _unknown_cell(r: Any) -> Cell:  # a row of `ops.itertuples()`
    """Creates of unknown outcome and what they may have billed (upper estimate), flagged when there are any."""
    if not r.n_outcome_unknown:
        return Cell("0")
    return Cell(f"{r.n_outcome_unknown} (up to {fmt_usd(r.may_have_billed_usd)})", "unavailable")


def may_have_billed_line(ops: pd.DataFrame) -> str:
    """'' or the report's "may have been billed" sentence: total upper estimate over every backend's creates of
    unknown outcome (their records' `may_have_billed_usd`), with the per-backend parts."""
    if not len(ops) or not int(ops["n_outcome_unknown"].sum()):
        return ""
    parts = [f"{r.label}: {r.n_outcome_unknown} create(s), up to {fmt_usd(r.may_have_billed_usd)}"
             for r in ops.itertuples(index=False) if r.n_outcome_unknown]
    total = float(ops["may_have_billed_usd"].sum())
    return (f"May have been billed: up to {fmt_usd(total)} for creates whose answer was lost ({'; '.join(parts)}), "
            "not included in what was spent; check each vendor's dashboard as the reliability table's outcome "
            "column says.")


def operations_tables(ops: pd.DataFrame, stage_names: list[str], run: RunData | None = None) -> list[Table]:
    """Reliability and cost table, and the latency table (median / p90 per component).

    With `run`, every requested backend has a row in both, with its outcome (not configured, not sent for the budget
    cap, unsupported, reused from another run)."""
    requested = run.requested_backends() if run is not None else []
    missing = [b for b in requested if not len(ops) or b not in set(ops["backend"])]
    if not len(ops) and not missing:
        return []
    rel_rows = []
    for r in ops.itertuples(index=False):
        sim = "simulated" if r.simulated else ""
        hw = (f"{fmt(r.hardware_s_per_video_median)} s/video, {fmt(r.hardware_s_per_10s)} s per 10 s, "
              f"{fmt(r.videos_per_hw_hour)} videos/h") if r.local else "n/a (remote)"
        per10 = fmt_usd(r.usd_per_10s) if np.isfinite(r.usd_per_10s) else "no video delivered"
        spent = fmt_usd(r.cost_usd_spent) + (f" (+ {fmt_usd(r.cost_usd_reused)} paid by earlier runs)"
                                             if r.n_reused and r.cost_usd_reused else "")
        outcome = "; ".join(run.outcome_notes(r.backend)) if run is not None else ""
        rel_rows.append([
            Cell(r.label, sim), Cell(r.fingerprints), Cell(str(r.n_requests)), Cell(str(r.n_unsupported)),
            Cell(str(r.n_ok)),
            Cell(_rate(r.refusal_rate, r.refusal_ci_low, r.refusal_ci_high, r.n_refused, r.n_known)),
            Cell(_rate(r.failure_rate, r.failure_ci_low, r.failure_ci_high, r.n_failed, r.n_known)),
            _unknown_cell(r), Cell(per10), Cell(spent), Cell(hw), Cell(outcome or "all requests sent")])
    for b in missing:
        rel_rows.append([Cell(run.label(b))] + [Cell("—")] + [Cell("0")] * 3 + [Cell("—")] * 6
                        + [Cell(missing_backend_text(run, b), "unavailable")])
    rel = Table("Reliability, cost and hardware", ["backend", "model@version", "requests", "unsupported", "ok",
                                                    "refusal rate", "failure rate", OUTCOME_UNKNOWN_HEADER,
                                                    "cost per 10 s", "spent by this run", "hardware (local)",
                                                    "outcome"],
                rel_rows, RELIABILITY_NOTE)
    parts = [("total", "total_s"), ("queued", "queued_s"), ("generating", "generating_s"),
             ("downloading", "downloading_s")] + [(s, f"stage_{s}") for s in stage_names]
    lat_rows = []
    for r in ops.to_dict("records"):
        row = [Cell(r["label"], "simulated" if r["simulated"] else "")]
        for _, col in parts:
            if col.startswith("stage_") and not r["local"]:
                row.append(Cell("n/a (remote)"))
            else:
                row.append(Cell(f"{fmt(r.get(f'{col}_median'))} / {fmt(r.get(f'{col}_p90'))}"))
        lat_rows.append(row)
    for b in missing:
        lat_rows.append([Cell(run.label(b))] + [Cell(missing_backend_text(run, b), "unavailable")]
                        + [Cell("—") for _ in parts[1:]])
    lat = Table("Latency in seconds (median / p90, ok generations)", ["backend"] + [p for p, _ in parts], lat_rows,
                "Medians of each component are taken separately, so they need not add up to the total's median. "
                "Medians interpolate between the two middle values (the run summary uses the same function).")
    return [rel, lat]


def breakeven_from_run(run: RunData, ops: pd.DataFrame) -> tuple[list[BreakEven], list[str]]:
    """Break-even of each paid remote backend of the run against self-hosting the run's slowest local backend.

    Returns (results, paragraphs stating every rate used and where it came from). Like-for-like comparisons come
    first; the others are normalised per megapixel-second and carry 'No verdict'. The hourly rate is the one implied
    by the local backend's own cost records (named with its source, e.g. dit-local's assumed default), or
    `economics.ASSUMED_GPU_USD_PER_HOUR` (said so) for an unpriced GPU; an unpriced CPU run is not computed.
    """
    econ = economics.economics_from_run(run)
    notes: list[str] = []
    if not econ.api_usd_per_10s:
        return [], ["Not computed: no remote backend in this run has a non-zero cost per 10 s. Use `vbench-suite "
                    "breakeven --api-usd-per-10s X ...` with a price from the vendor's price table."]
    price, source = econ.gpu_usd_per_hour, econ.rate_source
    if price is None and econ.selfhost_backend is not None and econ.device == "cpu":
        return [], [f"Not computed: {econ.selfhost_backend} ran on CPU and its records carry no price. Give one: "
                    "`vbench-suite breakeven --from-run RUN_DIR --gpu-usd-per-hour USD` (the price of one hour of the "
                    "machine it ran on)."]
    if price is None:
        price = economics.ASSUMED_GPU_USD_PER_HOUR
        source = ("assumed, source: vbench-suite's placeholder GPU price (ASSUMED_GPU_USD_PER_HOUR), not a quote; "
                  "the run did not price its hardware. Recompute with yours: `vbench-suite breakeven --from-run "
                  "RUN_DIR --gpu-usd-per-hour USD`")
    machine = econ.machine if econ.selfhost_backend is not None else "GPU"
    gpus = econ.gpus or 1
    held = (f"{gpus} such machines (the GPUs one generation of {econ.selfhost_backend} held)" if econ.gpus
            else "1 such machine")
    notes.append(f"Self-hosting rate: {machine} at ${price:.4g}/h ({source}). Assumed: {held} paid for "
                 f"{economics.HOURS_PER_MONTH:.0f} h/month, no variable cost.")
    if econ.videos_per_gpu_hour is not None:
        made = f" of {econ.selfhost_format.describe()}" if econ.selfhost_format else ""
        per_10s = (f" ({econ.hardware_s_per_10s:.4g} hardware seconds per 10 s of video)"
                   if econ.hardware_s_per_10s is not None else "")
        notes.append(f"Throughput measured on {econ.selfhost_backend} (the slowest local backend in the run, so the "
                     f"estimate is conservative): {econ.videos_per_gpu_hour:.4g} videos{made} per hour of "
                     f"{machine}{per_10s}, from its hardware seconds on this run's machine. Choose another with "
                     "`vbench-suite breakeven --selfhost-backend NAME`.")
    else:
        notes.append("No local backend with hardware seconds in this run: utilisation is not computed.")
    notes.append("API prices: measured in this run (total cost of all attempts / seconds of video delivered × 10); "
                 "a (simulated) vendor's price is the fake server's price table, not a quote.")
    notes += list(econ.api_notes.values())
    results = []
    for label, api in sorted(econ.api_usd_per_10s.items()):
        inputs = BreakEvenInputs(api_usd_per_10s=api, gpu_usd_per_hour=price, gpus=gpus,
                                 videos_per_gpu_hour=econ.videos_per_gpu_hour,
                                 video_seconds=econ.video_seconds or 10.0, api_label=label,
                                 sources=(f"API price measured in this run: {label} = ${api:.4g} per 10 s",
                                          f"Self-hosting rate: {machine} at ${price:.4g}/h ({source})"),
                                 machine=machine, selfhost_label=econ.selfhost_backend or "self-host",
                                 api_format=econ.api_formats.get(label), selfhost_format=econ.selfhost_format)
        results.append(economics.compute_breakeven(inputs))
    unlike = [r.inputs.api_label for r in results if r.comparison.like_for_like is False]
    if unlike:
        notes.append(f"Not like for like ({', '.join(unlike)}): the self-hosted clips differ in resolution or length "
                     "from the API's, so those rows are normalised per megapixel-second "
                     f"({economics.NORMALISATION_CAVEAT}) and give no verdict.")
    # like-for-like first: the report's cost table and the plot's capacity line follow the first result
    results.sort(key=lambda r: (r.comparison.like_for_like is False, r.inputs.api_label))
    # one volume grid for all API options (shared plot and table): the widest of their default ranges
    top = max(float(r.table["volume_10s_units"].max()) for r in results)
    points = [r.breakeven_volume for r in results if r.breakeven_volume is not None]
    volumes = np.unique(np.concatenate([np.linspace(0.0, top, economics.DEFAULT_TABLE_POINTS), points]))
    results = [economics.compute_breakeven(r.inputs, volumes) for r in results]
    return results, notes


def _comparison_cell(r: BreakEven) -> Cell:
    like = r.comparison.like_for_like
    if like is None:
        return Cell("formats not checked", "unavailable")
    fmt_own = r.inputs.selfhost_format.describe() if r.inputs.selfhost_format else "?"
    fmt_api = r.inputs.api_format.describe() if r.inputs.api_format else "?"
    if like:
        return Cell(f"like for like ({fmt_api})")
    return Cell(f"NOT like for like: self-host {fmt_own}, API {fmt_api}; normalised per megapixel-second",
                "unavailable")


def breakeven_summary_table(results: list[BreakEven]) -> Table:
    """One row per API option: formats compared, price, break-even volume, utilisation needed, verdict (no verdict
    when the formats are not like for like)."""
    rows = []
    for r in results:
        unlike = r.comparison.like_for_like is False
        be = "never" if r.breakeven_volume is None else f"{fmt(r.breakeven_volume)} (10-s units/month)"
        util = "—" if r.utilisation_at_breakeven is None else f"{r.utilisation_at_breakeven:.1%}"
        if unlike:
            be, util = f"{be}, normalised", f"{util}, normalised" if util != "—" else util
        rows.append([Cell(r.inputs.api_label, "simulated" if "(simulated)" in r.inputs.api_label else ""),
                     _comparison_cell(r), Cell(fmt_usd(r.inputs.api_usd_per_10s)),
                     Cell(fmt_usd(r.fixed_usd_per_month)), Cell(be), Cell(util), Cell(r.verdict)])
    return Table("Break-even per API option", ["API", "clips compared", "price per 10 s", "self-host fixed $/month",
                                               "break-even volume", "utilisation needed", "verdict"], rows,
                 "A verdict is given only like for like (same resolution and duration class).")


def breakeven_cost_table(result: BreakEven) -> Table:
    """Monthly cost of both options across volumes (titled as normalised when not like for like)."""
    rows = []
    for r in result.table.itertuples(index=False):
        util = "—" if not np.isfinite(r.utilisation) else f"{r.utilisation:.1%}" + (
            " (over capacity)" if r.over_capacity else "")
        rows.append([Cell(fmt(r.volume_10s_units)), Cell(fmt(r.video_minutes)), Cell(fmt_usd(r.api_usd)),
                     Cell(fmt_usd(r.selfhost_usd)), Cell(r.cheaper, "best" if r.cheaper == "self-host" else ""),
                     Cell(util)])
    title = f"Monthly cost by volume ({result.inputs.api_label})"
    note = ""
    if result.comparison.like_for_like is False:
        title += ": normalised per megapixel-second, NOT like for like"
        note = result.comparison.text
    elif result.comparison.like_for_like is None:
        note = result.comparison.text
    return Table(title, ["volume (10-s units/month)", "video minutes", "API $", "self-host $", "cheaper",
                         "utilisation"], rows, note)


REGRESSION_METHODS = (
    "Methods: video-scope metrics and per-prompt metrics (one value per prompt, e.g. lpips_diversity) compare "
    "per-prompt means, with a paired t-test over the prompts both runs scored (Welch's t-test over prompts when they "
    "do not match); run-level set metrics (FVD) use a z-test from the two recorded 95 % intervals, only at equal "
    "profile, N and reference N; failure and refusal rates use Newcombe's score interval for the difference, its "
    "p-value found by inverting that interval; latency and cost use Welch's t-test on the means per ok generation "
    "(reused results left out); for local backends only when both runs recorded the same hardware, and then on "
    "hardware seconds per 10 s of video (the compute the process used): their wall-clock latency follows the "
    "machine's load and is shown, not tested.")


def regression_sections(reg: Regression) -> list[Section]:
    """Silent-change callouts first, then the verdict table. Every flagged verdict is read off the interval printed
    beside it (and agrees with the Holm-adjusted p printed beside that)."""
    head = Section("Changes since the baseline", callouts=list(reg.callouts))
    drift_callouts, drift_paragraphs = drift_report.headlines(reg)
    head.callouts[0:0] = drift_callouts    # a silent change of output comes first, beside the declared ones
    head.paragraphs.append(f"Baseline: {reg.baseline.name} ({reg.baseline.run_dir}); current: {reg.current.name} "
                           f"({reg.current.run_dir}).")
    if reg.not_compared_reason:
        head.callouts.insert(0, f"Not compared: {reg.not_compared_reason}. Values are shown side by side only.")
    else:
        head.paragraphs.append(
            f"{REGRESSION_METHODS} Correction for testing {reg.n_tests} rows at once: Holm's step-down method at "
            f"family-wise error alpha = {reg.alpha}. Each interval is printed at the confidence its row was decided "
            "at (column 'CI level': 1 − alpha / (number of rows still in play), the same level for every row after "
            "the first one Holm keeps); a row is 'regressed' or 'improved' exactly when that interval excludes 0, "
            "which is exactly when its Holm-adjusted p is below alpha.")
    head.paragraphs += drift_paragraphs
    if reg.hardware_note:
        head.callouts.append(reg.hardware_note)
    counts = reg.rows["verdict"].value_counts()
    flagged = reg.rows[reg.rows["verdict"].isin([REGRESSED, IMPROVED, drift_report.CHANGED])]
    head.paragraphs.append(
        f"Verdicts: {counts.get(REGRESSED, 0)} regressed, {counts.get(IMPROVED, 0)} improved, "
        f"{counts.get(NO_CHANGE, 0)} no significant change, {counts.get(NOT_COMPARED, 0)} not compared, "
        f"{counts.get(NOT_TESTED, 0)} not tested"
        + (f", {counts.get(drift_report.CHANGED, 0)} drift test(s) changed, "
           f"{counts.get(drift_report.NOT_DETECTED, 0)} without change." if reg.drift_checked else ".")
        + ("" if not len(flagged) else " Flagged: " + "; ".join(
            f"{r.label} {r.metric}{'' if r.category == 'all' else f' [{r.category}]'}: {r.verdict}"
            for r in flagged.itertuples(index=False)) + "."))
    if not reg.callouts:
        head.paragraphs.append("No silent changes: backend fingerprints, prompt-set versions and metric profiles "
                               "match, and no result was reused from another run.")
    if reg.only_in_current or reg.only_in_baseline:
        head.paragraphs.append(f"Not compared (present in one run only): current only: "
                               f"{', '.join(reg.only_in_current) or 'none'}; baseline only: "
                               f"{', '.join(reg.only_in_baseline) or 'none'}.")
    rows = []
    df = reg.rows.copy()
    order = {drift_report.CHANGED: 0, REGRESSED: 0, IMPROVED: 1}
    df["_o"] = df["verdict"].map(lambda v: order.get(v, 2))
    df = df.astype(object).where(df.notna(), None)  # NaN → None so text cells never read 'nan'
    for r in df.sort_values(["_o", "backend", "kind", "metric"]).to_dict("records"):
        rows.append(regression_row_cells(r))
    table = Table("Per-metric changes (current − baseline)",
                  ["backend", "metric (↑/↓ better)", "profile", "baseline", "current", "delta [CI]", "CI level",
                   "N base / current", "test", "p (raw)", "p (Holm)", "verdict", "note"], rows,
                  "N counts prompts for per-prompt rows, requests for rates, ok generations for latency and cost.")
    return [head, Section("Regression verdicts", tables=[table])]


def regression_row_cells(r: dict) -> list[Cell]:
    """The cells of one regression row as printed (the property test reads the verdict against these cells)."""
    what = r["metric"] + (f" vs {r['other']}" if r["other"] else "") + (
        f" [{r['category']}]" if r["category"] not in ("all", None) else "")
    hib = r["higher_is_better"]
    direction = "" if hib is None else ("↑" if hib else "↓")
    ci = f" [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]" if r["ci_low"] is not None else ""
    level = "—" if r["ci_level"] is None else f"{100 * r['ci_level']:.4g} %"
    p = "—" if r["p_value"] is None else f"{r['p_value']:.3g}"
    p_adj = "—" if r["p_adjusted"] is None else f"{r['p_adjusted']:.3g}"
    if r.get("kind") == drift_report.DRIFT_KIND and r.get("threshold") is not None:
        # a one-sided permutation test: the statistic and the threshold it must exceed at the row's level
        ci = f" (changed above {fmt(r['threshold'])})"
    css = r["verdict"] if r["verdict"] in (REGRESSED, IMPROVED) else "regressed" if r["verdict"] == \
        drift_report.CHANGED else ""
    n = (f"{r['n_baseline'] if r['n_baseline'] is not None else '—'} / "
         f"{r['n_current'] if r['n_current'] is not None else '—'}"
         + (f" ({int(r['n_pairs'])} paired)" if r["n_pairs"] else ""))
    return [Cell(r["label"], "simulated" if r["simulated"] else ""), Cell(f"{what} {direction}"),
            Cell(r["profile"] or ""), Cell(fmt(r["baseline"])), Cell(fmt(r["current"])), Cell(fmt(r["delta"]) + ci),
            Cell(level), Cell(n), Cell(r["test"] or ""), Cell(p), Cell(p_adj), Cell(r["verdict"], css),
            Cell(r["note"] or "")]


def reuse_sentence(run: RunData) -> str:
    """One sentence naming every result this run reused: how many, of which backend, from which run folder."""
    parts = []
    for b in run.backends_with_generations():
        for source, n in sorted(run.reused(b).items()):
            parts.append(f"{n} {b} result(s) from {source}")
    total = sum(run.reused().values())
    return (f"{total} of {len(run.generations)} result(s) were reused from earlier runs, not generated by this run: "
            + "; ".join(parts) + ". Their videos, latency and cost are those runs' measurements; their cost is not "
            "counted as this run's spend.")


def build_sections(run: RunData, regression: Regression | None = None, seed: int = 0) -> tuple[list[Section], dict]:
    """All report sections, plus the DataFrames behind them ({'quality', 'operations', 'breakeven', 'regression'})."""
    quality = tables.quality_table(run, seed=seed)
    ops = tables.operations_table(run)
    frames: dict[str, pd.DataFrame] = {"quality": quality, "operations": ops}
    sections: list[Section] = []
    if regression is not None:
        sections += regression_sections(regression)
        frames["regression"] = regression.rows
    suites = ", ".join(f"{k} {v}".strip() for k, v in run.suite_versions().items()) or "unknown"
    meta = Section("Run", paragraphs=[
        f"Run folder: {run.run_dir}. Prompt set: {suites}. Backends: "
        f"{', '.join(run.label(b) for b in run.backends()) or 'none'}. Generations: {len(run.generations)}; "
        f"score records: {len(run.scores)}.",
        "Rows marked (simulated) come from fake vendor servers: their quality, latency and cost are not real."])
    reused = run.reused()
    if reused:
        meta.callouts.append(reuse_sentence(run))
    for b in run.requested_backends():
        if b not in run.backends_with_generations() or run.skipped_backends().get(b) or run.over_budget().get(b):
            meta.paragraphs.append(f"Backend {run.label(b)}: {missing_backend_text(run, b)}.")
    if run.reference_generations:
        meta.paragraphs.append(f"{run.reference_generations} FVD reference generation(s) are not benchmark output and "
                               "are left out of the tables.")
    for key in ("created", "seed", "samples", "harness", "hardware"):
        if key in run.meta:
            value = run.meta[key]
            text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
            meta.paragraphs.append(f"{key}: {text}")
    for backend, n in sorted(run.superseded.items()):
        meta.callouts.append(f"{n} {backend} generation(s) made under an earlier fingerprint of {backend} (other "
                             "weights or settings) are kept in the run folder but left out of this report.")
    if run.skipped_lines:
        meta.callouts.append(f"{run.skipped_lines} malformed line(s) in the run's JSONL files were skipped.")
    sections.append(meta)
    probe = drift_report.probe_section(run)
    if probe is not None:
        sections.append(probe)
    q = Section("Quality by prompt category", tables=quality_tables(quality, run))
    if not len(quality):
        q.paragraphs.append("No score records in this run (scores.jsonl is missing or empty).")
    sections.append(q)
    human, human_frames = human_preference_section(run, quality, seed=seed)
    sections.append(human)
    frames.update(human_frames)
    billed_line = may_have_billed_line(ops)
    sections.append(Section("Reliability, cost and latency", callouts=[billed_line] if billed_line else [],
                            tables=operations_tables(ops, run.stage_names, run)))
    labels = {b: run.label(b) for b in run.backends()}
    figs = Section("Plots")
    for name, png, alt in (
            ("quality_vs_cost", plots.quality_vs_cost(quality, ops), "Quality vs cost per 10 s"),
            ("latency", plots.latency(run.generations, labels, run.stage_names), "Latency distributions per backend"),
            ("per_category", plots.per_category(quality), "Metrics by prompt category")):
        if png is not None:
            figs.figures.append(Plot(name, png, alt))
    be_results, be_notes = breakeven_from_run(run, ops)
    be = Section("Break-even: API vs self-hosting", paragraphs=be_notes)
    if be_results:
        be.tables.append(breakeven_summary_table(be_results))
        be.preformatted.append("\n\n".join("\n".join(r.arithmetic) + "\n=> " + r.verdict for r in be_results))
        be.tables.append(breakeven_cost_table(be_results[0]))
        png = plots.breakeven(be_results)
        if png is not None:
            be.figures.append(Plot("breakeven", png, "Break-even curve"))
        frames["breakeven"] = pd.concat([r.table.assign(api=r.inputs.api_label) for r in be_results],
                                        ignore_index=True)
    sections += [figs, be]
    return sections, frames


def _csv_quality(quality: pd.DataFrame) -> pd.DataFrame:
    df = quality.copy()
    df["display"] = [_quality_cell(r).text for _, r in df.iterrows()]
    return df


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, compare: str | Path | None = None,
                 alpha: float = 0.05, seed: int = 0, index_path: str | Path | None = None,
                 gallery: GalleryOptions | None = None, drift: Any = None) -> Path:
    """Write the comparison report of `run_dir` (and the regression against `compare`, if given).

    Writes into `out_dir` (default `reports/<run name>/`): report.html (self-contained), report.md, plots/*.png and
    quality.csv, operations.csv, breakeven.csv, regression.csv (those that apply), and the video gallery's files
    under gallery/ (`gallery`: its options, default `GalleryOptions()`). Returns the path of report.html.
    `run_dir` and `compare` are run folders, or run names/ids in the SQLite index (`index_path`, default: the
    store's index beside the folder). Raises `RunFolderError` (a UserError) when a run cannot be found. `drift`: drift
    evidence ({backend: `drift.evidence.BackendEvidence`}, or a callable (run, baseline) -> that) for the comparison's
    drift rows and headline (`report.drift`); None: no drift rows.
    """
    run = load_run(run_dir, index_path)
    regression = None
    if compare is not None:
        baseline = load_run(compare, index_path)
        evidence = drift(run, baseline) if callable(drift) else drift
        regression = compare_runs(run, baseline, alpha=alpha, seed=seed, drift=evidence)
    out = Path(out_dir) if out_dir is not None else default_out_dir(run)
    out.mkdir(parents=True, exist_ok=True)
    sections, frames = build_sections(run, regression, seed=seed)
    gallery = gallery or GalleryOptions()
    if gallery.enabled:
        sections.append(gallery_section(run, out, gallery))
    title = f"vbench-suite report: {run.name}" + (f" vs {regression.baseline.name}" if regression else "")
    sections.append(Section("About", paragraphs=[f"Written by vbench-suite {__version__}. Tables: "
                                                 + ", ".join(f"{k}.csv" for k in frames) + "."]))
    (out / f"{REPORT_STEM}.md").write_text(to_markdown(title, sections, out), encoding="utf-8")
    html_path = out / f"{REPORT_STEM}.html"
    html_path.write_text(to_html(title, sections), encoding="utf-8")
    for name, df in frames.items():
        (_csv_quality(df) if name == "quality" else df).to_csv(out / f"{name}.csv", index=False)
    return html_path


def write_breakeven(result: BreakEven, out_dir: str | Path) -> Path:
    """Write breakeven.md, .html, .csv and plots/breakeven.png into `out_dir`; return the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sec = Section("Break-even", paragraphs=[result.verdict], preformatted=["\n".join(result.arithmetic)],
                  tables=[breakeven_cost_table(result)])
    png = plots.breakeven([result])
    if png is not None:
        sec.figures.append(Plot("breakeven", png, "Break-even curve"))
    title = f"Break-even: {result.inputs.api_label} vs self-hosting"
    (out / "breakeven.md").write_text(to_markdown(title, [sec], out), encoding="utf-8")
    html_path = out / "breakeven.html"
    html_path.write_text(to_html(title, [sec]), encoding="utf-8")
    result.table.to_csv(out / "breakeven.csv", index=False)
    return html_path
