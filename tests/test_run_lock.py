"""One process at a time per run folder (issue 19 item 1): a second `run` into the same folder exits 2 naming the
holder, a killed holder never leaves the folder stuck, and the budget cap counts every billed record line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from toy_backends import write_suite
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.lock import LOCK_FILE, RunFolderBusy, hold_run_folder
from vbench_suite.store.run_folder import GENERATIONS, RunFolder

TESTS = Path(__file__).resolve().parent



@pytest.fixture(autouse=True)
def _toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")
    monkeypatch.setenv("TOY_CALLS_FILE", str(tmp_path / "calls.txt"))


def _cli(tmp_path: Path, out: Path, n: int, delay_s: float) -> tuple[list[str], dict[str, str]]:
    suite = write_suite(tmp_path / "suite.yaml", n)
    env = dict(os.environ, TOY_DELAY_S=str(delay_s), VBENCH_EXTRA_BACKENDS="toy=toy_backends:ToyBackend",
               TOY_CALLS_FILE=str(tmp_path / "calls.txt"),
               PYTHONPATH=os.pathsep.join([str(TESTS.parent), str(TESTS), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "vbench_suite", "run", "--suite", str(suite), "--backend", "toy", "--out", str(out),
           "--no-score", "--no-report", "--no-progress", "--concurrency", "1", "--option", "toy.cost_usd=0.5"]
    return cmd, env


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().split() if path.exists() else []


def test_two_runs_into_one_folder_the_second_refuses(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "shared"
    cmd, env = _cli(tmp_path, out, n=5, delay_s=0.8)
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.pid, *p.communicate(timeout=180), p.returncode) for p in procs]
    codes = sorted(r[3] for r in results)
    assert codes == [0, 2], results
    (winner,) = [r for r in results if r[3] == 0]
    (loser,) = [r for r in results if r[3] == 2]
    err = loser[2].strip().splitlines()
    assert len(err) == 1 and "Traceback" not in loser[2], loser[2]
    assert str(out) in err[0] and f"process {winner[0]}" in err[0], err[0]
    calls = _calls(tmp_path)
    assert len(calls) == 5 and len(set(calls)) == 5  # each request generated (and paid) once
    lines = (out / GENERATIONS).read_text().splitlines()
    assert len(lines) == 5
    meta = RunFolder(out).read_meta()
    assert len(meta["invocations"]) == 1 and meta["billed_usd"] == {"toy": pytest.approx(2.5)}


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "killed"
    cmd, env = _cli(tmp_path, out, n=4, delay_s=1.0)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out / GENERATIONS).exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_FILE).read_text().strip() == str(proc.pid)  # the dead holder's PID is still written
    done = subprocess.run(cmd, env=dict(env, TOY_DELAY_S="0"), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert len(RunFolder(out).generations()) == 4


def test_another_thread_is_refused_the_holding_thread_may_reenter(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    errors: list[BaseException] = []
    with hold_run_folder(folder):
        with hold_run_folder(folder):  # re-entrant: the CLI holds it and run_benchmark takes it again
            pass
        t = threading.Thread(target=lambda: _try_hold(folder, errors))
        t.start()
        t.join()
        assert len(errors) == 1 and isinstance(errors[0], RunFolderBusy)
        assert f"process {os.getpid()}" in str(errors[0])
    with hold_run_folder(folder):  # released
        pass
    assert not folder.exists()  # created by the lock and nothing else written: removed again


def _try_hold(folder: Path, errors: list[BaseException]) -> None:
    try:
        with hold_run_folder(folder):
            pass
    except RunFolderBusy as exc:
        errors.append(exc)


def test_the_budget_counts_every_billed_record_line(tmp_path: Path) -> None:
    # p0 was billed twice (a charged failure, then the retry that succeeded): 3 USD spent, not 2.
    suite = write_suite(tmp_path / "suite.yaml", n=2)
    config = RunConfig(suite=str(suite), backends=("toy",), out=tmp_path / "runs" / "b", score=False,
                       concurrency=1, backend_options={"toy": {"cost_usd": 1.0}})
    folder = RunFolder(run_benchmark(config).run_dir)
    first = json.loads((folder.path / GENERATIONS).read_text().splitlines()[0])
    charged_failure = {**first, "result": {**first["result"], "status": "failed", "retriable": True,
                                           "video_path": None, "error": "vendor failed (charged)"}}
    text = (folder.path / GENERATIONS).read_text()
    (folder.path / GENERATIONS).write_text(json.dumps(charged_failure) + "\n" + text)
    wider = write_suite(tmp_path / "suite.yaml", n=4)
    outcome = run_benchmark(RunConfig(suite=str(wider), backends=("toy",), out=folder.path, score=False,
                                      concurrency=1, budget_usd=3.5, backend_options={"toy": {"cost_usd": 1.0}}))
    assert outcome.stats.generated == {} and outcome.stats.over_budget == {"toy": 2}
    assert folder.billed_usd() == folder.read_meta()["billed_usd"] == {"toy": pytest.approx(3.0)}


def test_two_runs_against_the_fake_vendor_create_each_job_once(tmp_path: Path) -> None:
    from vbench_suite.fake_vendors import FakeConfig, FakeVendors

    suite = tmp_path / "suite.yaml"
    suite.write_text("\n".join(["name: lock-remote", "version: \"1\"", "description: lock tests", "defaults:",
                                "  duration_s: 5.0", "  fps: 24", "  resolution: [1280, 720]", "prompts:"]
                               + [f"  - id: p{i}\n    text: a red square moving {i}\n    category: motion"
                                  for i in range(3)]) + "\n", encoding="utf-8")
    out = tmp_path / "runs" / "remote"
    with FakeVendors(FakeConfig(queue_s=0.3, run_s=1.0)) as fake:
        env = dict(os.environ, RUNWAYML_API_SECRET="sk-TESTSECRET-runway",
                   VBENCH_RUNWAY_BASE_URL=fake.base_url("runway"),
                   PYTHONPATH=os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "vbench_suite", "run", "--suite", str(suite), "--backend", "runway", "--out",
               str(out), "--no-score", "--no-report", "--no-progress", "--concurrency", "1",
               "--option", "runway.poll_interval_s=0.05"]
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        results = [(*p.communicate(timeout=180), p.returncode) for p in procs]
        assert sorted(r[2] for r in results) == [0, 2], results
        creates = fake.created_per_request()
        audit = fake.audit()
    assert len(creates) == 3 and set(creates.values()) == {1}  # each request accepted (and billed) once
    # the fake's audit (what `fake-vendors --audit` writes) agrees, and names the jobs the winner recorded
    assert audit["vendors"]["runway"]["accepted_creates"] == 3 and audit["vendors"]["runway"]["duplicate_creates"] == 0
    recorded = {json.loads(line)["result"]["job_id"] for line in (out / GENERATIONS).read_text().splitlines()}
    assert recorded == {j["job_id"] for j in audit["jobs"]}
    assert len((out / GENERATIONS).read_text().splitlines()) == 3
