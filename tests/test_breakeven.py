"""Break-even economics: hand-computed volumes, the edge cases, measured inputs from a run, and the CLI."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

from test_report_fixtures import REMOTE, make_run
from vbench_suite.cli import breakeven as cli_breakeven
from vbench_suite.errors import UserError
from vbench_suite.report.economics import (BreakEvenInputError, BreakEvenInputs, compute_breakeven,
                                           economics_from_run)
from vbench_suite.report.load import load_run


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli_breakeven.add_parser(sub)
    return cli_breakeven.run(parser.parse_args(["breakeven", *argv]))


def test_gpu_priced_breakeven_matches_hand_computation() -> None:
    # F = 2 $/h × 1 GPU × 730 h = 1460 $/month; V* = 1460 / (1.00 − 0) = 1460 ten-second units
    # T = 100 videos/h × 2 s / 10 s = 20 units/GPU-hour; C = 20 × 730 = 14600; utilisation = 10 %
    r = compute_breakeven(BreakEvenInputs(api_usd_per_10s=1.0, gpu_usd_per_hour=2.0, videos_per_gpu_hour=100.0,
                                          video_seconds=2.0))
    assert r.fixed_usd_per_month == pytest.approx(1460.0)
    assert r.breakeven_volume == pytest.approx(1460.0)
    assert r.units_per_gpu_hour == pytest.approx(20.0)
    assert r.capacity_per_month == pytest.approx(14600.0)
    assert r.utilisation_at_breakeven == pytest.approx(0.10)
    assert r.feasible and "cheaper above 1,460.0" in r.verdict
    text = "\n".join(r.arithmetic)
    assert "$1,460.00 / $1.00 = 1,460.0" in text and "= 10.0%" in text
    at = r.table[np.isclose(r.table["volume_10s_units"], 1460.0)].iloc[0]
    assert at["api_usd"] == pytest.approx(at["selfhost_usd"]) and at["cheaper"] == "equal"
    above = r.table[r.table["volume_10s_units"] > 1460.0]
    assert set(above.loc[~above["over_capacity"], "cheaper"]) == {"self-host"}
    assert set(above.loc[above["over_capacity"], "cheaper"]) == {"over capacity"}
    assert set(r.table.loc[r.table["volume_10s_units"] < 1460.0, "cheaper"]) == {"api"}


def test_flat_monthly_with_variable_cost() -> None:
    r = compute_breakeven(BreakEvenInputs(api_usd_per_10s=0.5, selfhost_usd_per_month=1000.0,
                                          selfhost_usd_per_10s=0.1), volumes=np.array([0.0, 2500.0, 5000.0]))
    assert r.breakeven_volume == pytest.approx(2500.0)  # 1000 / (0.5 − 0.1)
    assert r.utilisation_at_breakeven is None and "utilisation not computed" in r.verdict
    assert list(r.table["selfhost_usd"]) == pytest.approx([1000.0, 1250.0, 1500.0])
    assert list(r.table["api_usd"]) == pytest.approx([0.0, 1250.0, 2500.0])


def test_variable_cost_at_or_above_api_price_never_breaks_even() -> None:
    for v in (0.5, 0.6):
        r = compute_breakeven(BreakEvenInputs(api_usd_per_10s=0.5, selfhost_usd_per_month=1000.0,
                                              selfhost_usd_per_10s=v))
        assert r.breakeven_volume is None and not r.feasible
        assert "never breaks even" in r.verdict
        assert set(r.table["cheaper"]) == {"api"}
        assert r.table["volume_10s_units"].max() >= 2000.0  # spans the volume where the API bill reaches F


def test_cluster_too_slow_never_breaks_even_whatever_the_size() -> None:
    # full-utilisation cost = 2 $/h / 10 units/h = 0.20 $/10 s > API 0.05 $/10 s → utilisation needed 400 %
    for gpus in (1, 4):
        r = compute_breakeven(BreakEvenInputs(api_usd_per_10s=0.05, gpu_usd_per_hour=2.0, gpus=gpus,
                                              videos_per_gpu_hour=10.0))
        assert r.utilisation_at_breakeven == pytest.approx(4.0)
        assert not r.feasible and "never breaks even" in r.verdict
        assert any("adding machines does not change this" in line for line in r.arithmetic)


def test_no_fixed_cost_is_cheaper_at_every_volume() -> None:
    r = compute_breakeven(BreakEvenInputs(api_usd_per_10s=0.5, selfhost_usd_per_month=0.0, selfhost_usd_per_10s=0.1))
    assert r.breakeven_volume == 0.0 and "every volume" in r.verdict


@pytest.mark.parametrize("kwargs, flag", [
    ({"api_usd_per_10s": 1.0}, "exactly one"),
    ({"api_usd_per_10s": 1.0, "selfhost_usd_per_month": 5.0, "gpu_usd_per_hour": 2.0}, "exactly one"),
    ({"api_usd_per_10s": -1.0, "selfhost_usd_per_month": 5.0}, "--api-usd-per-10s"),
    ({"api_usd_per_10s": 1.0, "selfhost_usd_per_month": math.nan}, "--selfhost-usd-per-month"),
    ({"api_usd_per_10s": 1.0, "gpu_usd_per_hour": 2.0, "gpus": 0}, "--gpus"),
])
def test_invalid_inputs_name_the_flag(kwargs: dict, flag: str) -> None:
    with pytest.raises(BreakEvenInputError, match=flag):
        compute_breakeven(BreakEvenInputs(**kwargs))


def test_measured_inputs_from_a_run(tmp_path: Path) -> None:
    econ = economics_from_run(load_run(make_run(tmp_path / "q1")))
    assert econ.api_usd_per_10s == pytest.approx({"runway": 1.0, "pika (simulated)": 0.6})
    assert econ.selfhost_backend == "dit-local"
    assert econ.videos_per_gpu_hour == pytest.approx(100.0) and econ.video_seconds == pytest.approx(2.0)
    assert econ.gpu_usd_per_hour == pytest.approx(2.0)
    only = economics_from_run(load_run(tmp_path / "q1"), api_backend=REMOTE)
    assert only.api_usd_per_10s == pytest.approx({"runway": 1.0})
    with pytest.raises(BreakEvenInputError, match="Backends there"):
        economics_from_run(load_run(tmp_path / "q1"), api_backend="sora")


def test_cli_from_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the fixture's dit-local makes 2 s clips, runway 5 s: not like for like, so no plain verdict
    run_dir = make_run(tmp_path / "q1")
    with pytest.raises(UserError, match="--api-backend"):
        _run_cli(["--from-run", str(run_dir), "--gpu-usd-per-hour", "2"])
    assert _run_cli(["--from-run", str(run_dir), "--api-backend", REMOTE, "--gpu-usd-per-hour", "2",
                     "--out", str(tmp_path / "be")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("No verdict: Not like for like") and "Self-hosting is cheaper" not in out
    assert "dit-local makes 64x64 2 s clips" in out and "runway 64x64 5 s clips" in out
    # same resolution, so the per-megapixel-second normalisation leaves the numbers as they were (V* = 1460)
    assert "break-even would be 1,460.0 ten-second units per month at 10.0% utilisation" in out
    assert "Throughput measured in run" in out and "| volume (10-s units/month)" in out
    assert "(given by --gpu-usd-per-hour)" in out
    for name in ("breakeven.md", "breakeven.html", "breakeven.csv", "plots/breakeven.png"):
        assert (tmp_path / "be" / name).is_file()
    assert "No verdict" in (tmp_path / "be" / "breakeven.md").read_text()


def test_cli_flags_only_and_missing_price(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli(["--api-usd-per-10s", "0.5", "--selfhost-usd-per-month", "1000", "--selfhost-usd-per-10s",
                     "0.5"]) == 0
    assert "never breaks even" in capsys.readouterr().out
    with pytest.raises(UserError, match="--api-usd-per-10s"):
        _run_cli(["--selfhost-usd-per-month", "1000"])
    with pytest.raises(SystemExit):
        _run_cli(["--api-usd-per-10s", "-3", "--selfhost-usd-per-month", "1000"])


def test_run_default_self_host_is_the_slowest_local_backend(tmp_path: Path) -> None:
    import json

    run_dir = make_run(tmp_path / "q1")
    line = json.loads((run_dir / "generations.jsonl").read_text().splitlines()[0])  # a dit-local record
    line["key"], line["backend"] = "fast-1", "fast-renderer"
    line["result"]["fingerprint"]["backend"] = "fast-renderer"
    line["result"]["hardware_s"] = 0.5
    with open(run_dir / "generations.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    run = load_run(run_dir)
    assert economics_from_run(run).selfhost_backend == "dit-local"
    assert economics_from_run(run, selfhost_backend="fast-renderer").videos_per_gpu_hour == pytest.approx(7200.0)


# --- like for like: run data whose prices, rates, throughput and clip formats are known by construction ---------

DIT_DEFAULT_RATE = 0.085 / 2  # dit-local's default CPU-hour price: a 2-vCPU machine's $0.085/h over its 2 vCPUs


def _rewrite_run(run_dir: Path, local_size: tuple[int, int], local_seconds: float,
                 remote_size: tuple[int, int]) -> Path:
    """Give make_run's records a CPU dit-local priced at its default rate (36 hardware-s per video) making
    `local_size` clips of `local_seconds`, and remote vendors making `remote_size` 5 s clips."""
    import json

    lines = []
    for text in (run_dir / "generations.jsonl").read_text().splitlines():
        d = json.loads(text)
        res = d["result"]
        if d["backend"] == "dit-local":
            d["request"]["resolution"] = list(local_size)
            res["fingerprint"]["settings"] = {"steps": 20, "device": "cpu"}
            res["cost_usd"] = 36.0 / 3600.0 * DIT_DEFAULT_RATE
            res["video_seconds"] = local_seconds
        elif d["backend"] in ("runway", "pika"):
            d["request"]["resolution"] = list(remote_size)
        lines.append(json.dumps(d))
    (run_dir / "generations.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def test_default_rate_is_dit_locals_assumption() -> None:
    from vbench_suite.backends.dit_local import DEFAULT_PRICE_PER_HOUR, DEFAULT_PRICE_VCPUS

    assert DEFAULT_PRICE_PER_HOUR / DEFAULT_PRICE_VCPUS == DIT_DEFAULT_RATE


def test_like_for_like_run_gives_the_hand_computed_breakeven(tmp_path: Path) -> None:
    from vbench_suite.report.build import breakeven_from_run, write_report
    from vbench_suite.report.tables import operations_table

    run_dir = _rewrite_run(make_run(tmp_path / "q1"), (1280, 720), 5.0, (1280, 720))
    run = load_run(run_dir)
    results, notes = breakeven_from_run(run, operations_table(run))
    # One vCPU: F = 0.0425 $/h × 730 h = 31.025 $/month. runway: A = 0.50 $ / 5 s × 10 = 1.00 $/10 s → V* = 31.025.
    # pika: 0.30 $ / 5 s × 10 = 0.60 $/10 s → V* = 31.025 / 0.6 = 51.7083...
    # T = 100 videos/h (3600 / 36 CPU-s) × 5 s / 10 s = 50 units/h; C = 50 × 730 = 36,500 → utilisation 31.025 / 36,500.
    by_api = {r.inputs.api_label: r for r in results}
    assert set(by_api) == {"runway", "pika (simulated)"}
    runway, pika = by_api["runway"], by_api["pika (simulated)"]
    assert runway.comparison.like_for_like is True and pika.comparison.like_for_like is True
    assert runway.fixed_usd_per_month == pytest.approx(31.025)
    assert runway.breakeven_volume == pytest.approx(31.025)
    assert pika.breakeven_volume == pytest.approx(31.025 / 0.6)
    assert runway.capacity_per_month == pytest.approx(36500.0)
    assert runway.utilisation_at_breakeven == pytest.approx(31.025 / 36500.0)
    assert runway.verdict == ("Self-hosting is cheaper above 31.03 ten-second units per month, which keeps the "
                              "cluster 0.085% busy.")
    text = " ".join(notes)
    assert "CPU: 1 vCPU at $0.0425/h (assumed, source: dit-local's default price_per_hour" in text
    assert "GPU" not in text  # a CPU rate is never called a GPU-hour
    md = write_report(run_dir, tmp_path / "rep").with_suffix(".md").read_text()
    assert "CPU: 1 vCPU at $0.0425/h (assumed" in md and "like for like (1280x720 5 s clips)" in md


def test_unlike_for_like_run_is_labelled_normalised_and_gets_no_verdict(tmp_path: Path) -> None:
    from vbench_suite.report.build import breakeven_from_run, breakeven_summary_table, write_report
    from vbench_suite.report.tables import operations_table

    # today's default: dit-local makes 64x64 2 s clips, the vendors 1280x720 5 s
    run_dir = _rewrite_run(make_run(tmp_path / "q1"), (64, 64), 2.0, (1280, 720))
    run = load_run(run_dir)
    results, notes = breakeven_from_run(run, operations_table(run))
    runway = next(r for r in results if r.inputs.api_label == "runway")
    assert runway.comparison.like_for_like is False
    # T = 100 × 2 / 10 = 20 units/h of 64x64, × (0.004096 MP / 0.9216 MP) = 0.0888... units/h of 1280x720;
    # C = 0.0888... × 730 = 64.888...; V* = 31.025 / 1.00; utilisation = 31.025 / 64.888... = 47.8 %
    assert runway.units_per_gpu_hour == pytest.approx(20.0 * 4096 / 921600)
    assert runway.breakeven_volume == pytest.approx(31.025)
    assert runway.utilisation_at_breakeven == pytest.approx(31.025 / (20.0 * 4096 / 921600 * 730))
    for r in results:
        assert r.verdict.startswith("No verdict: Not like for like") and "is cheaper" not in r.verdict
        assert "dit-local makes 64x64 2 s clips" in r.verdict and "1280x720 5 s clips" in r.verdict
        assert all(c.endswith("(normalised)") for c in r.table["cheaper"])
    assert "47.8% utilisation" in runway.verdict
    # per megapixel-second: API 1.00 / (10 × 0.9216) = 0.1085; self-host 0.0425 / (100 × 2 s × 0.004096 MP) = 0.05188
    assert any("Per megapixel-second: API $1.00 / (10 s × 0.9216 MP) = $0.1085" in line and "= $0.05188" in line
               for line in runway.arithmetic)
    table = breakeven_summary_table(results)
    assert all("NOT like for like" in row[1].text and "normalised" in row[4].text for row in table.rows)
    assert any("no verdict" in n for n in notes)
    md = write_report(run_dir, tmp_path / "rep").with_suffix(".md").read_text()
    assert "NOT like for like" in md and "Self-hosting is cheaper" not in md


def test_cli_from_run_like_for_like_uses_the_runs_rate_with_its_source(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = _rewrite_run(make_run(tmp_path / "q1"), (1280, 720), 5.0, (720, 1280))  # orientation does not matter
    assert _run_cli(["--from-run", str(run_dir), "--api-backend", REMOTE]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Self-hosting is cheaper above 31.0")
    assert "CPU: 1 vCPU at $0.0425/h (assumed, source: dit-local's default price_per_hour" in out
    assert "Like for like: dit-local makes 1280x720 5 s clips, runway 720x1280 5 s clips" in out


def test_cli_flags_declare_formats() -> None:
    # explicit formats that differ → no plain verdict, even without a run
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert _run_cli(["--api-usd-per-10s", "1", "--api-resolution", "1280x720", "--api-video-seconds", "5",
                         "--selfhost-resolution", "640x360", "--video-seconds", "5", "--videos-per-gpu-hour", "40",
                         "--gpu-usd-per-hour", "2"]) == 0
    out = buf.getvalue()
    assert out.startswith("No verdict: Not like for like") and "640x360 5 s clips" in out
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert _run_cli(["--api-usd-per-10s", "1", "--gpu-usd-per-hour", "2", "--videos-per-gpu-hour", "40"]) == 0
    assert "Formats not checked" in buf.getvalue()  # the output says what it could not check
    assert "Clip formats not checked" in buf.getvalue().splitlines()[0]  # in the verdict itself
    with pytest.raises(SystemExit):
        _run_cli(["--api-usd-per-10s", "1", "--gpu-usd-per-hour", "2", "--api-resolution", "wide"])


@pytest.mark.parametrize("seconds, cls", [(2.0, "up to 4 s"), (4.0, "up to 4 s"), (5.0, "4-8 s"), (10.0, "8-16 s"),
                                          (20.0, "over 16 s")])
def test_duration_classes(seconds: float, cls: str) -> None:
    from vbench_suite.report.economics import VideoFormat

    assert VideoFormat(64, 64, seconds).duration_class() == cls
