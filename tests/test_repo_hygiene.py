"""`make run` must leave a fresh clone's `git status` clean: everything it writes is git-ignored, and the committed
example report lives where `make run` never writes."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def git_checkout() -> None:
    if shutil.which("git") is None or _git("rev-parse", "--is-inside-work-tree").stdout.strip() != "true":
        pytest.skip("not a git checkout (e.g. an unpacked sdist): nothing to keep clean")


def _make_run_outputs() -> tuple[str, str]:
    """The run folder and report folder `make run` writes, read from the Makefile itself."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    out = re.search(r"^RUN_OUT \?= (\S+)$", makefile, re.M)
    assert out, "Makefile must define RUN_OUT"
    run_dir = out.group(1)
    return run_dir, f"reports/{Path(run_dir).name}"


def test_make_run_outputs_are_ignored(git_checkout: None) -> None:
    run_dir, report_dir = _make_run_outputs()
    for path in (f"{run_dir}/generations.jsonl", f"{run_dir}/videos/x.mp4", "runs/index.sqlite",
                 f"{report_dir}/report.html", f"{report_dir}/plots/latency.png", f"{report_dir}/quality.csv"):
        assert _git("check-ignore", "-q", path).returncode == 0, f"{path} would dirty git status after make run"


def test_committed_example_is_tracked_and_not_overwritten(git_checkout: None) -> None:
    _, report_dir = _make_run_outputs()
    assert report_dir != "reports/example"
    tracked = _git("ls-files", "reports").stdout.split()
    assert "reports/example/report.html" in tracked and "reports/example/report.md" in tracked
    assert not any(t.startswith(report_dir + "/") for t in tracked)
