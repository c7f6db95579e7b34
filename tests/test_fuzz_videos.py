"""Fuzzing the video reader and `vbench-suite score` (issue 19): whatever bytes a video file holds, the reader
returns frames or raises a `VideoError` of one bounded line, and `score` on a folder holding that file beside good
ones exits with a documented code (0 anything scored, 1 nothing scored for another reason, 2 no file usable), never
a traceback, prints bounded lines, and still scores the good files.

Cases start from small real files (H.264 mp4 and mov, GIF, .npy, PNG) and are mutated: truncation, byte flips,
inserted or appended garbage, deleted or duplicated ranges, a renamed suffix; or are built odd on purpose: sizes
like 1x1, 2x2, 16x1024, 1024x16, 1 to 3 frames, PNG headers claiming up to 2^31 pixels a side (decompression
bombs), .npy headers claiming huge shapes, empty files and text renamed to a video suffix. `make test` runs a small
derandomised sample (well under a minute on 2 cores); `pytest -m slow tests/test_fuzz_videos.py -s` runs the long
counted campaign and prints its figures.
"""
from __future__ import annotations

import contextlib
import io
import json
import random
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest_metrics import moving_video
from test_fuzz_prompts import Op, apply_ops
from vbench_suite.cli import main
from vbench_suite.errors import MAX_LINE_CHARS, MetricUnavailable, VideoError
from vbench_suite.video.read import READABLE_SUFFIXES, open_video

CLI_PREFIX = "vbench-suite: error: "
MAX_READER_MESSAGE = 1000
"""A reader error names the file and the reason in one line of at most this many characters."""
MAX_STDOUT_LINE = 420
"""`score` table and skipped-file lines (group names and file names here are short)."""
GOOD = ("good-0.mp4", "good-1.npy")
"""Two well-formed files scored beside every fuzzed one: both must always be scored."""
METRIC = "lpips_temporal"
"""The metric the CLI checks run: it reads every frame of every file at native size (so odd sizes reach the
trunk), and costs milliseconds per small video."""


# ------------------------------------------------------------------------------------------------- base files

def _mp4_bytes(frames: np.ndarray, container: str = "mp4", pix_fmt: str = "yuv420p") -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as c:
        s = c.add_stream("libx264", rate=Fraction(8))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return buf.getvalue()


def _gif_bytes(frames: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    images = [Image.fromarray(f) for f in frames]
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=125, loop=0)
    return buf.getvalue()


def _png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


@lru_cache(maxsize=None)
def base_files() -> dict[str, tuple[str, bytes]]:
    """name -> (suffix, bytes) of small real files (16 frames of 40x32 unless the name says otherwise)."""
    video = moving_video(16, h=32, w=40, seed=3)
    return {"mp4": (".mp4", _mp4_bytes(video)), "mov": (".mov", _mp4_bytes(video, "mov")),
            "gif": (".gif", _gif_bytes(video)), "npy": (".npy", _npy_bytes(video)), "png": (".png", _png_bytes(video[0]))}


def odd_file(kind: str, width: int, height: int, frames: int) -> tuple[str, bytes]:
    """A well-formed file of an odd size or length (mp4 needs even sides in yuv420p, so odd sides use yuv444p)."""
    video = np.random.default_rng(width * 7 + height * 13 + frames).integers(0, 256, (frames, height, width, 3),
                                                                            dtype=np.uint8)
    if kind == "mp4":
        even = width % 2 == 0 and height % 2 == 0
        return ".mp4", _mp4_bytes(video, pix_fmt="yuv420p" if even else "yuv444p")
    if kind == "gif":
        return ".gif", _gif_bytes(video)
    if kind == "png":
        return ".png", _png_bytes(video[0])
    return ".npy", _npy_bytes(video)


