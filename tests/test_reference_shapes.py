"""Backend 'reference-shapes': renders shapes-world prompts, refuses the rest honestly."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vbench_suite.backends import create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.keys import file_sha256, generation_key
from vbench_suite.shapes import check_adherence, parse_prompt, render
from vbench_suite.shapes.render import RENDERER_VERSION
from vbench_suite.types import GenerationRequest
from vbench_suite.video.read import read_video

PROMPT = "two green triangles move right on a gray background"


def _generate(tmp_path: Path, name: str, **request):
    backend = create_backend("reference-shapes")
    req = GenerationRequest(prompt_id=name, **request)
    return req, backend.generate(req, GenerationContext(out_path=tmp_path / f"{name}.mp4"))


def test_renders_the_prompt(tmp_path: Path) -> None:
    req, result = _generate(tmp_path, "a", prompt=PROMPT, duration_s=2.0, fps=8, resolution=(96, 64), seed=11)
    assert result.status == "ok", result.error
    assert result.video_path == str(tmp_path / "a.mp4")
    video = read_video(result.video_path)
    assert video.frames.shape == (16, 64, 96, 3) and video.fps == 8
    expected = render(parse_prompt(PROMPT), 16, (96, 64), seed=11)
    # Stored losslessly (H.264 4:4:4, CRF 0): only RGB<->YUV rounding remains.
    assert np.abs(video.frames.astype(int) - expected).max() <= 3
    assert check_adherence(video.frames, parse_prompt(PROMPT)).passed
    assert result.video_sha256 == file_sha256(result.video_path)
    assert result.video_seconds == 2.0 and result.cost_usd == 0.0
    assert result.latency.total_s > 0 and result.latency.generating_s > 0 and result.hardware_s > 0
    assert dict(result.latency.stages).keys() == {"rendering", "encoding"}


def test_same_request_same_bytes(tmp_path: Path) -> None:
    _, first = _generate(tmp_path, "a", prompt=PROMPT, seed=3)
    _, again = _generate(tmp_path, "b", prompt=PROMPT, seed=3)
    _, other = _generate(tmp_path, "c", prompt=PROMPT, seed=4)
    assert first.video_sha256 == again.video_sha256 != other.video_sha256


def test_prompts_outside_the_grammar_are_unsupported_not_failed(tmp_path: Path) -> None:
    _, result = _generate(tmp_path, "a", prompt="a drone shot over a foggy forest")
    assert result.status == "failed" and not result.retriable
    assert "not in the shapes world grammar" in result.error
    assert dict(result.info).get("unsupported") is True  # reports count it as unsupported, not as a failure
    assert not (tmp_path / "a.mp4").exists()


def test_a_run_records_out_of_grammar_prompts_as_unsupported(tmp_path: Path) -> None:
    from vbench_suite.cli import main
    from vbench_suite.store.run_folder import RunFolder

    suite = tmp_path / "mixed.yaml"
    suite.write_text("name: mixed\nversion: '1'\nprompts:\n"
                     f"  - id: shapes\n    text: {PROMPT}\n    category: motion\n"
                     "  - id: drone\n    text: a drone shot over a foggy forest\n    category: scenery\n",
                     encoding="utf-8")
    out = tmp_path / "run"
    assert main(["run", "--suite", str(suite), "--backend", "reference-shapes", "--out", str(out), "--no-score",
                 "--no-report", "--no-progress"]) == 0
    by_prompt = {g["prompt_id"]: g["result"] for g in RunFolder(out).generations().values()}
    assert by_prompt["shapes"]["status"] == "ok"
    assert by_prompt["drone"]["info"].get("unsupported") is True and "grammar" in by_prompt["drone"]["error"]


def test_unsupported_requests_fail(tmp_path: Path) -> None:
    _, i2v = _generate(tmp_path, "a", prompt=PROMPT, mode="i2v", images=("x.png",))
    assert i2v.status == "failed" and "mode 'i2v'" in i2v.error
    _, long = _generate(tmp_path, "b", prompt=PROMPT, duration_s=31.0)
    assert long.status == "failed" and "exceeds" in long.error
    _, tiny = _generate(tmp_path, "c", prompt=PROMPT, resolution=(8, 8))
    assert tiny.status == "failed" and "minimum" in tiny.error
    assert all(dict(r.info).get("unsupported") for r in (i2v, long, tiny))


def test_hardware_seconds_are_the_rendering_threads_cpu_time(tmp_path: Path, monkeypatch) -> None:
    """A render that waits 0.3 s while another thread of the process burns CPU: the wait is latency, and the other
    thread's CPU is not this generation's compute (process CPU time or wall time would count one or the other)."""
    import importlib
    import threading
    import time

    shapes_render = importlib.import_module("vbench_suite.shapes.render")  # the package re-exports a `render` function

    real_render = shapes_render.render

    def slow_render(*args, **kwargs):
        time.sleep(0.3)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(shapes_render, "render", slow_render)
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(1000))

    spinner = threading.Thread(target=burn)
    spinner.start()
    try:
        _, result = _generate(tmp_path, "a", prompt=PROMPT, seed=1)
    finally:
        stop.set()
        spinner.join()
    assert result.status == "ok"
    assert result.latency.total_s >= 0.3  # wall time stays in the latency
    assert 0 < result.hardware_s < 0.2
