"""The CLI: user errors are one line and exit code 2; the commands scripts rely on exist."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vbench_suite.cli import main

TESTS = Path(__file__).resolve().parent


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ, PYTHONPATH=f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", **(env or {}))
    return subprocess.run([sys.executable, "-m", "vbench_suite", *args], capture_output=True, text=True,
                          timeout=300, env=full_env)


def test_help_does_not_import_torch() -> None:
    code = ("import sys; from vbench_suite.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_backend_is_exit_2_with_suggestion(tmp_path: Path) -> None:
    res = _cli("run", "--suite", "smoke", "--backend", "referense-shapes", "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "Unknown backend 'referense-shapes'. Did you mean 'reference-shapes'?" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_broken_prompt_file_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nversion: '1'\nprompts:\n  - id: a\n    text: a red circle moves left\n"
                   "    category: motion\n    duration_s: -3\n", encoding="utf-8")
    for args in (("validate", str(bad)), ("run", "--suite", str(bad), "--backend", "reference-shapes",
                                          "--out", str(tmp_path / "r"))):
        res = _cli(*args)
        assert res.returncode == 2, res.stderr
        assert "bad.yaml" in res.stderr and ":7" in res.stderr and "duration_s" in res.stderr
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "r" / "generations.jsonl").exists()


def test_bad_option_syntax_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(tmp_path / "r"),
                 "--option", "steps=20"])
    assert code == 2
    assert "BACKEND.KEY=VALUE" in capsys.readouterr().err


def test_resume_with_different_seed_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    base = ["run", "--suite", "smoke", "--backend", "reference-shapes", "--out", str(out), "--limit", "1",
            "--no-score", "--no-report", "--no-progress"]
    assert main(base) == 0
    assert main(base[:-3] + ["--no-report", "--no-progress", "--seed", "7"]) == 2
    assert "seed" in capsys.readouterr().err


def test_list_and_validate_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "standard" in out
    assert main(["list", "backends"]) == 0
    assert "reference-shapes" in capsys.readouterr().out
    assert main(["validate", "standard"]) == 0
    assert "OK" in capsys.readouterr().out


def test_generate_one_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "one.mp4"
    code = main(["generate", "reference-shapes", "a red circle moves left on a black background", "--seed", "3",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr()
    assert out.stat().st_size > 0
    import av

    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 16 or sum(1 for _ in c.decode(video=0)) == 16