def png_bomb(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose header claims width x height RGB pixels."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 193)) + \
        chunk(b"IEND", b"")


def npy_claiming(shape: tuple[int, ...], dtype: str = "|u1", payload: int = 64) -> bytes:
    """An .npy header claiming `shape` of `dtype`, followed by only `payload` bytes."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(payload)


TEXT = b"meeting notes, not a video\n" * 8


# --------------------------------------------------------------------------------------------------- mutations

@st.composite
def cases(draw: Any) -> tuple[str, bytes]:
    """(suffix, bytes) of one fuzzed file."""
    pick = draw(st.sampled_from(["mutated"] * 6 + ["odd", "odd", "bomb", "npy_header", "text", "empty"]))
    if pick == "odd":
        side = st.sampled_from([1, 2, 3, 4, 15, 16, 17, 30, 31, 32, 33, 64, 1024])
        suffix, data = odd_file(draw(st.sampled_from(["mp4", "gif", "png", "npy"])), draw(side), draw(side),
                                draw(st.integers(1, 3)))
    elif pick == "bomb":
        big = st.integers(1, 2**31 - 1)
        suffix, data = ".png", png_bomb(draw(big), draw(big))
    elif pick == "npy_header":
        dim = st.sampled_from([0, 1, 3, 16, 10**4, 10**6, 2**40])
        shape = tuple(draw(dim) for _ in range(draw(st.integers(0, 5))))
        suffix, data = ".npy", npy_claiming(shape, draw(st.sampled_from(["|u1", "<f4", "|O", "<i8", "|b1"])))
    elif pick == "text":
        suffix, data = draw(st.sampled_from([".mp4", ".gif", ".png", ".npy", ".webm", ".mov"])), TEXT
    elif pick == "empty":
        suffix, data = draw(st.sampled_from(READABLE_SUFFIXES)), b""
    else:
        suffix, data = base_files()[draw(st.sampled_from(sorted(base_files())))]
        position = st.integers(0, 20_000)
        op = st.one_of(
            st.tuples(st.just("flip"), position, st.integers(1, 255)),
            st.tuples(st.just("truncate"), position, st.none()),
            st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=64)),
            st.tuples(st.just("append"), position, st.binary(min_size=1, max_size=600)),
            st.tuples(st.just("delete"), position, st.integers(1, 400)),
            st.tuples(st.just("duplicate"), position, st.integers(1, 400)))
        data = apply_ops(data, draw(st.lists(op, min_size=1, max_size=4)))
    if draw(st.integers(0, 9)) == 0:  # renamed to another readable suffix
        suffix = draw(st.sampled_from(READABLE_SUFFIXES))
    return suffix, data


def random_case(rng: random.Random) -> tuple[str, bytes]:
    """The plain-`random` twin of `cases` (for the counted campaign)."""
    pick = rng.choice(["mutated"] * 6 + ["odd", "odd", "bomb", "npy_header", "text", "empty"])
    sides = [1, 2, 3, 4, 15, 16, 17, 30, 31, 32, 33, 64, 1024]
    if pick == "odd":
        suffix, data = odd_file(rng.choice(["mp4", "gif", "png", "npy"]), rng.choice(sides), rng.choice(sides),
                                rng.randint(1, 3))
    elif pick == "bomb":
        suffix, data = ".png", png_bomb(rng.randint(1, 2**31 - 1), rng.randint(1, 2**31 - 1))
    elif pick == "npy_header":
        shape = tuple(rng.choice([0, 1, 3, 16, 10**4, 10**6, 2**40]) for _ in range(rng.randint(0, 5)))
        suffix, data = ".npy", npy_claiming(shape, rng.choice(["|u1", "<f4", "|O", "<i8", "|b1"]))
    elif pick == "text":
        suffix, data = rng.choice([".mp4", ".gif", ".png", ".npy", ".webm", ".mov"]), TEXT
    elif pick == "empty":
        suffix, data = rng.choice(READABLE_SUFFIXES), b""
    else:
        suffix, data = base_files()[rng.choice(sorted(base_files()))]
        ops: list[Op] = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choice(["flip", "truncate", "insert", "append", "delete", "duplicate"])
            arg: Any = {"flip": rng.randint(1, 255), "truncate": None,
                        "insert": rng.randbytes(rng.randint(1, 64)), "append": rng.randbytes(rng.randint(1, 600)),
                        "delete": rng.randint(1, 400), "duplicate": rng.randint(1, 400)}[kind]
            ops.append((kind, rng.randrange(20_000), arg))
        data = apply_ops(data, ops)
    if rng.randrange(10) == 0:
        suffix = rng.choice(READABLE_SUFFIXES)
    return suffix, data


# ------------------------------------------------------------------------------------------------------ checks

def check_reader(path: Path) -> str:
    """Stream every frame of `path` (memory: one frame): 'read' with well-formed frames, or 'refused' with a
    `VideoError` of one line of at most MAX_READER_MESSAGE characters naming the file. Anything else raises."""
    try:
        with open_video(path) as stream:
            count = 0
            for frame in stream.frames():
                assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.size > 0
                count += 1
            assert count >= 1
    except VideoError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) <= MAX_READER_MESSAGE, message[:2000]
        assert str(path) in message, message[:300]
        return "refused"
    return "read"


def score_folder(folder: Path, case_name: str) -> tuple[int, str, str, dict[str, Any]]:
    """`vbench-suite score FOLDER --metrics lpips_temporal` in this process. Any exception other than the CLI's
    own return fails the test: that is what a user would see as a traceback."""
    out, err = io.StringIO(), io.StringIO()
    json_path = folder.parent / f"{folder.name}.json"
    json_path.unlink(missing_ok=True)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["score", str(folder), "--metrics", METRIC, "--json", str(json_path)])
    data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    return code, out.getvalue(), err.getvalue(), data


def check_score(folder: Path, case_name: str) -> str:
    """The good files are scored whatever the fuzzed file holds; exit code and output are well-formed. Returns
    'scored' or 'skipped' for the fuzzed file."""
    code, stdout, stderr, data = score_folder(folder, case_name)
    assert code in (0, 1, 2), (code, stderr[-2000:])
    assert code == 0, (code, stderr[-2000:], stdout[-2000:])  # the good files always score
    assert "Traceback" not in stdout + stderr
    for line in stderr.splitlines():
        assert len(line) <= len(CLI_PREFIX) + MAX_LINE_CHARS, line[:1000]
    for line in stdout.splitlines():
        assert len(line) <= MAX_STDOUT_LINE, line[:1000]
    rows = {r["key"]: r for r in data[METRIC]["rows"]}
    for good in GOOD:
        assert rows[good]["status"] == "ok" and rows[good]["value"] is not None, rows.get(good)
    fuzzed = rows.get(case_name)
    if fuzzed is not None and fuzzed["status"] == "ok":
        return "scored"
    skipped = {s["file"] for s in data["skipped"]}
    assert case_name in skipped, (case_name, data["skipped"])  # a file left out is listed with its reason
    return "skipped"


def write_good(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / GOOD[0]).write_bytes(_mp4_bytes(moving_video(16, h=32, w=40, seed=1)))
    np.save(folder / GOOD[1], moving_video(12, h=32, w=40, seed=2, speed=3))


@pytest.fixture(scope="module")
def lpips_ready() -> None:
    from vbench_suite.metrics.lpips import load_lpips

    try:
        load_lpips("alex")
    except MetricUnavailable as exc:
        pytest.skip(f"LPIPS weights not installed: {exc}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with the good files; every example rewrites its one fuzzed file (module-scoped: hypothesis
    examples share it)."""
    folder = tmp_path_factory.mktemp("fuzz-videos") / "videos"
    write_good(folder)
    return folder


def put_case(folder: Path, suffix: str, data: bytes) -> Path:
    for old in folder.glob("case.*"):
        old.unlink()
    path = folder / f"case{suffix}"
    path.write_bytes(data)
    return path


FAST = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
LONG = settings(FAST, max_examples=3000, derandomize=False)


@FAST
@given(case=cases())
def test_reader_returns_frames_or_one_clear_line(workdir: Path, case: tuple[str, bytes]) -> None:
    check_reader(put_case(workdir, *case))


@settings(FAST, max_examples=12)
@given(case=cases())
def test_score_scores_the_good_files_whatever_lies_beside_them(lpips_ready: None, workdir: Path,
                                                              case: tuple[str, bytes]) -> None:
    path = put_case(workdir, *case)
    check_score(workdir, path.name)


def test_score_subprocess_with_many_bad_files(lpips_ready: None, tmp_path: Path) -> None:
    """The real command, in its own process, over one folder of every kind of bad file at once."""
    folder = tmp_path / "videos"
    write_good(folder)
    bad = {"bomb.png": png_bomb(240_000, 100_000), "tiny.mp4": odd_file("mp4", 2, 2, 3)[1],
           "thin.gif": odd_file("gif", 16, 1024, 2)[1], "wide.npy": odd_file("npy", 1024, 16, 1)[1],
           "one.mp4": odd_file("mp4", 1, 1, 1)[1], "notes.mp4": TEXT, "empty.webm": b"",
           "trunc.mp4": base_files()["mp4"][1][:700], "junk.gif": base_files()["gif"][1] + b"\xff" * 400,
           "claims.npy": npy_claiming((10**6, 10**4, 10**4, 3))}
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    res = subprocess.run([sys.executable, "-m", "vbench_suite", "score", str(folder), "--metrics", METRIC,
                          "--json", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Traceback" not in res.stderr + res.stdout, res.stderr[-2000:]
    data = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    ok = {r["key"] for r in data[METRIC]["rows"] if r["status"] == "ok"}
    assert set(GOOD) <= ok
    skipped = {s["file"] for s in data["skipped"]}
    assert {"bomb.png", "notes.mp4", "empty.webm", "trunc.mp4", "claims.npy", "tiny.mp4", "one.mp4"} <= skipped
    assert all(f"  {name}: " in res.stdout for name in skipped)
    assert max(len(line) for line in res.stdout.splitlines()) <= MAX_STDOUT_LINE


# --------------------------------------------------------------------------------------------------- long runs

@pytest.mark.slow
@LONG
@given(case=cases())
def test_long_hypothesis_reader_run(workdir: Path, case: tuple[str, bytes]) -> None:
    check_reader(put_case(workdir, *case))


CAMPAIGN_CASES = 3000
"""Cases of the counted campaign, drawn with plain `random` from a fixed seed; every CLI_EVERY-th also goes
through `score`."""
CLI_EVERY = 10


@pytest.mark.slow
def test_long_campaign(lpips_ready: None, tmp_path: Path) -> None:
    """CAMPAIGN_CASES fuzzed files through the reader (every CLI_EVERY-th also through `score` beside the good
    files); prints the figures and lists every case that crashed or printed a bad message."""
    rng = random.Random(2027)
    folder = tmp_path / "videos"
    write_good(folder)
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    for index in range(CAMPAIGN_CASES):
        suffix, data = random_case(rng)
        path = put_case(folder, suffix, data)
        checks = [("reader", check_reader)] + ([("score", lambda p: check_score(folder, p.name))]
                                               if index % CLI_EVERY == 0 else [])
        for label, check in checks:
            try:
                result = check(path)
                outcomes[f"{label}:{result}"] = outcomes.get(f"{label}:{result}", 0) + 1
            except Exception as exc:  # noqa: BLE001 - counting crashes is the point of the campaign
                failures.append(f"case {index} ({suffix}, {len(data)} B) {label}: {type(exc).__name__}: "
                                f"{str(exc)[:300]}")
    print(f"\nvideo fuzz campaign: {CAMPAIGN_CASES} cases, {CAMPAIGN_CASES // CLI_EVERY} through score; "
          f"outcomes {dict(sorted(outcomes.items()))}; failures {len(failures)}")
    for line in failures[:50]:
        print("  " + line)
    assert not failures, failures[:10]
