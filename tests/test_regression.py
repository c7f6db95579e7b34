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


# --- issue 15 item 6: one method per quantity, verdicts read off the printed interval, Holm, what is compared -------

import numpy as np  # noqa: E402

from test_report_fixtures import Truth, false_alarm_rate, random_comparison  # noqa: E402
from vbench_suite.report import stats  # noqa: E402
from vbench_suite.report.build import regression_row_cells  # noqa: E402
from vbench_suite.report.regression import _decide  # noqa: E402


def _printed_bounds(text: str) -> tuple[float, float]:
    """The interval as printed in the 'delta [CI]' cell (after the delta)."""
    inside = text[text.index("[") + 1:text.index("]")]
    lo, hi = (float(x.replace(",", "").replace("−", "-")) for x in inside.split(", "))
    return lo, hi


def _check_rows_agree(rows: list[dict], alpha: float) -> int:
    """Every tested row: the verdict printed agrees with the interval printed beside it and with the Holm p."""
    checked = 0
    for r in rows:
        if r["verdict"] not in (REGRESSED, IMPROVED, NO_CHANGE):
            continue
        cells = regression_row_cells(r)
        lo, hi = _printed_bounds(cells[5].text)
        excludes = lo > 0 or hi < 0
        assert (cells[11].text in (REGRESSED, IMPROVED)) == excludes, (cells[5].text, cells[11].text)
        assert (r["p_adjusted"] < alpha) == excludes, (r["p_adjusted"], cells[5].text)
        if excludes:  # the side of the interval says which way, by the metric's direction
            assert cells[11].text == (IMPROVED if (lo > 0) == bool(r["higher_is_better"]) else REGRESSED)
        assert r["p_value"] <= r["p_adjusted"] + 1e-12
        checked += 1
    return checked


def _random_test(rng: np.random.Generator) -> stats.DeltaTest | None:
    kind = rng.integers(0, 4)
    n = int(rng.integers(2, 30))
    effect = float(rng.choice([0.0, rng.normal(0, 0.5)]))
    if kind == 0:
        return stats.paired_t(rng.normal(effect, rng.uniform(0.05, 1.0), n))
    if kind == 1:
        return stats.welch_t(rng.normal(effect, 1.0, n), rng.normal(0.0, rng.uniform(0.1, 2.0), int(rng.integers(2, 30))))
    if kind == 2:
        w1, w2 = rng.uniform(1, 50, 2)
        v = float(rng.normal(300, 40))
        return stats.normal_from_cis(v, v - w1, v + w1, 300.0, 300.0 - w2, 300.0 + w2)
    nb = int(rng.integers(1, 60))
    return stats.newcombe_test(int(rng.integers(0, n + 1)), n, int(rng.integers(0, nb + 1)), nb)


def test_property_verdict_never_disagrees_with_the_printed_interval() -> None:
    rng = np.random.default_rng(7)
    checked = flagged = 0
    for _ in range(300):
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        rows = []
        for i in range(int(rng.integers(1, 25))):
            rows.append({"backend": "b", "label": "b", "simulated": False, "metric": f"m{i}", "other": "",
                         "category": "all", "profile": "", "higher_is_better": bool(rng.integers(0, 2)),
                         "baseline": 0.0, "current": 0.0, "delta": None, "ci_low": None, "ci_high": None,
                         "ci_level": None, "n_baseline": 5, "n_current": 5, "n_pairs": 0, "test": None,
                         "p_value": None, "p_adjusted": None, "verdict": None, "note": "",
                         "_test": _random_test(rng)})
        _decide(rows, alpha)
        checked += _check_rows_agree(rows, alpha)
        flagged += sum(r["verdict"] in (REGRESSED, IMPROVED) for r in rows)
    assert checked > 2000 and 100 < flagged < checked  # both outcomes were exercised


