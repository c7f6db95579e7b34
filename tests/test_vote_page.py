"""`vbench-suite vote` end to end on a real run (dit-local and reference-shapes, 2 smoke prompts, built once): the
page in real headless Chromium (videos load, mouse and keyboard votes are stored with the right backends although
the page never names them, no console errors), the ratings in the report, the HTTP protocol, voting while a run
holds the folder, and the command line's errors."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_html_browser import BrowserPage, _chromium
from vbench_suite.cli import main
from vbench_suite.store.run_folder import RunFolder
from vbench_suite.votes.server import VoteServer, VoteSession
from vbench_suite.votes.store import read_votes

BACKENDS = ("dit-local", "reference-shapes")
REPO = Path(__file__).resolve().parents[1]


def _config(run_dir: Path):
    from vbench_suite.runner import RunConfig

    return RunConfig(suite="smoke", backends=BACKENDS, out=run_dir, limit=2, metrics=("shapes_adherence",),
                     backend_options={"dit-local": {"steps": 2}}, index_path=run_dir.parent / "index.sqlite",
                     reuse="never")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vbench_suite.runner import run_benchmark

    base = tmp_path_factory.mktemp("vote-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VBENCH_CACHE_DIR", str(base / "cache"))
        run_benchmark(_config(base / "run"))
    return base / "run"


@pytest.fixture
def fresh_run(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of the module's run without votes, for tests that vote."""
    dest = tmp_path / "run"
    shutil.copytree(run_dir, dest, ignore=shutil.ignore_patterns("votes.jsonl", ".vbench.lock"))
    return dest


