"""The `command` backend against a stand-in generation script (tests/fake_generate/generate.py): argv built from a
template without a shell, each mode, the failure modes (non-zero exit, no output, not a video, a hang), process-group
cleanup, secrets kept off command lines and out of the run folder, and a whole `vbench-suite run`."""
from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from vbench_suite.backends import create_backend
from vbench_suite.backends.base import GenerationContext
from vbench_suite.backends.command import CommandBackend
from vbench_suite.backends.command.template import CommandTemplate, TemplateValueError
from vbench_suite.backends.hardware import ASSUMED_USD_PER_CPU_HOUR, ASSUMED_USD_PER_GPU_HOUR
from vbench_suite.cli import main
from vbench_suite.errors import ConfigError
from vbench_suite.tempfiles import TEMP_PREFIX, make_temp_dir, remove_temp_files
from vbench_suite.types import GenerationRequest
from vbench_suite.video.read import read_video

SCRIPT = Path(__file__).resolve().parent / "fake_generate" / "generate.py"
PY = shlex.quote(sys.executable)
ARGS = "--seed {seed} --frames {frames} --width {width} --height {height} --fps {fps}"
T2V = f"{PY} {SCRIPT} --prompt={{prompt}} {ARGS} --out {{output}}"
I2V = f"{PY} {SCRIPT} --prompt={{prompt}} {ARGS} --image {{image}} --out {{output}}"
KEYFRAMES = f"{PY} {SCRIPT} --prompt={{prompt}} {ARGS} --first {{first_frame}} --last {{last_frame}} --out {{output}}"
NASTY = 'a "quoted" fox; rm -rf / && echo $(whoami) `id` > /tmp/x\nsecond line'
SECRET = "sk-test-do-not-leak-4f9a2c"


@pytest.fixture(autouse=True)
def _small_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in ("FAKE_GEN_BEHAVIOUR", "FAKE_GEN_RECORD", "FAKE_GEN_PIDFILE"):
        monkeypatch.delenv(name, raising=False)


def _backend(**options: object) -> CommandBackend:
    options.setdefault("template", T2V)
    options.setdefault("device", "cpu")
    return CommandBackend(**options)  # type: ignore[arg-type]


def _request(prompt: str = "a red circle", mode: str = "t2v", seed: int = 3, **kw: object) -> GenerationRequest:
    return GenerationRequest(prompt_id="p1", prompt=prompt, mode=mode, seed=seed,  # type: ignore[arg-type]
                             duration_s=1.0, fps=8, resolution=(32, 32), **kw)  # type: ignore[arg-type]


def _image(path: Path, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (32, 32), colour).save(path)
    return str(path)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _generate(backend: CommandBackend, request: GenerationRequest, out: Path):
    out.parent.mkdir(parents=True, exist_ok=True)
    return backend.generate(request, GenerationContext(out_path=out))


# --- the template -------------------------------------------------------------------------------------------------

def test_each_placeholder_fills_exactly_one_argument_and_nothing_is_evaluated() -> None:
    tpl = CommandTemplate.parse("gen --prompt {prompt} --tag=x{prompt_id}y --seed {seed:04d} '{{literal}}'")
    argv = tpl.argv({"prompt": NASTY, "prompt_id": "p 1", "seed": 7})
    assert argv == ["gen", "--prompt", NASTY, "--tag=xp 1y", "--seed", "0007", "{literal}"]
    assert tpl.fields == {"prompt", "prompt_id", "seed"}


@pytest.mark.parametrize("text, problem", [
    ("gen --x {nope}", "unknown placeholder {nope}"),
    ("gen --x {prompt.__class__}", "unknown placeholder"),
    ("gen --x {prompt!r}", "unknown placeholder"),
    ("gen --x {}", "unknown placeholder"),
    ("{prompt} --x", "program to run"),
    ("gen --x 'unclosed", "check its quotes"),
    ("gen --seed {seed:zz}", "format spec"),
    ("   ", "non-empty"),
])
def test_bad_templates_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        CommandTemplate.parse(text)


def test_a_value_that_would_read_as_an_option_is_refused() -> None:
    tpl = CommandTemplate.parse("gen --prompt {prompt} --p2={prompt}")
    with pytest.raises(TemplateValueError, match="--flag=\\{prompt\\}"):
        tpl.argv({"prompt": "--out=/etc/passwd"})
    assert CommandTemplate.parse("gen --prompt={prompt}").argv({"prompt": "-x"}) == ["gen", "--prompt=-x"]