def test_property_holds_end_to_end_on_random_runs(tmp_path: Path) -> None:
    for seed in range(6):
        truth = Truth(lpips_shift={REMOTE: 0.03 * seed}, shapes_shift=-0.05 * seed)
        reg = random_comparison(tmp_path, seed, truth)
        assert _check_rows_agree(reg.rows.astype(object).where(reg.rows.notna(), None).to_dict("records"),
                                 reg.alpha) >= 10


def test_each_interval_method_inverts_its_own_test() -> None:
    """p < a exactly when the (1 − a) interval excludes 0, for every method, at several levels."""
    rng = np.random.default_rng(3)
    for _ in range(400):
        test = _random_test(rng)
        if test is None:
            continue
        for a in (0.001, 0.01, 0.05, 0.2):
            lo, hi = test.interval(a)
            if abs(test.p_value - a) > 1e-9:
                assert (lo > 0 or hi < 0) == (test.p_value < a), (test, a, lo, hi)


def test_holm_levels_match_the_textbook_procedure() -> None:
    adjusted, levels = stats.holm_levels([0.01, 0.04, 0.03, 0.005], 0.05)
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06 -> stop; Holm adjusted p are running maxima
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert levels == pytest.approx([0.05 / 3, 0.05 / 2, 0.05 / 2, 0.05 / 4])


