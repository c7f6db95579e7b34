"""Comparison report: loading run folders, the numbers in the tables, direction from the records, and the files."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_report_fixtures import (CLIP_REASON, LOCAL, REMOTE, SIM, RunSpec, lpips_value, make_run)
from vbench_suite.report import tables
from vbench_suite.report.build import default_out_dir, write_report
from vbench_suite.errors import UserError
from vbench_suite.report.load import RunFolderError, load_run


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "q1")


def test_load_last_line_wins_and_bad_lines_are_skipped(run_dir: Path) -> None:
    lines = (run_dir / "generations.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["result"]["status"] = "failed"
    first["result"]["error"] = "retried later"
    with open(run_dir / "generations.jsonl", "a") as f:
        f.write(json.dumps(first) + "\n")
        f.write('{"key": "truncated", "backe')  # a run killed mid-write
    run = load_run(run_dir)
    assert len(run.generations) == 48  # 3 backends × 16 prompts; reference renders left out
    row = run.generations[run.generations["key"] == first["key"]].iloc[0]
    assert row["status"] == "failed" and row["error"] == "retried later"
    assert run.skipped_lines == 1
    assert run.stage_names == ["text_encoding", "denoising", "decoding"]
    assert run.name == "q1"
    assert run.label(SIM) == "pika (simulated)" and run.label(REMOTE) == "runway"
    assert run.backends() == [LOCAL, SIM, REMOTE] and run.reference_generations == 2


def test_reference_role_matches_the_runner() -> None:
    from vbench_suite.report.load import REFERENCE_ROLE

    plan = pytest.importorskip("vbench_suite.runner.plan", reason="runner not importable yet")
    assert REFERENCE_ROLE == plan.REFERENCE_ROLE


def test_a_run_reads_the_same_from_the_sqlite_index(run_dir: Path, tmp_path: Path) -> None:
    from vbench_suite.store.index import import_run

    index = tmp_path / "index.sqlite"
    import_run(index, run_dir)
    from_folder = load_run(run_dir)
    from_index = load_run("q1", index)
    assert from_index.name == "q1" and from_index.reference_generations == 2
    assert from_index.generations.equals(from_folder.generations)
    assert tables.quality_table(from_index).equals(tables.quality_table(from_folder))
    # the folder is gone (copied elsewhere): the default index beside it still has the run
    moved = tmp_path / "elsewhere"
    run_dir.rename(moved)
    assert load_run(tmp_path / "q1").name == "q1"
    with pytest.raises(RunFolderError, match="Runs there: q1"):
        load_run("q9", index)


def test_load_rejects_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a run folder"):
        load_run(tmp_path)
    with pytest.raises(RunFolderError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_operations_numbers(run_dir: Path) -> None:
    ops = tables.operations_table(load_run(run_dir)).set_index("backend")
    # cost per 10 s = total cost / delivered seconds × 10
    assert ops.loc[LOCAL, "usd_per_10s"] == pytest.approx(0.02 / 2.0 * 10)  # 36 s at $2/h = $0.02 per 2-s video
    assert ops.loc[REMOTE, "usd_per_10s"] == pytest.approx(15 * 0.5 / (15 * 5.0) * 10)  # = $1.00
    assert ops.loc[SIM, "usd_per_10s"] == pytest.approx(0.6)
    assert ops.loc[REMOTE, "refusal_rate"] == pytest.approx(1 / 16) and ops.loc[REMOTE, "n_refused"] == 1
    assert ops.loc[SIM, "failure_rate"] == pytest.approx(2 / 16)
    lo, hi = ops.loc[SIM, "failure_ci_low"], ops.loc[SIM, "failure_ci_high"]
    assert lo < 2 / 16 < hi
    # runway ok totals are 21 + i for i in 0..15 without i = 3 (refused): the 8th of 15 sorted values is 29
    assert ops.loc[REMOTE, "total_s_median"] == pytest.approx(29.0)
    expected = [21.0 + i for i in range(16) if i != 3]
    assert ops.loc[REMOTE, "total_s_p90"] == pytest.approx(np.quantile(expected, 0.9))
    assert ops.loc[REMOTE, "queued_s_median"] == pytest.approx(8.0)
    assert ops.loc[LOCAL, "stage_denoising_median"] == pytest.approx(37.5)  # 30 + i, i = 0..15
    assert ops.loc[LOCAL, "stage_text_encoding_p90"] == pytest.approx(0.5)
    assert np.isnan(ops.loc[REMOTE, "stage_denoising_median"])  # remote backends have no local stages
    assert bool(ops.loc[LOCAL, "local"]) and not bool(ops.loc[REMOTE, "local"])
    assert ops.loc[LOCAL, "videos_per_hw_hour"] == pytest.approx(100.0)
    assert ops.loc[LOCAL, "hardware_s_per_10s"] == pytest.approx(180.0)
    assert np.isnan(ops.loc[REMOTE, "hardware_s_total"])


def test_quality_table_values_cis_and_ranks(run_dir: Path) -> None:
    q = tables.quality_table(load_run(run_dir))
    lp = q[(q["metric"] == "lpips_ref") & (q["category"] == "all")].set_index("backend")
    expected = np.mean([lpips_value(REMOTE, i) for i in range(16) if i != 3])
    assert lp.loc[REMOTE, "value"] == pytest.approx(expected)
    assert lp.loc[REMOTE, "n"] == 15
    assert lp.loc[REMOTE, "ci_low"] < expected < lp.loc[REMOTE, "ci_high"]
    # lower is better (as the records declare): runway 0.2x < pika 0.3x < local 0.4x
    assert [lp.loc[b, "rank"] for b in (REMOTE, SIM, LOCAL)] == [1, 2, 3]
    assert bool(lp.loc[REMOTE, "best"]) and not bool(lp.loc[LOCAL, "best"])
    assert bool(lp.loc[SIM, "simulated"]) and lp.loc[SIM, "label"] == "pika (simulated)"
    motion = q[(q["metric"] == "lpips_ref") & (q["category"] == "motion") & (q["backend"] == REMOTE)].iloc[0]
    assert motion["n"] == 7  # motion-003 was refused
    clip = q[q["metric"] == "clipsim"]
    assert set(clip["status"]) == {"unavailable"} and set(clip["reason"]) == {CLIP_REASON}
    assert clip["value"].isna().all() and clip["rank"].isna().all()
    fvd = q[(q["metric"] == "fvd") & (q["category"] == "all")].set_index("backend")
    assert fvd.loc[REMOTE, "value"] == 150.0 and fvd.loc[REMOTE, "ci_low"] == 130.0 and fvd.loc[REMOTE, "n"] == 16
    assert fvd.loc[REMOTE, "n_ref"] == 16 and fvd.loc[REMOTE, "rank"] == 1
    shapes = q[q["metric"] == "shapes_adherence"]
    assert set(shapes["backend"]) == {LOCAL}


def test_ranking_follows_the_records_direction(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "flip", RunSpec(lpips_higher_is_better=True)))
    q = tables.quality_table(run)
    lp = q[(q["metric"] == "lpips_ref") & (q["category"] == "all")].set_index("backend")
    assert [lp.loc[b, "rank"] for b in (LOCAL, SIM, REMOTE)] == [1, 2, 3]


def test_mixed_directions_get_no_ranking(run_dir: Path) -> None:
    lines = (run_dir / "scores.jsonl").read_text().splitlines()
    first_lpips = next(i for i, line in enumerate(lines) if '"lpips_ref"' in line)
    rec = json.loads(lines[first_lpips])
    rec["higher_is_better"] = True
    lines[first_lpips] = json.dumps(rec)
    (run_dir / "scores.jsonl").write_text("\n".join(lines) + "\n")
    q = tables.quality_table(load_run(run_dir))
    assert q.loc[q["metric"] == "lpips_ref", "rank"].isna().all()


def _md_tables(md: str) -> list[list[str]]:
    blocks, cur = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    return blocks


def test_report_files_mark_simulated_and_unavailable(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    html_path = write_report(run_dir, out)
    assert html_path == out / "report.html"
    for name in ("report.md", "quality.csv", "operations.csv", "breakeven.csv", "plots/latency.png",
                 "plots/quality_vs_cost.png", "plots/per_category.png", "plots/breakeven.png"):
        assert (out / name).is_file(), name
    md = (out / "report.md").read_text()
    html = html_path.read_text()
    # every table that lists the simulated backend marks it (its model name 'pika-2.2' may appear elsewhere)
    n_marked = 0
    for block in _md_tables(md):
        text = "\n".join(block)
        rows_for_sim = re.findall(r"^\| \**pika[^|]*\|", text, flags=re.M)  # first cell names the backend
        assert all(cell.rstrip("*| ").endswith("pika (simulated)") for cell in rows_for_sim), rows_for_sim
        n_marked += len(rows_for_sim)
    assert n_marked >= 6  # clipsim, fvd, lpips, reliability, latency, break-even
    assert f"unavailable: {CLIP_REASON}" in md and f"unavailable: {CLIP_REASON}" in html
    assert "nan" not in md.lower().replace("nanos", "")
    assert "**0.218" in md  # best runway LPIPS cell is highlighted
    assert 'class="best"' in html
    assert "$1.00" in md and "$0.1000" in md and "$0.6000" in md  # cost per 10 s
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # self-contained
    assert html.count("data:image/png;base64,") == 4
    with open(out / "quality.csv") as f:
        rows = list(csv.DictReader(f))
    clip = [r for r in rows if r["metric"] == "clipsim"]
    assert clip and all(r["display"] == f"unavailable: {CLIP_REASON}" for r in clip)
    assert any(r["label"] == "pika (simulated)" and r["simulated"] == "True" for r in rows)
    with open(out / "operations.csv") as f:
        ops = {r["backend"]: r for r in csv.DictReader(f)}
    assert float(ops[REMOTE]["usd_per_10s"]) == pytest.approx(1.0)


def test_default_out_dir_is_reports_run_name(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = load_run(run_dir)
    assert default_out_dir(run) == Path("reports") / "q1"
    path = write_report(run_dir)
    assert path == Path("reports/q1/report.html") and (tmp_path / "reports/q1/report.md").is_file()


def test_report_on_a_run_without_scores(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "r")
    (run_dir / "scores.jsonl").unlink()
    md = write_report(run_dir, tmp_path / "o").with_suffix(".md").read_text()
    assert "No score records" in md and "runway" in md


def test_report_modules_do_not_import_torch_or_plotting_early() -> None:
    code = ("import sys, vbench_suite.cli.report, vbench_suite.cli.breakeven, vbench_suite.report; "
            "assert 'matplotlib' not in sys.modules and 'pandas' not in sys.modules, 'heavy import at module level'; "
            "import vbench_suite.report.build; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_cli(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from vbench_suite.cli import report as cli_report
    from vbench_suite.errors import UserError

    parser = argparse.ArgumentParser()
    cli_report.add_parser(parser.add_subparsers())
    base = make_run(tmp_path / "base", RunSpec(name="q0"))
    args = parser.parse_args(["report", str(run_dir), "--out", str(tmp_path / "o"), "--compare", str(base)])
    assert cli_report.run(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "o" / "report.html")
    with pytest.raises(UserError, match="is the run itself"):
        cli_report.run(parser.parse_args(["report", str(run_dir), "--compare", str(run_dir)]))
    with pytest.raises(UserError, match="does not exist"):
        cli_report.run(parser.parse_args(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]))
    with pytest.raises(SystemExit):
        parser.parse_args(["report", str(run_dir), "--alpha", "1.5"])


def test_metric_whose_inputs_all_failed_says_so(run_dir: Path) -> None:
    from vbench_suite.types import ScoreRecord

    keys = [json.loads(line)["key"] for line in (run_dir / "generations.jsonl").read_text().splitlines()
            if json.loads(line)["backend"] == LOCAL][:3]  # scores count only for generations of the run
    with open(run_dir / "scores.jsonl", "a") as f:
        for i, key in enumerate(keys):
            rec = ScoreRecord("lpips_temporal", "error", reason="video too short: 1 frame", higher_is_better=False,
                              backend=LOCAL, prompt_id=f"p{i}", category="motion", key=key)
            f.write(json.dumps(rec.to_dict()) + "\n")
    q = tables.quality_table(load_run(run_dir))
    cell = q[(q["metric"] == "lpips_temporal") & (q["category"] == "all")].iloc[0]
    assert cell["status"] == "error" and cell["reason"] == "3 of 3 inputs failed: video too short: 1 frame"


def test_report_on_an_empty_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"schema_version": 1, "name": "empty", "run_id": "x"}))
    md = write_report(run_dir, tmp_path / "o").with_suffix(".md").read_text()
    assert "No score records" in md and "Not computed" in md