@pytest.mark.parametrize("options, problem", [
    ({"modes": "t2v,i2v"}, "mode i2v needs {image}"),
    ({"template": I2V}, "uses {image}"),
    ({"modes": "keyframes", "keyframes_template": I2V}, "needs {first_frame} and {last_frame}"),
    ({"template": f"{PY} {SCRIPT} --prompt={{prompt}}"}, "no {output} placeholder"),
    ({"frame_rule": "4x+1"}, "frame_rule"),
    ({"resolutions": "wide"}, "WIDTHxHEIGHT"),
    ({"modes": "t2v,v2v"}, "modes must name"),
    ({"timeout_s": 0}, "timeout_s must be a positive"),
    ({"device": "tpu"}, "device must be one of"),
    ({"usd_per_gpu_hour": -1}, "usd_per_gpu_hour"),
])
def test_option_problems_name_the_option(options: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        _backend(**options)


def test_declared_capabilities_fit_requests() -> None:
    b = _backend(modes="t2v,i2v", i2v_template=I2V, frame_rule="4k+1", fps="16", resolutions="48x32,32x48",
                 default_resolution="48x32", default_fps=16)
    caps = b.capabilities()
    assert caps.modes == ("t2v", "i2v")
    fitted, notes = caps.fit(_request())
    assert fitted.fps == 16 and fitted.resolution == (48, 32) and fitted.num_frames == 17  # 16 -> 4k+1
    assert len(notes) == 3
    assert caps.check(_request(mode="i2v")) is not None  # i2v without an image is unsupported, never sent
    assert caps.for_mode("t2v").defaults() == (2.0625, (48, 32), 16)  # 2 s at 16 fps -> 33 frames (4k+1)


def test_not_configured_without_a_template_or_a_program() -> None:
    assert "command.template" in (CommandBackend().readiness() or "")
    assert "not found" in (_backend(template="no-such-program-xyz --out {output}").readiness() or "")
    assert "not a folder" in (_backend(workdir="/no/such/folder").readiness() or "")
    assert _backend().readiness() is None


# --- generation ---------------------------------------------------------------------------------------------------

def test_t2v_runs_the_script_with_the_prompt_as_one_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_GEN_RECORD", str(record))
    b = _backend(workdir=str(tmp_path))
    out = tmp_path / "run" / "videos" / "command" / "k1.mp4"
    result = _generate(b, _request(NASTY), out)
    assert result.status == "ok", result.error
    seen = json.loads(record.read_text())
    assert f"--prompt={NASTY}" in seen["argv"] and seen["cwd"] == str(tmp_path)
    video = read_video(out)
    assert (video.num_frames, video.width, video.height) == (8, 32, 32) and result.video_path == str(out)
    assert result.video_seconds == pytest.approx(1.0)
    assert os.listdir(out.parent) == ["k1.mp4"]  # the temporary folder is gone
    info = dict(result.info)
    # on a CPU: the script's own CPU seconds, charged at the stated default vCPU price
    assert info["device"] == "cpu" and info["rate_source"] == "default" and info["rate_option"] == "usd_per_cpu_hour"
    assert result.hardware_s == pytest.approx(info["cpu_s"], abs=1e-3) and result.hardware_s > 0
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * ASSUMED_USD_PER_CPU_HOUR)
    assert dict(result.latency.stages)["command"] == pytest.approx(result.latency.generating_s)


def test_gpu_accounting_is_wall_time_times_gpus_at_the_given_price(tmp_path: Path) -> None:
    b = _backend(device="cuda", gpus=4, usd_per_gpu_hour=3.0)
    result = _generate(b, _request(), tmp_path / "v.mp4")
    info = dict(result.info)
    assert result.hardware_s == pytest.approx(result.latency.generating_s * 4)
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * 3.0)
    assert (info["device_count"], info["rate_source"], info["hardware_usd_per_hour"]) == (4, "option", 3.0)
    assert b.fingerprint().to_dict()["settings"]["device"] == "cuda"
    unpriced = _generate(_backend(device="cuda"), _request(), tmp_path / "w.mp4")
    assert dict(unpriced.info)["hardware_usd_per_hour"] == ASSUMED_USD_PER_GPU_HOUR
    assert dict(unpriced.info)["rate_source"] == "default"


def test_i2v_and_keyframes_pass_their_images(tmp_path: Path) -> None:
    red, blue = _image(tmp_path / "red.png", (250, 0, 0)), _image(tmp_path / "blue.png", (0, 0, 250))
    b = _backend(modes="t2v,i2v,keyframes", i2v_template=I2V, keyframes_template=KEYFRAMES)
    assert b.capabilities().for_mode("keyframes").keyframes == "first_and_last"
    i2v = _generate(b, _request(mode="i2v", images=(red,)), tmp_path / "i2v.mp4")
    assert i2v.status == "ok", i2v.error
    first = read_video(tmp_path / "i2v.mp4").frames[0].reshape(-1, 3).mean(0)
    assert first[0] > 200 and first[2] < 50
    kf = _generate(b, _request(mode="keyframes", first_frame=blue, last_frame=red), tmp_path / "kf.mp4")
    assert kf.status == "ok", kf.error
    frames = read_video(tmp_path / "kf.mp4").frames
    assert frames[0].reshape(-1, 3).mean(0)[2] > 200 and frames[-1].reshape(-1, 3).mean(0)[0] > 200


