"""Against the fake vendors: a suite run fits every request to what the vendor's mode accepts (no harness-side
rejections), and `generate` works on a vendor with only a prompt and a duration. Plus the CLI's one-line errors for
`generate` and a `list backends` that never imports torch."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vbench_suite.cli import main
from vbench_suite.fake_vendors import FakeConfig, FakeVendors
from vbench_suite.store.run_folder import RunFolder

FAST = FakeConfig(queue_s=0.01, run_s=0.02, throttle_s=0.05, retry_after_s=0.01)
FAST_OPTIONS = ("poll_interval_s=0.005", "retry_base_delay_s=0.005", "max_retry_after_s=0.02")


@pytest.fixture(scope="module")
def fake():
    with FakeVendors(FAST) as f:
        yield f


@pytest.fixture
def runway_env(fake, monkeypatch):
    monkeypatch.setenv("RUNWAYML_API_SECRET", "sk-TESTSECRET-runway")
    monkeypatch.setenv("VBENCH_RUNWAY_BASE_URL", fake.base_url("runway"))


def test_smoke_suite_on_runway_has_no_harness_side_rejections(runway_env, tmp_path: Path) -> None:
    """The reproduction: 64x64 t2v requests used to be fitted to 960x960, which Runway's text-to-video refuses."""
    out = tmp_path / "run"
    args = ["run", "--suite", "smoke", "--backend", "runway", "--samples", "2", "--out", str(out), "--no-score",
            "--no-report", "--no-progress"]
    for option in FAST_OPTIONS:
        args += ["--option", f"runway.{option}"]
    assert main(args) == 0
    gens = list(RunFolder(out).generations().values())
    assert len(gens) == 16
    unsupported = [g for g in gens if g["result"].get("info", {}).get("unsupported")
                   or "unsupported" in (g["result"].get("error") or "")]
    assert unsupported == []
    assert all(g["result"]["status"] == "ok" for g in gens), [g["result"]["error"] for g in gens]
    t2v = [g for g in gens if g["request"]["mode"] == "t2v"]
    assert len(t2v) == 14
    assert {tuple(g["request"]["resolution"]) for g in t2v} <= {(1280, 720), (720, 1280)}
    assert all("resolution 64x64 -> " in " ".join(g["adjustments"]) for g in gens)  # each change is recorded


def test_generate_on_a_vendor_with_only_a_prompt_and_a_duration(runway_env, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.mp4"
    args = ["generate", "runway", "A red fox trotting through snow", "--duration", "5", "--out", str(out)]
    for option in FAST_OPTIONS:
        args += ["--option", option]
    assert main(args) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "ok" and out.is_file() and out.stat().st_size > 0
    # Unset settings come from Runway's own defaults for text-to-video: nothing was adjusted.
    assert summary["request"]["resolution"] == [1280, 720] and summary["request"]["duration_s"] == 5.0
    assert "adjusted" not in captured.err


def test_generate_fits_given_settings_and_says_so(runway_env, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = ["generate", "runway", "A kite", "--duration", "12", "--resolution", "640x480", "--out",
            str(tmp_path / "k.mp4")]
    for option in FAST_OPTIONS:
        args += ["--option", option]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "adjusted for runway: duration 12s -> 10s" in captured.err
    assert "adjusted for runway: resolution 640x480 -> 1280x720" in captured.err
    assert json.loads(captured.out)["request"]["duration_s"] == 10.0


def test_generate_strict_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "veo", "A lighthouse", "--duration", "5", "--strict-capabilities",
                 "--out", str(tmp_path / "v.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "duration 5s not supported" in err and "--strict-capabilities" in err


def test_generate_without_a_key_fails_only_for_the_key(monkeypatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("RUNWAYML_API_SECRET", raising=False)
    code = main(["generate", "runway", "A red fox trotting through snow", "--duration", "5", "--out",
                 str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "RUNWAYML_API_SECRET" in err


def test_generate_into_a_folder_is_a_one_line_error(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "vbench_suite", "generate", "reference-shapes",
                          "a red circle moves left on a black background", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "is a folder" in res.stderr


def test_generate_unsupported_mode_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "f.png"
    image.write_bytes(b"not really an image")
    code = main(["generate", "reference-shapes", "a red circle moves left on a black background", "--image",
                 str(image), "--out", str(tmp_path / "v.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "does not support mode 'i2v'" in err


def test_list_backends_does_not_import_torch() -> None:
    code = ("import sys, io, contextlib; from vbench_suite.cli import main; buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): rc = main(['list', 'backends'])\n"
            "print(rc, 'torch' in sys.modules, 'transformers' in sys.modules, 'dit-local' in buf.getvalue())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    assert out.split() == ["0", "False", "False", "True"]


def test_generate_option_typo_names_the_valid_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vbench_suite.cli import main

    code = main(["generate", "reference-shapes", "a red circle moves left on a black background",
                 "--option", "sedd=3", "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err
    assert code == 2 and "has no option 'sedd'" in err and "Valid options" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
