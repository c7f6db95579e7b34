"""Drift tests between two runs of a backend whose declared model did not change: the rows they add to the regression
comparison (one Holm family), the headline, the evidence gathered from real videos, the choice of runs from the
index, and the commands' user errors. Truth is known by construction (toy vendor, synthetic features)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from vbench_suite.drift.evidence import BackendEvidence, collect_evidence
from vbench_suite.drift.history import parse_when, previous_run, find_run, window
from vbench_suite.errors import UserError
from vbench_suite.report.build import regression_row_cells, regression_sections
from vbench_suite.report.drift import CHANGED, LPIPS_ROW, MMD_ROW, NOT_DETECTED
from vbench_suite.report.load import load_run
from vbench_suite.report.regression import compare_runs
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.index import import_run

from drift_toys import write_shapes_suite

BACKEND = "drift-toy"


@pytest.fixture(autouse=True)
def _toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "drift-toy=drift_toys:DriftToy,toy=toy_backends:ToyBackend")


def _run(tmp_path: Path, name: str, n: int = 3, probe: int = 2, backends: tuple[str, ...] = (BACKEND,),
         **kw) -> Path:  # type: ignore[no-untyped-def]
    suite = write_shapes_suite(tmp_path / "suite.yaml", n=n)
    out = tmp_path / "runs" / name
    run_benchmark(RunConfig(suite=str(suite), backends=backends, out=out, probe=probe, score=False, **kw))
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    mp = pytest.MonkeyPatch()
    mp.setenv("VBENCH_EXTRA_BACKENDS", "drift-toy=drift_toys:DriftToy")
    tmp = tmp_path_factory.mktemp("drift-runs")
    try:
        return _run(tmp, "old"), _run(tmp, "new")
    finally:
        mp.undo()


def _synthetic(changed: bool, rng: np.random.Generator, n: int = 12) -> BackendEvidence:
    """Evidence of a bit-exact vendor over n prompts: same-seed LPIPS 0 and equal features unless `changed`."""
    centres = rng.normal(0, 5, (n, 16))
    base = centres + rng.normal(0, 1, centres.shape)
    cur = base + (np.r_[3.0, np.zeros(15)] if changed else 0.0)
    ids = [f"p{i}" for i in range(n)]
    return BackendEvidence(BACKEND, classes=("bit-exact", "bit-exact"), floor=[0.0] * 4,
                           pairs=[(i, 0.05 if changed else 0.0) for i in ids], baseline_features=base,
                           baseline_strata=ids, current_features=cur, current_strata=ids,
                           lpips_profile="lp", i3d_profile="i3d")


def _drift_rows(reg):  # type: ignore[no-untyped-def]
    rows = reg.rows
    return rows[rows["kind"] == "drift"].set_index("metric")


@pytest.mark.parametrize("changed", [False, True])
def test_drift_rows_and_headline(two_runs, changed):
    old, new = (load_run(p) for p in two_runs)
    reg = compare_runs(new, old, drift={BACKEND: _synthetic(changed, np.random.default_rng(0))})
    rows = _drift_rows(reg)
    want = CHANGED if changed else NOT_DETECTED
    assert rows.loc[LPIPS_ROW, "verdict"] == want and rows.loc[MMD_ROW, "verdict"] == want
    head = regression_sections(reg)[0]
    date = str(old.meta["created"])[:10]
    if changed:
        first = head.callouts[0]
        assert first.startswith(f"The output of {BACKEND} changed between {date} (old) and ")
        assert "although its declared model did not (p = " in first
        assert rows.loc[LPIPS_ROW, "p_value"] == pytest.approx(1 / 1820)  # C(12 + 4, 4) splits, one as extreme
    else:
        assert not any("changed between" in c for c in head.callouts)
        assert any(p.startswith(f"No change detected in the output of {BACKEND}") for p in head.paragraphs)
        assert rows.loc[LPIPS_ROW, "p_value"] == 1.0


def test_drift_verdict_is_read_off_the_printed_threshold(two_runs):
    """Over random evidence (effects from none to large), every tested drift row: 'changed' exactly when the
    statistic exceeds the printed threshold, exactly when the Holm-adjusted p is below alpha."""
    old, new = (load_run(p) for p in two_runs)
    rng = np.random.default_rng(1)
    seen = {CHANGED: 0, NOT_DETECTED: 0}
    for i in range(12):
        ev = _synthetic(False, rng)
        ev.current_features = ev.current_features + np.r_[rng.choice([0.0, 1.0, 4.0]), np.zeros(15)]
        ev.pairs = [(p, float(d)) for (p, _), d in zip(ev.pairs, rng.exponential(rng.choice([1e-9, 0.02]), 12))]
        ev.floor = list(rng.exponential(0.01, 4))
        reg = compare_runs(new, old, alpha=0.05, drift={BACKEND: ev}, seed=i)
        for r in reg.rows[reg.rows["kind"] == "drift"].astype(object).to_dict("records"):
            cells = regression_row_cells(r)
            printed = float(cells[5].text.split("changed above ")[1].rstrip(")"))
            assert (r["verdict"] == CHANGED) == (r["p_adjusted"] < 0.05)
            if r["verdict"] == CHANGED:
                assert r["delta"] > printed * (1 - 1e-3)
            else:
                assert r["delta"] <= printed * (1 + 1e-3) + 1e-12
            seen[r["verdict"]] += 1
    assert seen[CHANGED] and seen[NOT_DETECTED]


def test_no_probe_means_no_pairwise_test_and_a_declared_change_means_no_drift_rows(tmp_path):
    old, new = load_run(_run(tmp_path, "a", probe=0)), load_run(_run(tmp_path, "b", probe=0))
    ev = _synthetic(True, np.random.default_rng(2))
    ev.classes = (None, None)
    rows = _drift_rows(compare_runs(new, old, drift={BACKEND: ev}))
    assert rows.loc[LPIPS_ROW, "verdict"] == "not tested" and "--probe" in rows.loc[LPIPS_ROW, "note"]
    assert rows.loc[MMD_ROW, "verdict"] == CHANGED
    # another toy version: the declared model changed, so that is called out and no drift row is added
    a = load_run(_run(tmp_path, "v1", probe=0, backends=("toy",)))
    b = load_run(_run(tmp_path, "v2", probe=0, backends=("toy",), backend_options={"toy": {"version": "2"}}))
    reg = compare_runs(b, a, drift={})
    assert not (reg.rows["kind"] == "drift").any()
    assert any("fingerprint changed" in c for c in reg.callouts)


def test_evidence_from_real_videos_and_the_feature_cache(two_runs, monkeypatch):
    """Two bit-exact runs with the same seeds: every same-seed pair has LPIPS 0, the floor is the probes' zeros,
    features exist for every video; the second time they come from the cache."""
    old, new = (load_run(p) for p in two_runs)
    ev = collect_evidence(new, old)[BACKEND]
    assert ev.classes == ("bit-exact", "bit-exact") and ev.floor == [0.0] * 4
    assert sorted(p for p, _ in ev.pairs) == ["p0", "p1", "p2"] and all(d == 0.0 for _, d in ev.pairs)
    assert ev.current_features.shape == (3, 400) and sorted(ev.current_strata) == ["p0", "p1", "p2"]
    assert np.array_equal(ev.current_features, ev.baseline_features)  # same bytes, same features

    from vbench_suite.drift.features import FeatureCache

    monkeypatch.setattr(FeatureCache, "_compute", lambda self, path: (_ for _ in ()).throw(AssertionError(path)))
    again = collect_evidence(new, old)[BACKEND]
    assert np.array_equal(again.current_features, ev.current_features)
    rows = _drift_rows(compare_runs(new, old, drift={BACKEND: again}))
    assert rows.loc[LPIPS_ROW, "verdict"] == NOT_DETECTED and rows.loc[LPIPS_ROW, "p_value"] == 1.0


@pytest.mark.slow
def test_evidence_sees_a_silent_change(tmp_path, monkeypatch):
    old = load_run(_run(tmp_path, "before"))
    monkeypatch.setenv("DRIFT_TOY_NOISE", "40")
    new = load_run(_run(tmp_path, "after"))
    ev = collect_evidence(new, old)[BACKEND]
    assert len(ev.pairs) == 3 and min(d for _, d in ev.pairs) > 0.05
    assert ev.floor == [0.0] * 4  # both probes: still bit-exact, just another 'model'


def _set_created(run_dir: Path, when: datetime) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    meta["created"] = when.isoformat(timespec="milliseconds")
    (run_dir / "run.json").write_text(json.dumps(meta))
    import_run(run_dir.parent / "index.sqlite", run_dir)


def test_window_and_previous_run_from_the_index(tmp_path):
    day = datetime(2026, 10, 1, 6, tzinfo=timezone.utc)
    runs = []
    for i, version in enumerate(["1", "1", "2", "2", "2"]):
        out = _run(tmp_path, f"r{i}", n=2, probe=0, backends=("toy",), backend_options={"toy": {"version": version}})
        _set_created(out, day + timedelta(days=7 * i))
        runs.append(out)
    index = tmp_path / "runs" / "index.sqlite"
    w = window(index, "toy", parse_when("2026-10-01"), parse_when("2026-10-31", end_of_day=True), None)
    assert [r.name for r in w.runs] == ["r0", "r1", "r2", "r3", "r4"]
    assert w.current.name == "r4" and w.baseline.name == "r2"  # the earliest with the latest's declared model
    assert len(w.declared_changes) == 1 and "toy-noise@1 → toy-noise@2" in w.declared_changes[0]
    w = window(index, "toy", parse_when("2026-10-01"), parse_when("2026-10-10", end_of_day=True), None)
    assert (w.baseline.name, w.current.name) == ("r0", "r1")
    with pytest.raises(UserError, match="has 1 runs of 'toy'"):
        window(index, "toy", parse_when("2026-10-28"), None, None)
    with pytest.raises(UserError, match="has 0 runs of 'toy' on prompt set 'canary'"):
        window(index, "toy", None, None, "canary")
    assert previous_run(index, find_run(index, json.loads((runs[3] / "run.json").read_text())["run_id"]),
                        ("toy",)).name == "r2"
    now = datetime(2026, 11, 30, tzinfo=timezone.utc)
    assert parse_when("30d", now=now) == datetime(2026, 10, 31, tzinfo=timezone.utc)


def test_commands_turn_bad_input_into_exit_code_2(tmp_path, capsys):
    from vbench_suite.cli import main

    assert main(["drift", "--backend", "runway", "--since", "30d", "--index", str(tmp_path / "none.sqlite")]) == 2
    assert "no run index" in capsys.readouterr().err
    assert main(["drift", "--backend", "runway", "--since", "last month"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main(["drift", "--backend", "runway", "--current", "x"]) == 2
    assert main(["canary", "--backend", "no-such-backend", "--runs-dir", str(tmp_path)]) == 2
    assert "Unknown backend" in capsys.readouterr().err
    assert main(["canary", "--backend", BACKEND, "--probe", "-1", "--runs-dir", str(tmp_path)]) == 2


def test_canary_first_run_is_indexed_and_has_nothing_to_compare(tmp_path, capsys, monkeypatch):
    from vbench_suite.cli import main
    from vbench_suite.drift.history import indexed_runs

    monkeypatch.chdir(tmp_path)
    suite = write_shapes_suite(tmp_path / "suite.yaml", n=2)
    args = ["canary", "--backend", BACKEND, "--suite", str(suite), "--runs-dir", str(tmp_path / "runs"),
            "--probe", "1", "--metrics", "shapes_adherence"]
    assert main(args + ["--out", str(tmp_path / "runs" / "d1")]) == 0
    out = capsys.readouterr().out
    assert "nothing to compare yet" in out and "reproducibility of drift-toy: bit-exact" in out
    assert main(args + ["--out", str(tmp_path / "runs" / "d2"), "--against", "none"]) == 0
    runs = indexed_runs(tmp_path / "runs" / "index.sqlite")
    assert [r.name for r in runs] == ["d1", "d2"] and all(r.backends == (BACKEND,) for r in runs)
    meta = json.loads((tmp_path / "runs" / "d2" / "run.json").read_text())
    assert meta["seed"] == 0 and meta["reuse"] == "never" and meta["probe"][BACKEND]["class"] == "bit-exact"
