"""`vbench-suite run` at the command line: selection, reuse, option and --out errors are one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vbench_suite.cli import main


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_out_naming_an_existing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken.txt"
    target.write_text("not a run folder")
    for out in (target, target / "sub"):
        assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(out), "--limit", "1",
                     "--no-score", "--no-report", "--no-progress"]) == 2
        assert f"{target} is a file, not a folder" in _error(capsys)
    assert target.read_text() == "not a run folder"


def test_option_typo_lists_the_valid_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--suite", "smoke", "--backend", "dit-local", "--out", str(tmp_path / "r"),
                 "--option", "dit-local.stepz=4", "--no-progress"])
    assert code == 2
    err = _error(capsys)
    assert "backend 'dit-local' has no option 'stepz'. Did you mean 'steps'? Valid options: weights, device" in err
    assert "unexpected keyword argument" not in err
    assert not (tmp_path / "r").exists()


def test_option_for_a_backend_not_in_the_run_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"),
                 "--option", "dit-local.steps=4", "--no-progress"])
    assert code == 2
    assert "--option for backend 'dit-local', which is not in this run (backends: reference-shapes)" in _error(capsys)


def test_unknown_category_tag_or_prompt_lists_the_valid_ones(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main([*base, "--category", "motoin"]) == 2
    assert "suite smoke has no category 'motoin'. Did you mean 'motion'? Valid: motion, count" in _error(capsys)
    assert main([*base, "--tag", "nope"]) == 2
    assert "has no tag 'nope'. Valid: conditioning" in _error(capsys)
    assert main([*base, "--prompt-id", "count-2"]) == 2
    assert "has no prompt id 'count-2'" in _error(capsys) and not (tmp_path / "r").exists()


def test_standard_limit_6_generates_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The reproduction: no shapes prompt among the first six; before, exit 2 after generating everything.
    out = tmp_path / "r"
    assert main(["run", "--suite", "standard", "--limit", "6", "--backend", "reference-shapes", "--out", str(out),
                 "--no-report", "--no-progress", "--metrics", "fvd,shapes_adherence"]) == 0
    printed = capsys.readouterr().out
    assert "metric fvd unavailable: not applicable" in printed and "--limit 6" in printed
    assert "6 of the suite's 122 prompts in this run folder (latest selection: --limit 6)" in printed
    summary = (out / "summary.md").read_text()
    assert "not applicable" in summary and "6 of the suite's 122 prompts" in summary
    meta = json.loads((out / "run.json").read_text())
    assert meta["selection"]["limit"] == 6 and len(meta["selection"]["prompts"]) == 6


def test_selection_and_reuse_flags_reach_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(out), "--category",
                 "count", "--category", "colour", "--prompt-id", "count-two", "--prompt-id", "colour-pair",
                 "--reuse", "never", "--no-score", "--no-report", "--no-progress"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["selection"]["prompts"] == ["count-two", "colour-pair"]
    assert meta["selection"]["categories"] == ["count", "colour"] and meta["reuse"] == "never"
    assert meta["requested_backends"] == ["reference-shapes"]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["run", "--suite", "smoke", "--out", str(out), "--reuse", "sometimes"])
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_reused_results_are_named_in_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "--suite", "smoke", "--backend", "reference-shapes", "--limit", "2", "--no-score", "--no-report",
            "--no-progress", "--index", str(tmp_path / "index.sqlite")]
    assert main([*base, "--out", str(tmp_path / "q3")]) == 0
    assert main([*base, "--out", str(tmp_path / "q4")]) == 0
    printed = capsys.readouterr().out
    line = f"2 reference-shapes result(s) reused from run {(tmp_path / 'q3').resolve()}"
    assert line in printed and line in (tmp_path / "q4" / "summary.md").read_text()


def test_requests_not_sent_for_the_budget_are_counted_per_backend(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    out = tmp_path / "r"
    assert main(["run", "--suite", "smoke", "--backend", "toy", "--backend", "runway", "--out", str(out),
                 "--option", "toy.cost_usd=1", "--budget-usd", "2.5", "--concurrency", "1", "--limit", "5",
                 "--no-score", "--no-report", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    line = "3 toy request(s) not sent: the budget cap of 2.5 USD would have been exceeded"
    assert line in printed and line in (out / "summary.md").read_text()
    # Resumed without runway: the summary still says why runway did not run.
    assert main(["run", "--suite", "smoke", "--backend", "toy", "--out", str(out), "--option", "toy.cost_usd=1",
                 "--budget-usd", "2.5", "--limit", "5", "--no-score", "--no-report", "--no-progress"]) == 0
    summary = (out / "summary.md").read_text()
    assert line in summary and "backend runway skipped: " in summary and "RUNWAYML_API_SECRET" in summary


def test_cli_engine_choices_are_the_engines() -> None:
    from vbench_suite.cli.run import ENGINE_CHOICES
    from vbench_suite.runner.engines import ENGINES

    assert ENGINE_CHOICES == ENGINES


def test_cli_reuse_choices_are_the_runner_policies() -> None:
    from vbench_suite.cli.run import REUSE_CHOICES
    from vbench_suite.runner.generate import REUSE_POLICIES

    assert REUSE_CHOICES == REUSE_POLICIES


def test_terminal_summary_fits_a_line_and_names_every_outcome(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: one 15-column table whose outcome column wrapped a sentence over a dozen lines.
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    assert main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--backend", "runway", "--limit", "2",
                 "--metrics", "shapes_adherence", "--out", str(tmp_path / "r"), "--no-report", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert max(len(line) for line in printed.splitlines()) <= 160
    assert "vbench-suite summary" in printed and "shapes_adherence ↑" in printed
    assert "runway: not configured: RUNWAYML_API_SECRET is not set" in printed
    assert "skipped backend runway" not in printed  # said once, in the outcome line
    table_rows = [line for line in printed.splitlines() if line.startswith("│ runway")]
    assert len(table_rows) == 1  # in operations only: no scores, no row in the metrics table