def _shapes_runs(tmp_path: Path, baseline: list[float], current: list[float]):
    """Two runs of the local backend only whose shapes adherence per prompt is given (the issue's steps=4 case)."""
    import json

    def write(name: str, values: list[float]) -> Path:
        run = make_run(tmp_path / name, RunSpec(name=name, backends=(LOCAL,)))
        lines = [json.loads(x) for x in (run / "scores.jsonl").read_text().splitlines()]
        shapes = [x for x in lines if x["metric"] == "shapes_adherence"]
        for rec, v in zip(shapes, values, strict=True):
            rec["value"] = v
        (run / "scores.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        return run

    return compare_runs(load_run(write("steps4", current)), load_run(write("steps20", baseline)))


def test_issue_repro_shapes_adherence_drop_is_a_regression(tmp_path: Path) -> None:
    """Issue 15: steps=4 vs 20, shapes adherence 0.44 -> 0.19, delta CI [-0.44, -0.06] was 'no significant change'."""
    base = [0.75, 0.5, 0.25, 0.5, 0.25, 0.5, 0.75, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 0.5, 0.25, 0.5]
    cur = [0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.5, 0.0, 0.25, 0.25, 0.0, 0.25, 0.25, 0.0, 0.25, 0.25]
    reg = _shapes_runs(tmp_path, base, cur)
    row = _row(reg, LOCAL, "shapes_adherence")
    assert row["baseline"] == pytest.approx(np.mean(base)) and row["current"] == pytest.approx(np.mean(cur))
    assert row["ci_high"] < 0 and row["verdict"] == REGRESSED and row["p_adjusted"] < 0.05
    assert "paired t-test" in row["test"] and row["n_pairs"] == 16


def test_different_suites_are_not_compared(tmp_path: Path) -> None:
    reg = _compare(tmp_path, RunSpec(name="q2", suite_name="standard", lpips_shift={REMOTE: 0.2}))
    assert "different prompt sets" in reg.not_compared_reason
    assert set(reg.rows["verdict"]) <= {NOT_COMPARED}
    assert reg.rows["ci_low"].isna().all() and reg.rows["p_value"].isna().all()
    md = write_report(tmp_path / "cur", tmp_path / "out", compare=tmp_path / "base").with_suffix(".md").read_text()
    assert "Not compared: the runs used different prompt sets" in md and "| regressed |" not in md


def test_local_latency_and_compute_need_matching_hardware(tmp_path: Path) -> None:
    reg = _compare(tmp_path / "a", RunSpec(name="q2", hardware={"cpu": "64 cores"}))
    lat = _row(reg, LOCAL, "latency total_s (mean, wall clock)")
    assert lat["verdict"] == NOT_COMPARED and "hardware differs" in lat["note"] and "64 cores" in lat["note"]
    assert _row(reg, LOCAL, "hardware s per 10 s of video (mean)")["verdict"] == NOT_COMPARED
    assert _row(reg, REMOTE, "latency total_s (mean)")["verdict"] != NOT_COMPARED  # remote: network + vendor
    assert "Local latency and compute (dit-local) not compared" in reg.hardware_note
    unknown = _compare(tmp_path / "b", RunSpec(name="q2", hardware=None))
    assert "did not record its hardware" in _row(unknown, LOCAL, "latency total_s (mean, wall clock)")["note"]
    same = _compare(tmp_path / "c", RunSpec(name="q2", hardware={"cpu": "2 cores", "python": "3.12"}))
    assert _row(same, LOCAL, "hardware s per 10 s of video (mean)")["verdict"] == NO_CHANGE
    assert same.hardware_note == ""


def test_identical_inputs_give_zero_deltas_and_no_repeated_rows(tmp_path: Path) -> None:
    """Issue 15 item 7: per-prompt set records (lpips_diversity, also for reference-shapes) paired by prompt."""
    reg = _compare(tmp_path, RunSpec(name="q2", diversity=True), RunSpec(name="q1", diversity=True))
    rows = reg.rows
    assert not rows.duplicated(subset=["backend", "metric", "profile", "other", "category"]).any()
    tested = rows[~rows["verdict"].isin([NOT_COMPARED, "not tested"])]
    assert (rows["delta"].dropna().astype(float) == 0).all()
    assert (tested["delta"].astype(float) == 0).all() and set(tested["verdict"]) == {NO_CHANGE}
    div = _row(reg, "reference-shapes", "lpips_diversity")
    assert div["delta"] == 0 and div["ci_low"] == 0 == div["ci_high"] and div["n_pairs"] == 16


def test_reused_results_are_named_and_not_compared_as_new_measurements(tmp_path: Path) -> None:
    base = make_run(tmp_path / "base", RunSpec(name="q1"))
    cur = make_run(tmp_path / "cur", RunSpec(name="q2", reused_from={REMOTE: str(base)}))
    reg = compare_runs(load_run(cur), load_run(base))
    assert any(f"16 of 16 current 'runway' result(s) were reused from earlier runs (16 from {base})" in c
               for c in reg.callouts)
    ops = reg.rows[(reg.rows["backend"] == REMOTE) & (reg.rows["kind"] == "operations")]
    assert len(ops) == 1 and ops.iloc[0]["verdict"] == NOT_COMPARED and "reused" in ops.iloc[0]["note"]
    md = write_report(cur, tmp_path / "out", compare=base).with_suffix(".md").read_text()
    assert "No silent changes" not in md and "16 of 48 result(s) were reused from earlier runs" in md


def test_a_planted_regression_is_flagged_for_that_backend_and_metric_only(tmp_path: Path) -> None:
    reg = random_comparison(tmp_path, 1, Truth(lpips_shift={REMOTE: 0.08}))
    flagged = reg.rows[reg.rows["verdict"].isin([REGRESSED, IMPROVED])]
    assert [(r.backend, r.metric, r.verdict) for r in flagged.itertuples()] == [(REMOTE, "lpips_ref", REGRESSED)]


@pytest.mark.slow
def test_false_alarm_rate_of_null_comparisons_is_at_most_alpha(tmp_path: Path) -> None:
    """Null scenarios (same distribution, different seed): the share of comparisons with any flagged row (Holm
    controls the family-wise error) must be within alpha plus a one-sided 99 % binomial margin."""
    from scipy.stats import binom

    alpha, n = 0.05, 60
    alarms, total = false_alarm_rate(tmp_path, n, alpha)
    limit = int(binom.ppf(0.99, total, alpha))
    print(f"false-alarm rate over {total} null comparisons: {alarms}/{total} = {alarms / total:.3f} "
          f"(alpha {alpha}, allowed up to {limit})")
    assert alarms <= limit


def test_seed_only_comparison_under_machine_load_is_not_flagged(tmp_path: Path) -> None:
    """Issue 15: a seed-only comparison flagged local latency and cost because the machine was busier. Wall time
    doubles under load while the compute the process used (hardware_s) stays: nothing is flagged."""
    import json

    base = make_run(tmp_path / "base", RunSpec(name="q1"))
    cur = make_run(tmp_path / "cur", RunSpec(name="q2"))
    path = cur / "generations.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for rec in lines:
        if rec["backend"] == LOCAL:
            lat = rec["result"]["latency"]
            lat["total_s"] *= 2.0
            lat["generating_s"] *= 2.0
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    reg = compare_runs(load_run(cur), load_run(base))
    wall = _row(reg, LOCAL, "latency total_s (mean, wall clock)")
    assert wall["verdict"] == "not tested" and "machine's load" in wall["note"] and wall["delta"] > 30
    assert _row(reg, LOCAL, "hardware s per 10 s of video (mean)")["verdict"] == NO_CHANGE
    assert not reg.rows["verdict"].isin([REGRESSED, IMPROVED]).any()
    # the compute itself doubling (e.g. more denoising steps) is a regression
    for rec in lines:
        if rec["backend"] == LOCAL:
            rec["result"]["hardware_s"] *= 2.0 + 0.01 * len(rec["prompt_id"])
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    reg = compare_runs(load_run(cur), load_run(base))
    assert _row(reg, LOCAL, "hardware s per 10 s of video (mean)")["verdict"] == REGRESSED


def test_one_price_never_differs_by_float_noise() -> None:
    """Found by the null scenarios (benchmarks/bench_false_alarms.py): the same price per second gives cost per 10 s
    of 0.4 in one run and 0.39999999999999997 in the other (0.1 + 0.1 vs 0.3 - 0.1 on the way); a Welch test of two
    constant sides one ulp apart has se = 0 and p = 0, so 'cost regressed by 5.6e-17 USD' was flagged."""
    import pandas as pd

    from vbench_suite.report.regression import _per_generation

    current = pd.DataFrame({"cost_usd": [0.1 + 0.1] * 6, "video_seconds": [5.0] * 6})
    baseline = pd.DataFrame({"cost_usd": [0.3 - 0.1] * 5, "video_seconds": [5.0] * 5})
    assert current["cost_usd"][0] != baseline["cost_usd"][0]  # the inputs really differ in the last bit
    test = stats.welch_t(_per_generation(current, "cost_usd", True), _per_generation(baseline, "cost_usd", True))
    assert test is not None and test.delta == 0.0 and test.p_value == 1.0
    real = pd.DataFrame({"cost_usd": [0.25] * 6, "video_seconds": [5.0] * 6})  # a real price change still shows
    changed = stats.welch_t(_per_generation(real, "cost_usd", True), _per_generation(baseline, "cost_usd", True))
    assert changed is not None and changed.delta == pytest.approx(0.1) and changed.p_value == 0.0


def test_simulated_latency_is_shown_not_tested(tmp_path: Path) -> None:
    """Found by the null scenarios: a simulated vendor's latency is the fake's encoding time on this machine (an
    unchanged vendor went 12.3 s -> 0.7 s because the second run found its files cached) and was flagged. It is
    shown with its delta but not tested; a real remote vendor's latency still is."""
    from vbench_suite.report.regression import NOT_TESTED, SIMULATED_LATENCY_NOTE

    reg = _compare(tmp_path, RunSpec(name="q2"))
    sim = _row(reg, SIM, "latency total_s (mean)")
    assert sim["verdict"] == NOT_TESTED and sim["note"] == SIMULATED_LATENCY_NOTE and sim["simulated"]
    assert sim["delta"] is not None
    assert sim["p_value"] is None or np.isnan(sim["p_value"])
    assert _row(reg, REMOTE, "latency total_s (mean)")["verdict"] == NO_CHANGE
    assert _row(reg, SIM, "cost per 10 s (mean, USD)")["verdict"] == NO_CHANGE  # cost is the configured price
