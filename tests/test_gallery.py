"""The report's video gallery and `compare-videos`.

One small real run per module, made with the CLI, feeds the gallery, the browser checks and `compare-videos`: the toy
backend (tests/toy_backends.py: lossless 4:4:4 H.264 written by the harness's own writer, like every local backend;
it fails on 'i2v-red-circle' by option) and reference-shapes on three smoke prompts × 2 samples, runway asked for
without a key: 8 videos of 64×64, 16 frames at 8 fps, and failed, unsupported and not-configured cells. The same
checks against a dit-local run are marked slow (importing torch and the text encoder dominates). Cell states and the
embedding rule are also checked on records built by hand, where the true answer is known by construction. Browser
tests drive Debian's headless Chromium through test_html_browser's pipe client and skip when it is absent.
"""
from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_html_browser import BrowserPage, _chromium, _pixel_std
from test_report_fixtures import REMOTE, SIM, RunSpec, make_run
from vbench_suite.cli import main
from vbench_suite.report import gallery_cells as gc
from vbench_suite.report.contact_sheet import SHEET_FRAMES, SHEET_GAP, FrameSampler, contact_sheet_array
from vbench_suite.report.gallery import build_gallery
from vbench_suite.report.gallery_media import EmbedBudget, GalleryOptions, prepare_media
from vbench_suite.report.load import load_run
from vbench_suite.video.read import read_video
from vbench_suite.video.web import is_web_playable, probe
from vbench_suite.video.write import write_video

PROMPTS = ("motion-left", "count-two", "i2v-red-circle")
LOCAL = "toy"
needs_chromium = pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (apt-get update && apt-get install -y chromium)")


def _make_run(out: Path, local: str, option: str) -> Path:
    """`vbench-suite run` of `local` (with `--option option`), reference-shapes and key-less runway on PROMPTS."""
    args = ["run", "--suite", "smoke", "--backend", local, "--backend", "reference-shapes", "--backend", "runway",
            "--samples", "2", "--seed", "0", "--budget-usd", "0", "--metrics", "shapes_adherence", "--option", option,
            "--out", str(out), "--no-report", "--no-progress", "--reuse", "never"]
    for p in PROMPTS:
        args += ["--prompt-id", p]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RUNWAYML_API_SECRET", raising=False)
        mp.setenv("VBENCH_EXTRA_BACKENDS", "toy=toy_backends:ToyBackend")
        assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_run(tmp_path_factory.mktemp("gallery") / "run", LOCAL, "toy.fail_prompts=i2v-red-circle")


@pytest.fixture(scope="module")
def small_report(small_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """report.html of `small_run` with the default gallery options (read-only for the tests)."""
    from vbench_suite.report.build import write_report

    return write_report(small_run, tmp_path_factory.mktemp("report") / "rep")


def _records(run_dir: Path) -> dict[tuple[str, str, int], dict]:
    out = {}
    for line in (run_dir / "generations.jsonl").read_text().splitlines():
        d = json.loads(line)
        if d.get("role", "benchmark") == "benchmark":
            out[(d["backend"], d["prompt_id"], d["sample"])] = d
    return out


# --- cell states -------------------------------------------------------------------------------------------------

def _gen(status: str = "ok", **kw: object) -> dict:
    base = {"backend": "b", "prompt_id": "p", "sample": 0, "key": "k1", "status": status, "error": None,
            "retriable": False, "unsupported": False, "outcome_unknown": False, "video_path": None, "reused_from": ""}
    return base | kw


def test_record_states_known_by_construction(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path / "r"))
    (tmp_path / "v.mp4").write_bytes(b"x")
    scores = run.scores.iloc[0:0]
    cases = [
        (_gen(video_path="v.mp4"), gc.OK, "ok"),
        (_gen(video_path="gone.mp4"), gc.NO_VIDEO, "video missing: gone.mp4"),
        (_gen("refused", error="moderation: unsafe"), gc.REFUSED, "refused: moderation: unsafe"),
        (_gen("failed", error="HTTP 500", retriable=True), gc.FAILED, "failed (retriable): HTTP 500"),
        (_gen("failed", error="mode 'i2v' not supported", unsupported=True), gc.UNSUPPORTED,
         "unsupported: mode 'i2v' not supported"),
        (_gen("failed", error="answer lost", outcome_unknown=True), gc.OUTCOME_UNKNOWN,
         "outcome unknown (may have been billed): answer lost"),
    ]
    for record, state, text in cases:
        cell = gc.record_cell(record, tmp_path, scores)
        assert (cell.state, cell.text) == (state, text), record