def test_output_glob_finds_a_video_the_script_names_itself(tmp_path: Path) -> None:
    b = _backend(template=f"{PY} {SCRIPT} --prompt={{prompt}} {ARGS} --out-dir {{tmpdir}}", output_glob="*.mp4")
    result = _generate(b, _request(seed=5), tmp_path / "v.mp4")
    assert result.status == "ok", result.error and (tmp_path / "v.mp4").is_file()


def test_same_request_same_video_and_fingerprint_follows_the_script(tmp_path: Path) -> None:
    script = tmp_path / "gen.py"
    script.write_text(SCRIPT.read_text())
    template = f"{PY} gen.py --prompt={{prompt}} {ARGS} --out {{output}}"
    b = _backend(template=template, workdir=str(tmp_path))
    a1, a2 = (_generate(b, _request(), tmp_path / f"{n}.mp4") for n in ("a", "b"))
    assert a1.video_sha256 == a2.video_sha256
    assert _generate(b, _request(seed=4), tmp_path / "c.mp4").video_sha256 != a1.video_sha256
    before = _backend(template=template, workdir=str(tmp_path)).fingerprint()
    assert before.model == "gen.py"
    script.write_text(SCRIPT.read_text() + "\n# changed\n")
    after = _backend(template=template, workdir=str(tmp_path)).fingerprint()
    assert after.version != before.version
    assert _backend(template=template + " --fps 8", workdir=str(tmp_path)).fingerprint().version != after.version


# --- failures are results -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour, message", [
    ("fail", "exited with status 2; its last output: loading model... | RuntimeError: stand-in failure"),
    ("nothing", "exited with status 0 but wrote no video"),
    ("garbage", "not a usable video"),
])
def test_failures_give_a_clean_failed_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviour: str,
                                             message: str) -> None:
    monkeypatch.setenv("FAKE_GEN_BEHAVIOUR", behaviour)
    out = tmp_path / "videos" / "v.mp4"
    result = _generate(_backend(device="cuda", usd_per_gpu_hour=2.0), _request(), out)
    assert result.status == "failed" and not result.retriable
    assert message in (result.error or "")
    assert os.listdir(out.parent) == []  # nothing under the final name, no temporary folder left
    # the GPU was held for the failed attempt too: charged like a success
    assert result.hardware_s == pytest.approx(result.latency.generating_s) and result.hardware_s > 0
    assert result.cost_usd == pytest.approx(result.hardware_s / 3600 * 2.0)


def test_a_program_that_cannot_start_fails_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "gen.sh"
    script.write_text("#!/bin/sh\nexit 0\n")  # not executable
    b = _backend(template=f"{script} --out {{output}}")
    result = _generate(b, _request(), tmp_path / "v" / "v.mp4")
    assert result.status == "failed" and "cannot start" in (result.error or "")


