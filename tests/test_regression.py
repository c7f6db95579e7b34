"""Run-to-run regression: verdicts follow the records' direction, FVD only at matched N and profile, silent changes."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_report_fixtures import LOCAL, REMOTE, SIM, RunSpec, make_run
from vbench_suite.report.build import write_report
from vbench_suite.report.load import load_run
from vbench_suite.report.regression import IMPROVED, NO_CHANGE, NOT_COMPARED, REGRESSED, compare_runs


def _compare(tmp_path: Path, current: RunSpec, baseline: RunSpec | None = None):
    base = load_run(make_run(tmp_path / "base", baseline or RunSpec(name="q1")))
    cur = load_run(make_run(tmp_path / "cur", current))
    return compare_runs(cur, base)


def _row(reg, backend: str, metric: str, category: str = "all"):
    rows = reg.rows[(reg.rows["backend"] == backend) & (reg.rows["metric"] == metric)
                    & (reg.rows["category"] == category)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_identical_runs_show_no_change(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2"))
    assert reg.callouts == []
    assert REGRESSED not in set(reg.rows["verdict"]) and IMPROVED not in set(reg.rows["verdict"])
    assert _row(reg, REMOTE, "lpips_ref")["verdict"] == NO_CHANGE
    assert _row(reg, REMOTE, "fvd")["verdict"] == NO_CHANGE


def test_worse_lpips_is_a_regression_with_a_paired_test(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", lpips_shift={REMOTE: 0.1}))
    row = _row(reg, REMOTE, "lpips_ref")
    assert row["verdict"] == REGRESSED
    assert row["delta"] == pytest.approx(0.1) and row["ci_low"] == pytest.approx(0.1)
    assert row["n_pairs"] == 15 and "paired t-test" in row["test"] and row["p_value"] < 0.05
    assert _row(reg, LOCAL, "lpips_ref")["verdict"] == NO_CHANGE
    assert _row(reg, SIM, "lpips_ref")["verdict"] == NO_CHANGE


def test_verdict_follows_the_declared_direction(tmp_path: Path) -> None:
    better = _compare(tmp_path / "a", RunSpec(name="q2", lpips_shift={REMOTE: -0.1}))
    assert _row(better, REMOTE, "lpips_ref")["verdict"] == IMPROVED
    flipped = _compare(tmp_path / "b", RunSpec(name="q2", lpips_shift={REMOTE: 0.1}, lpips_higher_is_better=True),
                       RunSpec(name="q1", lpips_higher_is_better=True))
    assert _row(flipped, REMOTE, "lpips_ref")["verdict"] == IMPROVED


def test_noise_without_a_net_change_is_not_significant(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", lpips_jitter=0.05))
    row = _row(reg, LOCAL, "lpips_ref")
    assert row["verdict"] == NO_CHANGE and row["p_value"] > 0.05
    assert row["ci_low"] < 0 < row["ci_high"]


def test_unmatched_prompts_fall_back_to_an_unpaired_test(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", prompt_suffix="-v2", lpips_shift={REMOTE: 0.1}))
    row = _row(reg, REMOTE, "lpips_ref")
    assert "Welch" in row["test"] and row["n_pairs"] == 0 and row["verdict"] == REGRESSED


def test_fvd_at_different_n_gets_no_verdict(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", fvd_n=32, fvd_value={LOCAL: 300.0, REMOTE: 900.0, SIM: 200.0}))
    row = _row(reg, REMOTE, "fvd")
    assert row["verdict"] == NOT_COMPARED and "N differs" in row["note"]
    assert row["n_baseline"] == 16 and row["n_current"] == 32


def test_fvd_at_matched_n_is_tested(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", fvd_value={LOCAL: 300.0, REMOTE: 250.0, SIM: 205.0}))
    assert _row(reg, REMOTE, "fvd")["verdict"] == REGRESSED  # +100 with ±20 CIs, lower is better
    assert _row(reg, SIM, "fvd")["verdict"] == NO_CHANGE  # +5 inside the noise


def test_profile_change_is_called_out_and_not_compared(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", fvd_profile="fvd-i3d-tf-224-32f", lpips_profile="lpips-vgg-v0.1"))
    assert any("'fvd' profile changed" in c for c in reg.callouts)
    assert any("'lpips_ref' profile changed" in c for c in reg.callouts)
    assert _row(reg, REMOTE, "fvd")["verdict"] == NOT_COMPARED
    assert _row(reg, REMOTE, "lpips_ref")["verdict"] == NOT_COMPARED


def test_fingerprint_and_prompt_set_changes_are_called_out(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", remote_version="2026-04-01", suite_version="1.1"))
    text = "\n".join(reg.callouts)
    assert "Backend 'runway' fingerprint changed: gen4_turbo@2026-01-01 → gen4_turbo@2026-04-01" in text
    assert "Prompt set 'smoke' version changed: 1.0 → 1.1" in text
    assert "dit-local" not in text


def test_failure_rate_regression_and_backends_in_one_run_only(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", failed_sim=tuple(range(12)), backends=(LOCAL, SIM)))
    assert _row(reg, SIM, "failure rate")["verdict"] == REGRESSED  # 12/16 vs 2/16
    assert reg.only_in_baseline == [REMOTE] and REMOTE not in set(reg.rows["backend"])


def test_report_with_compare_puts_silent_changes_first(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", RunSpec(name="q1"))
    cur = make_run(tmp_path / "cur", RunSpec(name="q2", remote_version="2026-04-01", lpips_shift={REMOTE: 0.1},
                                             fvd_n=32))
    md = write_report(cur, tmp_path / "out", compare=base).with_suffix(".md").read_text()
    assert md.index("fingerprint changed") < md.index("## Run")
    assert md.index("fingerprint changed") < md.index("## Regression verdicts")
    assert "| runway | lpips_ref ↓" in md and "| regressed |" in md
    assert "N differs (baseline n=16" in md
    assert (tmp_path / "out" / "regression.csv").is_file()