def test_missing_cells_say_why(tmp_path: Path) -> None:
    spec = RunSpec(meta_extra={"skipped_backends": {"veo": "GEMINI_API_KEY is not set"}, "over_budget": {"heygen": 3},
                              "budget_usd": 1.5, "requested_backends": ["dit-local", "runway", "pika", "veo",
                                                                        "heygen", "synthesia"]})
    run = load_run(make_run(tmp_path / "r", spec))
    grid = gc.gallery_grid(run)
    assert grid.backends == ["dit-local", "heygen", "pika", "runway", "synthesia", "veo"]
    assert len(grid.rows) == 16 and grid.categories == ["motion", "objects"]
    row = grid.rows[3]
    assert grid.cell("veo", row).state == gc.NOT_CONFIGURED and "GEMINI_API_KEY" in grid.cell("veo", row).text
    assert grid.cell("heygen", row).text == "not sent: budget cap $1.50 (3 request(s) of this backend not sent)"
    assert grid.cell("synthesia", row).state == gc.NO_RECORD
    # the fixture's truths: runway refuses prompt index 3, pika fails 5 and 6, every video file is absent
    assert grid.cell(REMOTE, row).state == gc.REFUSED and grid.cell(SIM, grid.rows[5]).state == gc.FAILED
    assert grid.cell(SIM, grid.rows[6]).text == "failed (retriable): HTTP 500"
    ok = grid.cell("dit-local", row)
    assert ok.state == gc.NO_VIDEO and ok.text == "video missing: videos/dit-local/3.mp4"
    names = {m.name: m for m in ok.metrics}
    assert names["lpips_ref"].text == "0.43" and names["lpips_ref"].higher_is_better is False
    assert names["shapes_adherence"].text == "0.65" and names["clipsim"].text.startswith("unavailable: CLIP")


def test_real_run_cells(small_run: Path) -> None:
    grid = gc.gallery_grid(load_run(small_run))
    assert grid.backends == ["reference-shapes", "runway", LOCAL]  # requested backends, by name
    assert [(r.category, r.prompt_id, r.sample) for r in grid.rows] == [  # the suite's order, grouped by category
        ("motion", "motion-left", 0), ("motion", "motion-left", 1), ("motion", "i2v-red-circle", 0),
        ("motion", "i2v-red-circle", 1), ("count", "count-two", 0), ("count", "count-two", 1)]
    assert grid.rows[0].prompt == "a red circle moves left on a black background"
    states = {(b, r.prompt_id, r.sample): grid.cell(b, r).state for r in grid.rows for b in grid.backends}
    assert sum(s == gc.OK for s in states.values()) == 8
    assert states[("reference-shapes", "i2v-red-circle", 1)] == gc.UNSUPPORTED
    assert states[(LOCAL, "i2v-red-circle", 0)] == gc.FAILED
    assert grid.cell(LOCAL, grid.rows[2]).text == "failed: toy failure"
    assert all(states[("runway", p, s)] == gc.NOT_CONFIGURED for p in PROMPTS for s in (0, 1))
    cell = grid.cell("reference-shapes", grid.rows[0])
    assert [m.name for m in cell.metrics] == ["shapes_adherence"] and cell.metrics[0].higher_is_better


# --- media: codecs, embedding, contact sheets ---------------------------------------------------------------------

def _frames(n: int = 9, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, size, size, 3), np.uint8)  # (T, H, W, 3)
    for t in range(n):
        frames[t, :, :] = rng.integers(40, 200, size=3)
        frames[t, 4:12, t:t + 8] = 255
    return frames