@pytest.fixture
def serving(fresh_run: Path) -> Iterator[VoteServer]:
    server = VoteServer(VoteSession(fresh_run, "ana", seed=0), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sha_to_backend(run: Path) -> dict[str, str]:
    return {r["result"]["video_sha256"]: r["backend"] for r in RunFolder(run).current_generations()
            if r["result"]["status"] == "ok" and r.get("role") != "reference"}


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.read(), dict(res.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _post(url: str, body: dict, key: str) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Vote-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


# --- the page in a real browser ------------------------------------------------------------------------------

_SHOWN_JS = """(() => { const v = [document.getElementById('left'), document.getElementById('right')];
  return {ready: document.body.dataset.ready, pairs: +document.body.dataset.pairs, votes: +document.body.dataset.votes,
          src: v.map(x => x.currentSrc), state: v.map(x => x.readyState), duration: v.map(x => x.duration),
          size: v.map(x => [x.videoWidth, x.videoHeight]), prompt: document.getElementById('prompt').textContent,
          text: document.body.innerText, html: document.documentElement.outerHTML,
          resources: performance.getEntriesByType('resource').map(e => e.name)}; })()"""


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get update && apt-get install -y "
                                                "chromium)")
def test_vote_page_in_chromium_stores_blind_votes_and_the_report_shows_ratings(serving: VoteServer,
                                                                                fresh_run: Path,
                                                                                tmp_path: Path) -> None:
    from vbench_suite.report import write_report

    by_sha = _sha_to_backend(fresh_run)
    page = BrowserPage(serving.url, tmp_path / "chromium-profile")
    expected: list[tuple[str, str, str]] = []
    try:
        page.js("window.$status_text = () => document.getElementById('status').textContent")
        # Three votes: a mouse click on "left", the key 2 (right), the key b (both bad)
        actions = [("left", lambda: page.click('button[data-choice="left"]')),
                   ("right", lambda: page.press("2", "Digit2", 50)),
                   ("both_bad", lambda: page.press("b", "KeyB", 66))]
        for n, (choice, act) in enumerate(actions, start=1):
            page.wait_for(f"document.body.dataset.ready === '1' && +document.body.dataset.pairs === {n}",
                          hint="$status_text()")
            shown = page.js(_SHOWN_JS)
            assert shown["state"][0] >= 2 and shown["state"][1] >= 2  # both videos decoded a frame
            assert shown["duration"] == [pytest.approx(2.0, abs=0.15)] * 2  # 16 frames at 8 fps
            assert shown["size"] == [[64, 64], [64, 64]]
            backends = []
            for src in shown["src"]:  # identify each video by its bytes, outside the page
                assert src.startswith(serving.url + "media/")
                status, body, _ = _get(src)
                assert status == 200
                backends.append(by_sha[hashlib.sha256(body).hexdigest()])
            assert sorted(backends) == sorted(BACKENDS)
            for name in (*BACKENDS, str(fresh_run), "videos/"):  # blind: nothing on the page names them
                assert name not in shown["text"] and name not in shown["html"]
                assert not any(name in r for r in shown["resources"])
            assert shown["prompt"] in ("a red circle moves left on a black background",
                                       "a blue square moves up on a white background")
            expected.append((backends[0], backends[1], choice))
            act()
            page.wait_for(f"+document.body.dataset.votes === {n}", hint="$status_text()")
        shown = page.js(_SHOWN_JS)
        assert all(r.startswith(serving.url) for r in shown["resources"])  # nothing from elsewhere
        assert page.problems() == []
    finally:
        page.close()
    votes, bad = read_votes(fresh_run)
    assert bad == 0
    assert [(v.left_backend, v.right_backend, v.choice) for v in votes] == expected
    meta = RunFolder(fresh_run).read_meta()
    gens = RunFolder(fresh_run).generations()
    for v in votes:
        assert v.run_id == meta["run_id"] and v.rater == "ana" and v.sample == 0
        assert gens[v.left_key]["backend"] == v.left_backend and gens[v.right_key]["backend"] == v.right_backend
        assert gens[v.left_key]["prompt_id"] == v.prompt_id == gens[v.right_key]["prompt_id"]
        assert v.voted_at >= v.shown_at
    # the first two pairs are the two prompts (least-voted first); the third repeats one
    assert {votes[0].prompt_id, votes[1].prompt_id} == {"motion-left", "motion-up"}

    html = write_report(fresh_run, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    section = md[md.index("## Human preference"):md.index("## Reliability")]
    assert "3 blind vote(s) by 1 rater(s) (ana)" in section and "1 decisive" not in section
    assert "2 decisive, 0 tie, 1 both bad" in section
    rows = [line for line in section.splitlines() if line.startswith("| 1 |") or line.startswith("| 2 |")]
    assert len(rows) == 2 and all(" 3 | " in r for r in rows)  # each backend was in all 3 votes
    assert {b for b in BACKENDS if any(b in r for r in rows)} == set(BACKENDS)
    assert "shapes_adherence ↑" in section and "Agreement between votes and automatic metrics" in section
    page_html = html.read_text(encoding="utf-8")  # the same section in the HTML report (rendered by to_html)
    assert "<h2>Human preference</h2>" in page_html and "3 blind vote(s) by 1 rater(s) (ana)" in page_html
    assert "Bradley-Terry strength" in page_html and "Agreement between votes and automatic metrics" in page_html


# --- the HTTP protocol -----------------------------------------------------------------------------------------

def test_http_protocol_is_blind_keyed_and_local(serving: VoteServer, fresh_run: Path) -> None:
    status, page, headers = _get(serving.url)
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    key = page.decode().split('name="vote-key" content="')[1].split('"')[0]
    assert _get(serving.url + "api/next?rater=bo")[0] == 403  # no key: other web pages cannot draw pairs
    port = serving.server_address[1]
    assert _get(serving.url, {"Host": f"evil.example:{port}"})[0] == 403  # DNS rebinding
    status, body, _ = _get(serving.url + "api/next?rater=bo", {"X-Vote-Key": key})
    nxt = json.loads(body)
    text = body.decode()
    assert status == 200 and set(nxt) == {"token", "left", "right", "prompt", "progress"}
    gens = RunFolder(fresh_run).generations()
    for secret in (*BACKENDS, *gens, *(k[:24] for k in gens), "videos"):
        assert secret not in text
    # Range requests (browsers seek with them) give the right bytes
    full = _get(serving.url + nxt["left"][1:])[1]
    status, part, headers = _get(serving.url + nxt["left"][1:], {"Range": "bytes=10-19"})
    assert status == 206 and part == full[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(full)}"
    assert _get(serving.url + "media/not-a-token")[0] == 404
    assert _post(serving.url + "api/vote", {"token": nxt["token"], "choice": "maybe", "rater": "bo"}, key)["error"]
    assert "rater name is empty" in _post(serving.url + "api/vote", {"token": nxt["token"], "choice": "tie",
                                                                     "rater": " "}, key)["error"]
    assert _post(serving.url + "api/vote", {"token": nxt["token"], "choice": "tie", "rater": "bo"}, key) == {
        "stored": True}
    again = _post(serving.url + "api/vote", {"token": nxt["token"], "choice": "tie", "rater": "bo"}, key)
    assert "no longer open" in again["error"]  # one vote per pair shown
    assert [(v.choice, v.rater) for v in read_votes(fresh_run)[0]] == [("tie", "bo")]


def test_votes_are_stored_while_a_run_holds_the_folder_and_a_resume_keeps_them(fresh_run: Path) -> None:
    """The vote server does not take the run lock: voting goes on while `run` resumes into the folder, and the
    run neither blocks on votes nor touches votes.jsonl."""
    from vbench_suite.runner import run_benchmark
    from vbench_suite.store.lock import hold_run_folder

    session = VoteSession(fresh_run, "ana")
    with hold_run_folder(fresh_run):  # as `vbench-suite run` does for its whole command
        for choice in ("left", "right"):
            assert session.vote(session.next_pair("ana")["token"], choice, "ana") == {"stored": True}
    before = (fresh_run / "votes.jsonl").read_bytes()
    outcome = run_benchmark(_config(fresh_run))  # a resume: nothing left to generate
    assert outcome.run_dir == fresh_run
    assert (fresh_run / "votes.jsonl").read_bytes() == before and len(read_votes(fresh_run)[0]) == 2


# --- the command line --------------------------------------------------------------------------------------------

def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_cli_bad_input_is_one_line_and_exit_2(run_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vote", str(tmp_path / "nope")]) == 2
    err = _one_line_error(capsys)
    assert f"run folder '{tmp_path / 'nope'}' does not exist" in err and "--out folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["vote", str(tmp_path / "empty")]) == 2
    assert "is not a run folder (no run.json)" in _one_line_error(capsys)
    single = tmp_path / "single"  # the same run with one backend's records only
    shutil.copytree(run_dir, single, ignore=shutil.ignore_patterns("votes.jsonl", ".vbench.lock"))
    lines = (single / "generations.jsonl").read_text().splitlines()
    (single / "generations.jsonl").write_text(
        "\n".join(line for line in lines if json.loads(line)["backend"] == "reference-shapes") + "\n")
    assert main(["vote", str(single), "--port", "0"]) == 2
    err = _one_line_error(capsys)
    assert "has ok videos only from reference-shapes" in err and "run a second backend into it" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["vote", str(run_dir), "--port", str(port)]) == 2
        err = _one_line_error(capsys)
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port 0" in err
    assert main(["vote", str(run_dir), "--rater", "\x07"]) == 2
    assert "control characters" in _one_line_error(capsys)
    assert not (run_dir / "votes.jsonl").exists()


def test_cli_serves_until_interrupted(run_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "vbench_suite", "vote", str(run_dir), "--port", "0",
                             "--rater", "cli"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith(f"Blind voting on {run_dir}: 2 pairs of videos from dit-local, reference-shapes")
        url = proc.stdout.readline().split("Open ")[1].split(" ")[0]
        assert url.startswith("http://127.0.0.1:")
        status, page, _ = _get(url)
        assert status == 200 and b'value="cli"' in page
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Stopped: 0 vote(s) this session" in out and "Traceback" not in err


def test_report_section_on_constructed_votes(fresh_run: Path) -> None:
    """Votes written to agree with shapes_adherence wherever it separates the two videos: the section's agreement
    is 100 % over exactly those votes; a vote on a video that is no longer current is left out and said so."""
    from vbench_suite.report.load import load_run
    from vbench_suite.report.ratings_section import human_preference_section
    from vbench_suite.report.tables import quality_table
    from vbench_suite.votes.pairs import votable_pairs
    from vbench_suite.votes.store import Vote, append_vote

    run = load_run(fresh_run)
    none, frames = human_preference_section(run, quality_table(run))
    assert frames == {} and f"No votes yet. Collect them with `vbench-suite vote {fresh_run}`" in none.paragraphs[-1]
    s = run.scores
    adherence = {k: float(v) for k, v in zip(s["key"], s["value"]) if k}
    meta = RunFolder(fresh_run).read_meta()
    decisive = 0
    for n, pair in enumerate(votable_pairs(fresh_run) * 3):
        better = pair.a if adherence[pair.a.key] >= adherence[pair.b.key] else pair.b
        left, right = (pair.a, pair.b) if n % 2 else (pair.b, pair.a)
        choice = "left" if better is left else "right"
        decisive += adherence[pair.a.key] != adherence[pair.b.key]
        append_vote(fresh_run, Vote(meta["run_id"], pair.prompt_id, "motion", 0, left.backend, right.backend,
                                    left.key, right.key, left.sha256, right.sha256, choice, f"r{n % 2}", "t", "t",
                                    f"id{n}"))
    append_vote(fresh_run, Vote(meta["run_id"], "motion-left", "motion", 0, "dit-local", "reference-shapes",
                                "old-key", right.key, "0" * 64, right.sha256, "left", "r0", "t", "t", "old"))
    section, frames = human_preference_section(run, quality_table(run))
    text = "\n".join(section.paragraphs)
    assert "6 blind vote(s) by 2 rater(s) (r0, r1)" in text and "on 2 of the 2 video pairs" in text
    assert "1 older vote(s) judged videos that are no longer current" in text
    row = frames["vote_agreement"].set_index("metric").loc["shapes_adherence"]
    assert row["n"] == decisive and row["agree"] == decisive and row["n_metric_tied"] == 6 - decisive
    assert decisive > 0 and row["agreement"] == 1.0  # reference-shapes draws the prompt; 2-step dit-local does not
    strength = frames["human_preference"].set_index("backend")
    assert set(strength.index) == set(BACKENDS) and (strength["votes"] == 6).all()
    assert strength["strength"].sum() == pytest.approx(0.0, abs=1e-6)
