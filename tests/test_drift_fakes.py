"""End to end: `vbench-suite canary` as cron runs it, against vendors whose truth is known by construction.

- Fake Runway (HTTP, real 1280x720 clips) under tests/scenarios/drift_base.yaml twice (nothing changed: exit 0),
  then under drift_swap.yaml (the model behind the unchanged name gen4.5 swapped: exit 3, and the report says so at
  the top).
- The toy vendor (tests/drift_toys.py) in seed-faithful mode (fresh noise on every request): the same-seed pairs
  are tested against the probe's replay floor; an unchanged vendor is not flagged, a brighter one is.
Minutes on 2 CPUs (every canary run fetches or renders 15 clips and runs I3D and LPIPS on them): `slow`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vbench_suite.fake_vendors.scenario import load_scenario

from drift_toys import write_shapes_suite
from test_scenarios import FAST_OPTIONS, HERE, REPO, run_cli, start_fake

pytestmark = pytest.mark.slow


def _canary(fake, tmp_path: Path, name: str) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    args = ["canary", "--backend", "runway", "--runs-dir", str(tmp_path / "runs"), "--out",
            str(tmp_path / "runs" / name), "--report-dir", str(tmp_path / "reports" / name),
            "--option", FAST_OPTIONS[1]]
    return run_cli(fake, args, cwd=tmp_path)


def test_canary_flags_a_silent_model_swap_and_not_a_null_rerun(tmp_path):
    base, swap = load_scenario(HERE / "drift_base.yaml"), load_scenario(HERE / "drift_swap.yaml")
    assert base.truth("runway", "gen4.5").quality != swap.truth("runway", "gen4.5").quality
    outputs = {}
    for name, scenario in (("day1", base), ("day2", base), ("day3", swap)):
        with start_fake(scenario) as fake:
            outputs[name] = _canary(fake, tmp_path, name)
    first, null, swapped = outputs["day1"], outputs["day2"], outputs["day3"]
    assert first.returncode == 0, first.stderr[-3000:]
    assert "nothing to compare yet" in first.stdout
    assert "reproducibility of runway: bit-exact" in first.stdout  # the fake answers a request the same way
    assert null.returncode == 0, (null.stdout[-3000:], null.stderr[-3000:])
    assert "No change detected in the output of runway (simulated)" in null.stdout
    assert swapped.returncode == 3, (swapped.stdout[-3000:], swapped.stderr[-3000:])
    assert "The output of runway (simulated) changed between" in swapped.stdout
    report = (tmp_path / "reports" / "day3" / "report.md").read_text(encoding="utf-8")
    top = report.split("## Regression verdicts")[0]
    assert "although its declared model did not (p = " in top
    assert "fingerprint changed" not in top  # the declared model (gen4.5) is the same


def _toy_canary(tmp_path: Path, name: str, shift: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VBENCH_EXTRA_BACKENDS": "drift-toy=drift_toys:DriftToy", "DRIFT_TOY_REPLAY": "noise",
           "DRIFT_TOY_NOISE": "3", "DRIFT_TOY_SHIFT": shift, "DRIFT_TOY_SALT": name,
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    suite = write_shapes_suite(tmp_path / "suite.yaml", n=12)
    return subprocess.run([sys.executable, "-m", "vbench_suite", "canary", "--backend", "drift-toy", "--suite",
                           str(suite), "--runs-dir", str(tmp_path / "runs"), "--out", str(tmp_path / "runs" / name),
                           "--report-dir", str(tmp_path / "reports" / name)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)


def test_seed_faithful_vendor_is_compared_against_its_replay_floor(tmp_path):
    first = _toy_canary(tmp_path, "a", "0")
    assert first.returncode == 0 and "seed-faithful within noise" in first.stdout, first.stdout + first.stderr
    null = _toy_canary(tmp_path, "b", "0")
    assert null.returncode == 0, null.stdout + null.stderr[-3000:]
    changed = _toy_canary(tmp_path, "c", "25")
    assert changed.returncode == 3, changed.stdout + changed.stderr[-3000:]
    assert "same-seed outputs vs replay floor (LPIPS): changed" in changed.stdout