def test_codec_rules_and_reencoding(tmp_path: Path) -> None:
    frames = _frames()
    lossless = write_video(tmp_path / "a.mp4", frames, 8)  # the harness's own format: H.264 4:4:4, CRF 0
    web = write_video(tmp_path / "b.mp4", frames, 8, pix_fmt="yuv420p", crf=20)
    ok, why = is_web_playable(lossless, probe(lossless))
    assert not ok and "yuv444p" in why
    assert is_web_playable(web, probe(web)) == (True, "")
    np.save(tmp_path / "c.npy", frames)
    assert not is_web_playable(tmp_path / "c.npy", None)[0]
    m = prepare_media(lossless, tmp_path / "rep", GalleryOptions(embed_max_bytes=0), EmbedBudget())
    copy = tmp_path / "rep" / m.src
    info = probe(copy)
    assert (info.codec, info.pix_fmt, info.profile) == ("h264", "yuv420p", "High") and not m.embedded
    back = read_video(copy)
    assert (back.num_frames, back.fps, m.num_frames, m.fps) == (9, 8.0, 9, 8.0)
    assert np.abs(back.frames.astype(int) - frames.astype(int)).mean() < 4.0  # a viewing copy, close to the source


def test_embedding_threshold_is_exact(tmp_path: Path) -> None:
    video = write_video(tmp_path / "w.mp4", _frames(), 8, pix_fmt="yuv420p", crf=20)  # plays as it is
    size = video.stat().st_size
    at = prepare_media(video, tmp_path / "r1", GalleryOptions(embed_max_bytes=size), EmbedBudget())
    assert at.embedded and at.src.startswith("data:video/mp4;base64,")
    assert base64.b64decode(at.src.split(",", 1)[1]) == video.read_bytes() and at.reencoded == ""
    over = prepare_media(video, tmp_path / "r2", GalleryOptions(embed_max_bytes=size - 1), EmbedBudget())
    assert not over.embedded and over.src.startswith("gallery/videos/")
    assert (tmp_path / "r2" / over.src).read_bytes() == video.read_bytes()  # copied: the report folder zips whole
    linked = prepare_media(video, tmp_path / "r3", GalleryOptions(embed_max_bytes=0, large_videos="link"),
                           EmbedBudget())
    assert linked.src == "../w.mp4" and not (tmp_path / "r3" / "gallery" / "videos").exists()
    odd = tmp_path / "run #2 (50%)" / "w.mp4"  # a folder name that is not a valid URL path as it is
    odd.parent.mkdir()
    odd.write_bytes(video.read_bytes())
    linked = prepare_media(odd, tmp_path / "r3", GalleryOptions(embed_max_bytes=0, large_videos="link"),
                           EmbedBudget())
    assert linked.src == "../run%20%232%20%2850%25%29/w.mp4"
    budget = EmbedBudget(limit=2 * size)  # the total cap: a third video of the same size is linked
    assert [budget.take(size, size) for _ in range(3)] == [True, True, False] and budget.used == 2 * size


def test_contact_sheet_and_sampler() -> None:
    frames = _frames(n=40)
    sampler = FrameSampler(keep_max=16)
    for f in frames:
        sampler.add(f)
    kept = [i for i, _ in sampler.kept]
    assert kept == list(range(0, 40, 4)) and sampler.seen == 40  # stride doubled twice, evenly spaced
    assert sampler.middle()[0] == 20
    picked = sampler.pick(SHEET_FRAMES)
    assert picked[0][0] == 0 and picked[-1][0] == 36 and len(picked) == SHEET_FRAMES
    sheet = contact_sheet_array([f for _, f in picked])
    assert sheet.shape == (32, SHEET_FRAMES * 32 + (SHEET_FRAMES - 1) * SHEET_GAP, 3)
    for k, (i, _) in enumerate(picked):  # each tile is its frame, untouched (32 px: never rescaled)
        assert np.array_equal(sheet[:, k * (32 + SHEET_GAP): k * (32 + SHEET_GAP) + 32], frames[i])


