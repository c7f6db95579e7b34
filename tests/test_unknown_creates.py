"""Creates whose outcome is unknown (issue 19 item 3): a create whose answer was lost may have made and billed a job.
Such requests are shown apart from failures (own column in summary.md, the terminal and the report), left out of the
failure rate's numerator and denominator, carry where to check in the vendor's dashboard, their upper estimates add up
to a "may have been billed" line, and the budget cap counts them as spent."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vbench_suite.backends.remote.runway import RunwayBackend
from vbench_suite.cli import main
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.report.build import OUTCOME_UNKNOWN_HEADER, may_have_billed_line, write_report
from vbench_suite.report.load import CREATE_OUTCOME_UNKNOWN, load_run
from vbench_suite.report.render import fmt_usd
from vbench_suite.report.tables import operations_table
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.runner.generate import CREATE_OUTCOME_UNKNOWN as RUNNER_CODE
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.types import GenerationRequest

FAST = FakeConfig(queue_s=0.01, run_s=0.03, throttle_s=0.15, retry_after_s=0.01)
RUNWAY_OPTIONS = dict(poll_interval_s=0.005, job_deadline_s=10.0, retry_base_delay_s=0.005, max_retry_after_s=0.02)
LOST = " [fault:drop_after_create]"
"""Marker that makes the fake accept the create and then drop the connection before answering."""


def write_suite(path: Path, lost: list[bool]) -> Path:
    lines = ["name: unknown-suite", "version: \"1\"", "description: lost creates", "defaults:", "  duration_s: 5.0",
             "  fps: 8", "  resolution: [1280, 720]", "prompts:"]
    for i, is_lost in enumerate(lost):
        lines += [f"  - id: p{i}", f"    text: a red circle moves left number {i}{LOST if is_lost else ''}",
                  "    category: motion"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", "sk-TESTSECRET-runway")
    monkeypatch.delenv("VBENCH_RUNWAY_BASE_URL", raising=False)


def _estimate(record: dict) -> float:
    request = GenerationRequest.from_dict(record["request"])
    return RunwayBackend(base_url="http://127.0.0.1:1").estimate_cost_usd(request)


def _unknown(folder: RunFolder) -> list[dict]:
    return [g for g in folder.generations().values()
            if (g["result"].get("info") or {}).get("failure_code") == CREATE_OUTCOME_UNKNOWN]


def test_the_report_and_runner_agree_on_the_failure_code() -> None:
    assert CREATE_OUTCOME_UNKNOWN == RUNNER_CODE


def test_unknown_creates_are_shown_apart_with_their_possible_cost_and_where_to_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = write_suite(tmp_path / "suite.yaml", [False, True, False, True, False])
    out = tmp_path / "runs" / "lost"
    with FakeVendors(FAST) as fake:
        code = main(["run", "--suite", str(suite), "--backend", "runway", "--out", str(out), "--no-score",
                     "--no-report", "--no-progress", "--option", f"runway.base_url={fake.base_url('runway')}",
                     *[a for k, v in RUNWAY_OPTIONS.items() for a in ("--option", f"runway.{k}={v}")]])
        assert code == 0
        assert len(fake.jobs()) == 5  # the vendor did make the two jobs whose answers were lost
    terminal = capsys.readouterr().out
    folder = RunFolder(out)
    lost = _unknown(folder)
    assert sorted(g["prompt_id"] for g in lost) == ["p1", "p3"]
    estimates = [_estimate(g) for g in lost]
    assert all(e > 0 for e in estimates)
    for g, e in zip(lost, estimates):
        assert g["may_have_billed_usd"] == pytest.approx(e)  # stored when the record was written
        assert g["dashboard_hint"] == RunwayBackend.dashboard_hint
    total = sum(estimates)

    run = load_run(out)
    (row,) = operations_table(run).to_dict("records")
    counts = (row["n_requests"], row["n_ok"], row["n_failed"], row["n_outcome_unknown"], row["n_known"])
    assert counts == (5, 3, 0, 2, 3)
    assert row["failure_rate"] == 0.0 and row["may_have_billed_usd"] == pytest.approx(total)
    line = may_have_billed_line(operations_table(run))
    assert f"May have been billed: up to {fmt_usd(total)}" in line

    summary = (out / "summary.md").read_text(encoding="utf-8")
    header = summary.splitlines()[2]
    cells = [c.strip() for c in header.strip("|").split("|")]
    runway_row = next(r for r in summary.splitlines() if r.startswith("| runway"))
    values = [c.strip() for c in runway_row.strip("|").split("|")]
    by_col = dict(zip(cells, values))
    assert by_col["failed"] == "0" and by_col[OUTCOME_UNKNOWN_HEADER] == f"2 (up to {fmt_usd(total)})"
    for text in (summary, terminal):
        assert line in " ".join(text.split())
        assert "Runway's developer portal" in text  # where to check

    html_path = write_report(out, out_dir=tmp_path / "report")
    report = (html_path.parent / "report.md").read_text(encoding="utf-8")
    assert OUTCOME_UNKNOWN_HEADER in report and line in report and "Runway's developer portal" in report
    assert "(0/3)" in report  # failure rate: 0 failures over the 3 requests whose outcome is known
    assert "left out of both the count and the denominator" in report
    html = html_path.read_text(encoding="utf-8")
    assert OUTCOME_UNKNOWN_HEADER in html and "May have been billed" in html


def test_a_resume_does_not_count_the_same_lost_create_twice(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite.yaml", [True, False])
    with FakeVendors(FAST) as fake:
        config = RunConfig(suite=str(suite), backends=("runway",), out=tmp_path / "runs" / "resume", score=False,
                           backend_options={"runway": {"base_url": fake.base_url("runway"), **RUNWAY_OPTIONS}})
        folder = RunFolder(run_benchmark(config).run_dir)
        (first,) = _unknown(folder)
        run_benchmark(config)  # finds the create recorded as 'submitting': sends nothing, the outcome stays unknown
        assert set(fake.created_per_request().values()) == {1}
    lines = [g for g in folder.all_generations() if g["prompt_id"] == "p0"]
    assert len(lines) == 2 and all(g["result"]["info"]["failure_code"] == CREATE_OUTCOME_UNKNOWN for g in lines)
    assert lines[1]["result"]["info"]["http_requests"] == 0
    assert lines[1]["may_have_billed_usd"] == pytest.approx(first["may_have_billed_usd"])  # carried, not doubled
    assert folder.read_meta()["may_have_billed_usd"] == {"runway": pytest.approx(_estimate(first))}
    (row,) = operations_table(load_run(folder.path)).to_dict("records")
    assert row["may_have_billed_usd"] == pytest.approx(_estimate(first))


def test_the_budget_gate_counts_what_unknown_creates_may_have_billed(tmp_path: Path) -> None:
    """Four requests of equal estimate e, the first two lost, one at a time, cap 3e: the two lost ones may have
    billed 2e, the third brings it to 3e, so the fourth is not sent (before, a lost create released its reservation
    and all four were sent: up to 4e billed under a 3e cap)."""
    suite = write_suite(tmp_path / "suite.yaml", [True, True, False, False])
    with FakeVendors(FAST) as fake:
        config = RunConfig(suite=str(suite), backends=("runway",), out=tmp_path / "runs" / "cap", score=False,
                           concurrency=1,
                           backend_options={"runway": {"base_url": fake.base_url("runway"), **RUNWAY_OPTIONS}})
        e = RunwayBackend(base_url=fake.base_url("runway")).estimate_cost_usd(
            GenerationRequest(prompt_id="p", prompt="x", resolution=(1280, 720), duration_s=5.0, fps=8))
        assert e > 0
        outcome = run_benchmark(replace(config, budget_usd=3 * e + 1e-6))
        assert outcome.stats.over_budget == {"runway": 1}
        assert len(fake.jobs()) == 3
        folder = RunFolder(outcome.run_dir)
        billed = sum(folder.billed_usd().values())
        possible = sum(g["may_have_billed_usd"] for g in _unknown(folder))
        assert possible == pytest.approx(2 * e) and billed + possible <= 3 * e + 1e-6

        # A resume under the same cap still counts them: nothing more is sent.
        run_benchmark(replace(config, budget_usd=3 * e + 1e-6))
        assert len(fake.jobs()) == 3 and folder.read_meta()["over_budget"] == {"runway": 1}
        # Just under room for one more (billed e + possible 2e + e > cap): still nothing sent.
        run_benchmark(replace(config, budget_usd=4 * e - 1e-6))
        assert len(fake.jobs()) == 3
        # With room, the one never sent is sent; the lost creates are not sent again (no second job for them).
        more = run_benchmark(replace(config, budget_usd=10 * e))
        assert more.stats.over_budget == {} and len(fake.jobs()) == 4
        assert set(fake.created_per_request().values()) == {1}


def test_the_regression_failure_rate_leaves_unknown_creates_out(tmp_path: Path) -> None:
    """A run whose only difference is lost creates shows no failure at all in the regression's failure rate (before,
    they counted as failures: 2 of 5 against 0 of 5)."""
    from vbench_suite.report.regression import compare_runs

    with FakeVendors(FAST) as fake:
        def run(name: str, lost: list[bool]) -> Path:
            suite = write_suite(tmp_path / f"{name}.yaml", lost)
            config = RunConfig(suite=str(suite), backends=("runway",), out=tmp_path / "runs" / name, score=False,
                               backend_options={"runway": {"base_url": fake.base_url("runway"), **RUNWAY_OPTIONS}})
            return run_benchmark(config).run_dir

        base = run("base", [False] * 5)
        cur = run("cur", [True, False, True, False, False])
    reg = compare_runs(load_run(cur), load_run(base))
    (row,) = [r for r in reg.rows.to_dict("records") if r["metric"] == "failure rate"]
    assert (row["current"], row["n_current"], row["n_baseline"]) == (0.0, 3, 5)
    assert "unknown outcome left out" in row["note"]
