"""Temporary files (issue 19 item 4): every temporary name the harness writes shares one prefix, and a resumed run
removes the ones a killed process left in its folder (current and earlier releases' names), nothing else."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from toy_backends import write_suite
from vbench_suite.runner import RunConfig, run_benchmark
from vbench_suite.store.run_folder import RunFolder, write_json_atomic
from vbench_suite.tempfiles import TEMP_PREFIX, is_temp_name, make_temp
from vbench_suite.video import write as write_module

PACKAGE = Path(__file__).resolve().parent.parent / "vbench_suite"



@pytest.fixture(autouse=True)
def _toy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")


def test_a_resume_removes_the_temp_files_a_killed_run_left(tmp_path: Path) -> None:
    config = RunConfig(suite=str(write_suite(tmp_path / "suite.yaml")), backends=("toy",),
                       out=tmp_path / "runs" / "t", score=False)
    folder = RunFolder(run_benchmark(config).run_dir)
    videos = folder.path / "videos" / "toy"
    video = next(videos.glob("*.mp4"))
    left = [videos / ".download-k2v9x1.partial",                      # a remote download (earlier name)
            videos / f".{video.stem}.x8a_k2m1.mp4",                   # a render (earlier name)
            videos / f".{video.name}.copy",                           # a copy of a reused result (earlier name)
            folder.path / ".run.json.a1b2c3",                         # a run.json rewrite (earlier name)
            videos / f"{TEMP_PREFIX}{video.stem}.q1w2e3.mp4",         # today's names
            folder.path / "videos" / f"{TEMP_PREFIX}download.zz.partial"]
    for path in left:
        path.write_bytes(b"half a file")
    kept = [videos / ".keep", folder.path / "notes.txt", videos / "readme.txt"]
    for path in kept:
        path.write_bytes(b"the user's")

    run_benchmark(config)
    assert [p for p in left if p.exists()] == []
    assert all(p.read_bytes() == b"the user's" for p in kept)
    assert video.is_file() and len(folder.generations()) == 2


def test_writers_use_the_one_temp_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(src: str | Path, dst: str | Path) -> None:
        seen.append(Path(src).name)
        real_replace(src, dst)

    monkeypatch.setattr(write_module.os, "replace", spy)
    write_module.write_video(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), dtype=np.uint8), 8)
    write_json_atomic(tmp_path / "run.json", {"a": 1})
    fd, path = make_temp(tmp_path, "download", ".partial")
    os.close(fd)
    seen.append(path.name)
    assert len(seen) == 3 and all(name.startswith(TEMP_PREFIX) and is_temp_name(name) for name in seen), seen


def test_no_module_invents_its_own_temp_name() -> None:
    # Every temporary name in the package goes through vbench_suite.tempfiles (run-folder writers) or lives
    # outside run folders (caches, training outputs, the fakes); a new ad-hoc name in a run folder would escape
    # the resume's cleanup.
    # the feature caches (FVD, drift) and suite files live outside run folders
    allowed = {"tempfiles.py", "metrics/fvd.py", "drift/features.py", "suites.py"}
    pattern = re.compile(r"mkstemp\(|with_name\(f\"\.|prefix=\"\.")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8")) and str(p.relative_to(PACKAGE)) not in allowed]
    assert offenders == []