def test_report_gallery_files(small_run: Path, small_report: Path, tmp_path: Path) -> None:
    import shutil

    html_path = small_report
    html = html_path.read_text()
    md = html_path.with_suffix(".md").read_text()
    assert html.count("<video ") == 8 and html.count('src="data:video/mp4;base64,') == 8
    assert "## Gallery" in md and "8 embedded in report.html" in md
    assert "Cells: ok 8, unsupported 2, failed 2, not-configured 6." in md
    assert "re-encoded for browsers" in md and "h264 in yuv444p" in md
    sheets = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("  ![")]
    assert len(sheets) == 8
    img = Image.open(html_path.parent / sheets[0])
    assert img.size == (SHEET_FRAMES * 64 + (SHEET_FRAMES - 1) * SHEET_GAP, 64)
    # a backend with no record at all is said once in report.md, not in each of its 4 cells
    gallery_md = md[md.index("## Gallery"):]
    assert gallery_md.count("RUNWAYML_API_SECRET is not set") == 1
    assert "**runway**, every prompt and sample: not configured: RUNWAYML_API_SECRET is not set" in md
    assert "**reference-shapes**, sample 1: unsupported: unsupported request: mode 'i2v' not supported" in md
    # a second build keeps exactly what it uses and removes what an earlier build left
    rep = tmp_path / "rep"
    shutil.copytree(html_path.parent / "gallery", rep / "gallery")
    before = sorted(p.name for p in (rep / "gallery" / "sheets").iterdir())
    (rep / "gallery" / "sheets" / "stale.png").write_bytes(b"old")
    build_gallery(load_run(small_run), rep)
    assert sorted(p.name for p in (rep / "gallery" / "sheets").iterdir()) == before
    assert not (rep / "gallery" / "videos").exists()  # everything embedded: no empty folder


def test_unreadable_video_becomes_a_cell_that_says_so(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "r", RunSpec(backends=("dit-local",)))
    (run_dir / "videos" / "dit-local").mkdir(parents=True)
    (run_dir / "videos" / "dit-local" / "0.mp4").write_bytes(b"not a video at all")
    gallery = build_gallery(load_run(run_dir), tmp_path / "rep")
    cell = gallery.grid.cell("dit-local", gallery.grid.rows[0])
    assert cell.state == gc.NO_VIDEO and cell.text.startswith("video unreadable: ") and not gallery.media


# --- compare-videos ------------------------------------------------------------------------------------------------

