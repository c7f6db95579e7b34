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
        assert any("adding GPUs does not change this" in line for line in r.arithmetic)


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
    run_dir = make_run(tmp_path / "q1")
    with pytest.raises(UserError, match="--api-backend"):
        _run_cli(["--from-run", str(run_dir), "--gpu-usd-per-hour", "2"])
    assert _run_cli(["--from-run", str(run_dir), "--api-backend", REMOTE, "--gpu-usd-per-hour", "2",
                     "--out", str(tmp_path / "be")]) == 0
    out = capsys.readouterr().out
    assert "Self-hosting is cheaper above 1,460.0" in out and "10.0% busy" in out
    assert "Throughput measured in run" in out and "| volume (10-s units/month)" in out
    for name in ("breakeven.md", "breakeven.html", "breakeven.csv", "plots/breakeven.png"):
        assert (tmp_path / "be" / name).is_file()


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
