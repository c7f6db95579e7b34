"""One drift check between two runs, as `canary` and `drift` run it: gather the evidence, compare (the regression
comparison with its drift rows, one Holm family), write the report, and decide the exit code.

Exit code contract (docs/drift.md): `DRIFT_EXIT_CODE` (3) when, for a backend whose declared model is the same in
both runs, any row of the comparison other than latency is flagged (its output changed, or its quality, failure or
refusal rate, or cost shifted); 0 otherwise. A latency shift is printed and reported but does not set 3: a vendor's
queue follows its load from hour to hour, which is no change of the model. A backend whose declared model changed
is reported, not counted as drift.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DRIFT_EXIT_CODE = 3
"""Exit status of `canary` and `drift` when drift was found (2 stays the user-error status, 0 nothing drifted)."""
FLAGGED = ("regressed", "improved", "changed")
NOT_DRIFT_PREFIXES = ("latency",)
"""Rows (by metric name) that are reported when flagged but never make a check exit 3."""


@dataclass
class DriftOutcome:
    """What one check found."""

    regression: Any
    """The `report.regression.Regression` (drift rows included)."""
    drifted: dict[str, list[str]] = field(default_factory=dict)
    """backend (declared model unchanged) -> its flagged rows, as 'metric: verdict' (latency rows aside)."""
    shifted: dict[str, list[str]] = field(default_factory=dict)
    """backend -> its flagged latency rows (reported, not drift)."""
    lines: list[str] = field(default_factory=list)
    """What to print: headline sentences, flagged rows, declared changes."""
    report: Path | None = None

    @property
    def exit_code(self) -> int:
        return DRIFT_EXIT_CODE if self.drifted else 0


def gather(current: Any, baseline: Any, backends: Iterable[str] | None = None) -> dict[str, Any] | None:
    """Drift evidence of the two loaded runs, or None (and a warning) when LPIPS or I3D cannot run here."""
    from vbench_suite.drift.evidence import collect_evidence
    from vbench_suite.errors import MetricUnavailable

    try:
        return collect_evidence(current, baseline, backends, on_progress=lambda m: log.info("drift evidence: %s", m))
    except MetricUnavailable as exc:
        log.warning("drift tests skipped: %s", exc)
        return None


def check(current_ref: str | Path, baseline_ref: str | Path, *, backends: Iterable[str] | None = None,
          alpha: float = 0.05, seed: int = 0, index_path: Path | None = None, out_dir: Path | None = None,
          write: bool = True) -> DriftOutcome:
    """Compare `current_ref` with `baseline_ref` (run folders, or names/ids in the index) and decide."""
    from vbench_suite.report.build import write_report
    from vbench_suite.drift.evidence import fingerprint_set
    from vbench_suite.report.drift import headlines
    from vbench_suite.report.load import load_run
    from vbench_suite.report.regression import compare_runs

    current, baseline = load_run(current_ref, index_path), load_run(baseline_ref, index_path)
    wanted = list(backends) if backends is not None else None
    evidence = gather(current, baseline, wanted)
    reg = compare_runs(current, baseline, alpha=alpha, seed=seed, drift=evidence)
    outcome = DriftOutcome(reg)
    rows = reg.rows
    common = sorted(set(current.backends()) & set(baseline.backends()))
    for backend in (b for b in common if fingerprint_set(current, b) == fingerprint_set(baseline, b)):
        if wanted is not None and backend not in wanted:
            continue
        mine = rows[(rows["backend"] == backend) & rows["verdict"].isin(FLAGGED)]
        for m, c, v in zip(mine["metric"], mine["category"], mine["verdict"]):
            target = outcome.shifted if str(m).startswith(NOT_DRIFT_PREFIXES) else outcome.drifted
            target.setdefault(backend, []).append(f"{m}{'' if c in ('all', None) else f' [{c}]'}: {v}")
    callouts, paragraphs = headlines(reg)
    outcome.lines += callouts + paragraphs
    for backend, flagged in sorted(outcome.drifted.items()):
        outcome.lines.append(f"{backend}: flagged rows: " + "; ".join(flagged))
    for backend, flagged in sorted(outcome.shifted.items()):
        outcome.lines.append(f"{backend}: latency shifted (reported, not counted as drift): " + "; ".join(flagged))
    outcome.lines += [c for c in reg.callouts if "fingerprint changed" in c]
    if reg.not_compared_reason:
        outcome.lines.append(f"not compared: {reg.not_compared_reason}")
    if write:
        outcome.report = write_report(current_ref, out_dir, compare=baseline_ref, alpha=alpha, seed=seed,
                                      index_path=index_path, drift=evidence)
    return outcome