def test_a_hanging_script_is_killed_with_everything_it_started(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_GEN_BEHAVIOUR", "hang")
    monkeypatch.setenv("FAKE_GEN_PIDFILE", str(pidfile))
    start = time.monotonic()
    result = _generate(_backend(timeout_s=3), _request(), tmp_path / "videos" / "v.mp4")
    assert time.monotonic() - start < 60  # not the script's 300 s
    assert result.status == "failed" and result.retriable
    assert "did not finish within timeout_s=3 s" in (result.error or "")
    assert not _alive(int(pidfile.read_text()))  # the child it started went with it
    assert os.listdir(tmp_path / "videos") == []


def test_a_child_left_running_after_success_is_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "child.pid"
    monkeypatch.setenv("FAKE_GEN_BEHAVIOUR", "straggler")
    monkeypatch.setenv("FAKE_GEN_PIDFILE", str(pidfile))
    result = _generate(_backend(), _request(), tmp_path / "v.mp4")
    assert result.status == "ok", result.error
    assert not _alive(int(pidfile.read_text()))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is a Linux feature")
def test_a_command_does_not_outlive_a_harness_killed_with_sigkill(tmp_path: Path) -> None:
    # A SIGKILLed harness cannot end the command's group; before, the command ran on (and wrote) beside the resume.
    import signal
    import subprocess

    pidfile = tmp_path / "command.pid"
    command = [sys.executable, "-c", f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); "
                                     "time.sleep(300)"]
    harness = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from vbench_suite.backends.command.process import run_process; "
        f"run_process({command!r}, Path({str(tmp_path)!r}), {{}}, 600, Path({str(tmp_path)!r}))")])
    deadline = time.monotonic() + 60
    while not (pidfile.is_file() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    assert _alive(pid)
    harness.send_signal(signal.SIGKILL)
    harness.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


# --- secrets ------------------------------------------------------------------------------------------------------

def test_secrets_stay_off_the_command_line_and_out_of_the_script_env(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    record = tmp_path / "record.json"
    monkeypatch.setenv("FAKE_GEN_RECORD", str(record))
    monkeypatch.setenv("RUNWAYML_API_SECRET", SECRET)
    monkeypatch.setenv("HF_TOKEN", SECRET + "-hf")
    assert _generate(_backend(), _request(), tmp_path / "a.mp4").status == "ok"
    seen = json.loads(record.read_text())
    assert "RUNWAYML_API_SECRET" not in seen["env"] and "HF_TOKEN" not in seen["env"]
    assert SECRET not in json.dumps(seen["argv"])
    assert _generate(_backend(pass_env="HF_TOKEN"), _request(), tmp_path / "b.mp4").status == "ok"
    assert json.loads(record.read_text())["env"]["HF_TOKEN"] == SECRET + "-hf"  # only through the environment
    with pytest.raises(ConfigError, match="contains the value of RUNWAYML_API_SECRET") as info:
        _backend(template=T2V + f" --key {SECRET}")
    assert SECRET not in str(info.value)


def test_a_secret_the_script_prints_is_redacted_from_the_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "leak.py"
    script.write_text("import os, sys\nprint('auth failed with', os.environ['HF_TOKEN'], file=sys.stderr)\n"
                      "sys.exit(1)\n")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    result = _generate(_backend(template=f"{PY} {script} --out {{output}}", pass_env="HF_TOKEN"), _request(),
                       tmp_path / "v.mp4")
    assert result.status == "failed" and "auth failed with ***" in (result.error or "")
    assert SECRET not in (result.error or "")


# --- temporary folders and the whole run --------------------------------------------------------------------------

def test_a_temporary_folder_a_killed_run_left_is_removed_whole(tmp_path: Path) -> None:
    videos = tmp_path / "videos" / "command"
    videos.mkdir(parents=True)
    left = make_temp_dir(videos, "k1")
    (left / "samples").mkdir()
    (left / "samples" / "prompt_0000.mp4").write_bytes(b"half")
    kept = videos / "k0.mp4"
    kept.write_bytes(b"a finished video")
    assert left.name.startswith(TEMP_PREFIX)
    assert remove_temp_files(tmp_path / "videos", in_videos=True) == [left]
    assert not left.exists() and kept.read_bytes() == b"a finished video"


def _suite(path: Path) -> Path:
    path.write_text("\n".join([
        "name: command-suite", 'version: "1"', "description: command backend end to end", "defaults:",
        "  duration_s: 1", "  fps: 8", "  resolution: [32, 32]", "prompts:",
        "  - id: t1", "    text: a red circle moves left; echo $(id)", "    category: motion",
        "  - id: i1", "    text: a blue square stays still", "    category: identity", "    mode: i2v",
        '    image: "shapes:a blue square stays still on a white background#frame=0"']) + "\n", encoding="utf-8")
    return path


def test_vbench_suite_run_with_the_command_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNWAYML_API_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)  # the report goes to ./reports/<run name>/
    out = tmp_path / "runs" / "cmd"
    argv = ["run", "--suite", str(_suite(tmp_path / "suite.yaml")), "--backend", "command", "--out", "runs/cmd",
            "--no-score", "--no-progress", "--option", f"command.template={T2V}", "--option",
            f"command.i2v_template={I2V}", "--option", "command.modes=t2v,i2v", "--option", "command.device=cpu"]
    assert main(argv) == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["backend"] == "command"]
    assert {r["prompt_id"] for r in ok} == {"t1", "i1"}
    assert all(r["result"]["status"] == "ok" and r["result"]["hardware_s"] > 0 for r in ok), ok
    assert (tmp_path / "reports" / "cmd" / "report.html").is_file()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "suite.yaml"]
    assert not [p for p in written if TEMP_PREFIX in str(p)]
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert main([*argv, "--no-report"]) == 0  # resume: nothing left to generate
    assert len((out / "generations.jsonl").read_text().splitlines()) == len(records)


def test_list_backends_names_both_new_backends(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "backends"]) == 0
    out = capsys.readouterr().out
    assert "command" in out and "opensora" in out and "command.template" in out
    assert create_backend("command").capabilities().modes == ("t2v",)