def test_compare_videos_tiles_match_their_sources(small_run: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from vbench_suite.video import side_by_side as sbs

    out = tmp_path / "cmp.mp4"
    assert main(["compare-videos", str(small_run), "--prompt-id", "motion-left", "--sample", "1",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"3 tile(s): reference-shapes, runway, {LOCAL}" in printed
    assert f"{LOCAL} 64x64 scaled to 128x128 (nearest)" in printed and "runway: placeholder (not configured" in printed
    video = read_video(out)
    box = 128  # 64 px sources scaled x2
    assert (video.num_frames, video.fps) == (16, 8.0)
    assert (video.width, video.height) == (3 * box + 4 * sbs.GAP, sbs.LABEL_HEIGHT + box + 2 * sbs.GAP)
    recs = _records(small_run)
    sources = {b: read_video(small_run / recs[(b, "motion-left", 1)]["result"]["video_path"]).frames
               for b in (LOCAL, "reference-shapes")}
    y = sbs.GAP + sbs.LABEL_HEIGHT
    tiles = {b: video.frames[:, y:y + box, sbs.GAP + i * (box + sbs.GAP):sbs.GAP + i * (box + sbs.GAP) + box]
             for i, b in enumerate(("reference-shapes", "runway", LOCAL))}
    for b, src in sources.items():
        down = tiles[b][:, ::2, ::2].astype(int)
        own = np.abs(down - src.astype(int)).mean()
        other = np.abs(down - sources[next(o for o in sources if o != b)].astype(int)).mean()
        assert own < 6.0 and own < other / 2, (b, own, other)
    grey = tiles["runway"].astype(int)
    assert np.median(grey) == pytest.approx(sbs.PLACEHOLDER[0], abs=3)  # a grey tile ...
    assert (grey.max(axis=-1) > 180).sum() > 200  # ... with its reason written in light text
    label_bar = video.frames[0, sbs.GAP:sbs.GAP + sbs.LABEL_HEIGHT, sbs.GAP:sbs.GAP + box]
    assert (label_bar.max(axis=-1) > 180).sum() > 30  # the label is drawn


def test_compare_videos_errors_are_one_line(small_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["compare-videos", str(tmp_path / "nope"), "--prompt-id", "x"], "does not exist"),
        (["compare-videos", str(small_run), "--prompt-id", "motion-lft"],
         "has no prompt id 'motion-lft'. Did you mean 'motion-left'? Prompt ids there: motion-left, i2v-red-circle, "
         "count-two"),
        (["compare-videos", str(small_run), "--prompt-id", "motion-left", "--sample", "5"],
         "has no sample 5 in run 'run'; samples there: 0, 1"),
        (["compare-videos", str(small_run), "--prompt-id", "motion-left", "--backend", "pika"],
         "has no backend 'pika'"),
        (["compare-videos", str(small_run), "--prompt-id", "motion-left", "--out", str(tmp_path / "x.avi")],
         "must end in .mp4"),
    ]
    for argv, text in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and text in err, err


# --- the gallery in a real browser ----------------------------------------------------------------------------------

_VIDEOS_JS = """Array.from(document.querySelectorAll('#gallery video')).map(v => ({
  label: v.getAttribute('aria-label'), ready: v.readyState, duration: v.duration, time: v.currentTime,
  error: v.error && v.error.message, embedded: v.getAttribute('src').startsWith('data:')}))"""
_VISIBLE_JS = """Array.from(document.querySelectorAll('#gallery td[data-backend]'))
  .filter(td => td.offsetParent !== null).map(td => td.dataset.backend + '|' + td.closest('tr').dataset.category)"""


def _expected_durations(run_dir: Path) -> dict[str, float]:
    """'backend, prompt, sample sK' label -> frames / fps, decoded from the recorded file (not from the page)."""
    out = {}
    for (b, p, s), rec in _records(run_dir).items():
        if rec["result"]["status"] == "ok":
            v = read_video(run_dir / rec["result"]["video_path"])
            out[f"{b}, {p}, sample {s}"] = v.num_frames / v.fps
    return out


def _check_videos_play(page: BrowserPage, expected: dict[str, float]) -> list[dict]:
    page.js("(() => { const s = document.querySelector('#gallery select[data-filter=sample]'); s.value = 'all'; "
            "s.dispatchEvent(new Event('change', {bubbles: true})); })()")
    page.wait_for(f"document.querySelectorAll('#gallery video').length === {len(expected)} && "
                  "Array.from(document.querySelectorAll('#gallery video')).every(v => v.readyState >= 2 || v.error)")
    videos = page.js(_VIDEOS_JS)
    assert isinstance(videos, list) and {v["label"] for v in videos} == set(expected)
    for v in videos:
        assert v["error"] is None and v["ready"] >= 2, v
        assert abs(v["duration"] - expected[v["label"]]) <= 1 / 8 + 1e-6, v  # within one frame at 8 fps
    page.js("Promise.all(Array.from(document.querySelectorAll('#gallery video')).map(v => v.play()))")
    page.wait_for("Array.from(document.querySelectorAll('#gallery video')).every(v => v.currentTime > 0)")
    return videos


def _gallery_in_chromium(run_dir: Path, html_path: Path, local: str, tmp_path: Path) -> None:
    """Load `html_path`, the report of `run_dir` (a run of PROMPTS by `_make_run`), and check playback, filters and
    pixels."""
    page = BrowserPage(html_path.resolve().as_uri(), tmp_path / "profile")
    backends = (local, "reference-shapes", "runway")
    try:
        before = page.js(_VISIBLE_JS)  # sample 0 only by default: 3 prompts × 3 backends
        assert sorted(before) == sorted(f"{b}|{c}" for b in backends for c in ("motion", "motion", "count"))
        count = "document.querySelector('#gallery .gal-count').textContent"
        assert page.js(count) == "showing 3 row(s) x 3 backend(s)"
        shot = page.screenshot("#gallery")
        img = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
        assert img.shape[0] > 200 and img.shape[1] > 400
        assert _pixel_std(shot) > 20.0  # posters, labels and grey cells: not a blank page
        videos = _check_videos_play(page, _expected_durations(run_dir))  # selects "all" samples
        assert all(v["embedded"] for v in videos)
        page.click('#gallery input[data-filter="backend"][value="reference-shapes"]')
        visible = page.js(_VISIBLE_JS)
        assert sorted(visible) == sorted(f"{b}|{c}" for b in (local, "runway") for c in ["motion"] * 4 + ["count"] * 2)
        assert page.js("document.querySelector('#gallery th[data-backend=\"reference-shapes\"]').offsetParent") \
            is None
        page.click('#gallery input[data-filter="category"][value="motion"]')
        assert sorted(page.js(_VISIBLE_JS)) == sorted(f"{b}|count" for b in (local, "runway") for _ in range(2))
        assert page.js(count) == "showing 2 row(s) x 2 backend(s)"
        page.click('#gallery input[data-filter="category"][value="motion"]')
        page.click('#gallery input[data-filter="backend"][value="reference-shapes"]')
        assert len(page.js(_VISIBLE_JS)) == 6 * 3
        page.click('#gallery input[data-filter="strips"]')
        assert page.js("Array.from(document.querySelectorAll('#gallery img.gal-sheet'))"
                       ".every(i => i.offsetParent !== null && i.complete && i.naturalWidth > 0)")
        assert page.problems() == []
        resources = page.js("performance.getEntriesByType('resource').map(e => e.name)"
                            ".filter(n => !n.startsWith('data:'))")
        assert resources == []  # everything embedded: nothing fetched
    finally:
        page.close()


@needs_chromium
def test_gallery_plays_filters_and_renders_in_chromium(small_run: Path, small_report: Path, tmp_path: Path) -> None:
    _gallery_in_chromium(small_run, small_report, LOCAL, tmp_path)


@pytest.mark.slow
@needs_chromium
def test_dit_local_gallery_and_side_by_side(tmp_path: Path) -> None:
    """The same checks on a run of the built-in DiT (4 denoising steps), and its side-by-side video."""
    from vbench_suite.report.build import write_report

    run_dir = _make_run(tmp_path / "run", "dit-local", "dit-local.steps=4")
    _gallery_in_chromium(run_dir, write_report(run_dir, tmp_path / "rep"), "dit-local", tmp_path)
    out = tmp_path / "cmp.mp4"
    assert main(["compare-videos", str(run_dir), "--prompt-id", "count-two", "--out", str(out)]) == 0
    video = read_video(out)
    assert (video.num_frames, video.fps) == (16, 8.0)


@needs_chromium
def test_linked_videos_play_from_a_zipped_copy_of_the_report(small_run: Path, tmp_path: Path) -> None:
    """--embed-max-kb 0: every video is a file under gallery/videos/; a copy of the report folder alone (as a zip
    would carry it) plays them all."""
    import shutil

    from vbench_suite.report.build import write_report

    html_path = write_report(small_run, tmp_path / "rep", gallery=GalleryOptions(embed_max_bytes=0))
    moved = tmp_path / "elsewhere" / "rep"
    shutil.copytree(html_path.parent, moved)
    shutil.rmtree(html_path.parent)
    page = BrowserPage((moved / "report.html").resolve().as_uri(), tmp_path / "profile")
    try:
        videos = _check_videos_play(page, _expected_durations(small_run))
        assert not any(v["embedded"] for v in videos)
        assert page.problems() == []
    finally:
        page.close()
    assert len(os.listdir(moved / "gallery" / "videos")) == len(videos) == 8


def _encode(path: Path, codec: str, pix_fmt: str, fmt: str, frames: np.ndarray) -> Path:
    import av

    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@needs_chromium
def test_chromium_plays_what_the_rule_calls_playable(tmp_path: Path) -> None:
    """The codec findings behind `is_web_playable`, measured: Chromium plays the H.264 4:2:0, VP8 and VP9 files the
    rule accepts; it refuses MPEG-4 Part 2, so files outside the rule are re-encoded (and its own software decoder
    happens to play the harness's lossless 4:4:4 H.264, which the rule still re-encodes for other browsers)."""
    frames = _frames(n=17)
    files = {"h264-420.mp4": ("libx264", "yuv420p", "mp4"), "vp9.webm": ("libvpx-vp9", "yuv420p", "webm"),
             "vp8.webm": ("libvpx", "yuv420p", "webm"), "mpeg4.mp4": ("mpeg4", "yuv420p", "mp4")}
    paths = {name: _encode(tmp_path / name, *spec, frames) for name, spec in files.items()}
    paths["h264-444.mp4"] = write_video(tmp_path / "h264-444.mp4", frames, 8)
    rule = {name: is_web_playable(p, probe(p))[0] for name, p in paths.items()}
    assert rule == {"h264-420.mp4": True, "vp9.webm": True, "vp8.webm": True, "mpeg4.mp4": False,
                    "h264-444.mp4": False}
    page_html = "".join(f'<video id="{n}" muted preload="auto" src="{n}"></video>' for n in paths)
    (tmp_path / "codecs.html").write_text(f'<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" '
                                          f'href="data:,"></head><body>{page_html}</body></html>')
    page = BrowserPage((tmp_path / "codecs.html").as_uri(), tmp_path / "profile")
    try:
        page.wait_for("Array.from(document.querySelectorAll('video')).every(v => v.readyState >= 2 || v.error)")
        seen = page.js("Object.fromEntries(Array.from(document.querySelectorAll('video')).map(v => "
                       "[v.id, [v.readyState >= 2 && !v.error, v.duration]]))")
    finally:
        page.close()
    assert isinstance(seen, dict)
    plays = {name: ok for name, (ok, _) in seen.items()}
    assert plays == {"h264-420.mp4": True, "vp9.webm": True, "vp8.webm": True, "mpeg4.mp4": False,
                     "h264-444.mp4": True}
    for name in ("h264-420.mp4", "vp9.webm", "vp8.webm", "h264-444.mp4"):
        assert seen[name][1] == pytest.approx(17 / 8, abs=1 / 8)


def test_side_by_side_normalises_size_rate_and_duration(tmp_path: Path) -> None:
    """Two sources built so the right output is known: A is 32x32 at 8 fps for 16 frames (2 s), B is 48x32 at 4 fps
    for 6 frames (1.5 s), each frame one flat colour that encodes its index. Output: 8 fps, 16 frames, tiles 128 high
    (32 x 4, nearest), B 192 wide; B shows frame floor(t * 4) and holds its last frame after 1.5 s."""
    from vbench_suite.video import side_by_side as sbs

    def flat(n: int, w: int, h: int, base: int) -> np.ndarray:
        out = np.zeros((n, h, w, 3), np.uint8)
        for t in range(n):
            out[t] = (base, 12 * t + 20, 255 - base)
        return out

    a = write_video(tmp_path / "a.mp4", flat(16, 32, 32, 40), 8, pix_fmt="yuv420p", crf=10)
    b = write_video(tmp_path / "b.mp4", flat(6, 48, 32, 200), 4, pix_fmt="yuv420p", crf=10)
    res = sbs.compose_side_by_side([sbs.Tile("A", a), sbs.Tile("B", b), sbs.Tile("C", None, "failed: HTTP 500")],
                                   tmp_path / "out.mp4")
    assert (res.fps, res.num_frames, res.tile_size) == (8.0, 16, (192, 128))
    assert res.sources[0].scaled == (128, 128) and res.sources[1].scaled == (192, 128)
    assert res.sources[1].filter == "nearest"
    assert any("B 4 fps" in n for n in res.notes) and any("B 1.5 s" in n for n in res.notes)
    assert "C: placeholder (failed: HTTP 500)" in res.notes
    out = read_video(res.path)
    assert (out.num_frames, out.fps, out.width, out.height) == (16, 8.0, res.width, res.height)
    for j in range(16):
        xa, ya, wa, ha = res.boxes[0]
        xb, yb, wb, hb = res.boxes[1]
        green_a = out.frames[j, ya + 40:ya + 88, xa + 72:xa + 120, 1].mean()  # A is centred: 32 px margins
        green_b = out.frames[j, yb + 40:yb + 88, xb + 40:xb + 150, 1].mean()
        assert green_a == pytest.approx(12 * j + 20, abs=4), j
        assert green_b == pytest.approx(12 * min(j // 2, 5) + 20, abs=4), j
    xa, ya, _, _ = res.boxes[0]
    assert out.frames[0, ya + 60, xa + 10].max() < 40  # A's pillarbox margin stays background
