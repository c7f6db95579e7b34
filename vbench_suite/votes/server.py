"""The local HTTP server behind `vbench-suite vote`: standard library only, bound to 127.0.0.1.

Routes (every /api route needs the header `X-Vote-Key` with the key embedded in the page):

    GET  /                     the voting page (`page.py`)
    GET  /api/next?rater=NAME  the next pair: {token, left, right, prompt, progress}
    POST /api/vote             {token, choice, rater}: store the vote -> {stored: true}
    POST /api/skip             {token}: release the pair unanswered -> {skipped: true}
    GET  /media/<id>           a video's bytes (Range requests supported)

Blinding: a pair is known to the page only by a random token, and each of its videos by another random id; the
server keeps the mapping, so neither URLs nor JSON name a backend, a cache key or a path. Application errors
(expired pair, bad rater name) are answered with status 200 and an `error` text the page shows, so a normal session
logs nothing in the browser's console; protocol errors (unknown route, bad key, wrong Host) get 4xx.

The server reads the run folder afresh for every pair, so videos a resumed `run` finishes meanwhile join in, and
appends votes with `votes.store.append_vote` (no run-folder lock: see that module).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vbench_suite.errors import UserError
from vbench_suite.store.run_folder import RunFolder, utc_now
from vbench_suite.votes.page import page_html
from vbench_suite.votes.pairs import Pair, PairPicker, Shown, VideoCheck, votable_pairs
from vbench_suite.votes.store import CHOICES, VoteError, append_vote, check_rater, read_votes, votes_path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
"""The only interface the server listens on: voting is local; the page is not meant to be exposed."""
DEFAULT_PORT = 8765
HANDOUT_TTL_S = 3600.0
"""A pair handed out and not answered within this time no longer counts as pending (and its token expires)."""
MAX_BODY_BYTES = 4096
_CONTENT_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/quicktime",
                  ".ogv": "video/ogg", ".gif": "image/gif"}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class _Handout:
    shown: Shown
    media: tuple[str, str]
    shown_at: str
    at: float = field(default_factory=time.monotonic)


class VoteSession:
    """State of one voting server: the run, the pair picker, and the pairs and media ids handed out."""

    def __init__(self, run_dir: str | Path, rater: str, seed: int = 0) -> None:
        self.run_dir = Path(run_dir)
        meta = RunFolder(self.run_dir).read_meta()  # UserError naming the folder if it is not a run folder
        self.run_id = str(meta.get("run_id", ""))
        self.run_name = str(meta.get("name") or self.run_dir.resolve().name)
        self.rater = check_rater(rater)
        self.pairs = votable_pairs(self.run_dir)  # VoteError when nothing can be voted on
        self.key = secrets.token_urlsafe(24)
        self.votes_cast = 0
        # Seeded by --seed and the votes already stored: reproducible, yet a restarted session does not replay the
        # draws (and screen sides) of the previous one.
        self._picker = PairPicker(seed * 1_000_003 + len(read_votes(self.run_dir)[0]))
        self._check = VideoCheck()
        self._handouts: dict[str, _Handout] = {}
        self._media: dict[str, tuple[Path, float]] = {}
        self._lock = threading.Lock()

    def backends(self) -> list[str]:
        return sorted({b for p in self.pairs for b in p.backends})

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, h in self._handouts.items() if now - h.at > HANDOUT_TTL_S]:
            del self._handouts[token]
        for mid in [m for m, (_, at) in self._media.items() if now - at > HANDOUT_TTL_S]:
            del self._media[mid]

    def next_pair(self, rater: str) -> dict[str, Any]:
        """Hand out the next pair for `rater` (see `pairs.PairPicker`); JSON for the page, or {error}."""
        try:
            rater = check_rater(rater)
            pairs = votable_pairs(self.run_dir)
        except UserError as exc:
            return {"error": str(exc)}
        votes, _ = read_votes(self.run_dir)
        with self._lock:
            self._expire()
            self.pairs = pairs
            pending: list[Pair] = [h.shown.pair for h in self._handouts.values()]
            while True:
                shown = self._picker.pick(pairs, votes, pending, rater)
                if shown is None:
                    return {"error": "no pair is left whose two videos match their records (replaced or damaged "
                                     "files); resume the run to repair them, then reload this page"}
                if self._check.ok(shown.left) and self._check.ok(shown.right):
                    break
                pairs = [p for p in pairs if p is not shown.pair]
            token = secrets.token_urlsafe(18)
            media = (secrets.token_urlsafe(18), secrets.token_urlsafe(18))
            now = time.monotonic()
            self._media[media[0]] = (shown.left.path, now)
            self._media[media[1]] = (shown.right.path, now)
            self._handouts[token] = _Handout(shown, media, utc_now())
        n_total = len(votes)
        return {"token": token, "left": f"/media/{media[0]}", "right": f"/media/{media[1]}",
                "prompt": shown.left.prompt,
                "progress": f"{self.votes_cast} vote(s) this session, {n_total} in this run; {len(pairs)} pairs "
                            f"of {len({b for p in pairs for b in p.backends})} backends to choose from."}

    def vote(self, token: str, choice: str, rater: str) -> dict[str, Any]:
        """Store a vote on the pair handed out as `token`; {stored: true} or {error}."""
        if choice not in CHOICES:
            return {"error": f"unknown choice {choice!r}; one of {', '.join(CHOICES)}"}
        try:
            rater = check_rater(rater)
        except VoteError as exc:
            return {"error": str(exc)}
        with self._lock:
            handout = self._handouts.pop(token, None)
            if handout is None:
                return {"error": "this pair is no longer open (already voted on, skipped, expired, or the server "
                                 "restarted); press s for another"}
            vote = handout.shown.vote(choice, rater, self.run_id, handout.shown_at, utc_now(), uuid.uuid4().hex)
            try:
                append_vote(self.run_dir, vote)
            except OSError as exc:
                self._handouts[token] = handout  # not stored: the rater may try again
                return {"error": f"could not write {votes_path(self.run_dir)} ({exc.strerror}); check the disk "
                                 "and permissions, then vote again"}
            self.votes_cast += 1
        log.info("vote stored: %s", choice)
        return {"stored": True}

    def skip(self, token: str) -> dict[str, Any]:
        with self._lock:
            self._handouts.pop(token, None)
        return {"skipped": True}

    def media_path(self, media_id: str) -> Path | None:
        with self._lock:
            entry = self._media.get(media_id)
        return entry[0] if entry is not None else None


class _Handler(BaseHTTPRequestHandler):
    server: VoteServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.address_string(), *args)

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: dict[str, Any], status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode("utf-8"), "application/json")

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        self._send(status, why.encode("utf-8"), "text/plain; charset=utf-8")

    def _host_ok(self) -> bool:
        # Only our own origin: a page elsewhere that rebinds a DNS name to 127.0.0.1 sends its own Host header.
        port = self.server.server_address[1]
        return self.headers.get("Host", "") in (f"{HOST}:{port}", f"localhost:{port}")

    def _api_ok(self) -> bool:
        return secrets.compare_digest(self.headers.get("X-Vote-Key", ""), self.server.session.key)

    def _body(self) -> dict[str, Any] | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None
        if not 0 < length <= MAX_BODY_BYTES:
            return None
        try:
            obj = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            return None
        return obj if isinstance(obj, dict) else None

    # ---- routes -----------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._host_ok():
            return self._refuse(HTTPStatus.FORBIDDEN, "wrong Host header")
        url = urlsplit(self.path)
        session = self.server.session
        if url.path == "/":
            body = page_html(session.rater, session.key, session.run_name).encode("utf-8")
            csp = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self'; "
                   "connect-src 'self'; img-src data:")
            return self._send(200, body, "text/html; charset=utf-8", {"Content-Security-Policy": csp})
        if url.path == "/favicon.ico":
            return self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
        if url.path.startswith("/media/"):
            return self._media(url.path[len("/media/"):])
        if url.path == "/api/next":
            if not self._api_ok():
                return self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong X-Vote-Key")
            rater = parse_qs(url.query).get("rater", [""])[0]
            return self._json(session.next_pair(rater))
        return self._refuse(HTTPStatus.NOT_FOUND, "not found")

    do_HEAD = do_GET

    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return self._refuse(HTTPStatus.FORBIDDEN, "wrong Host header")
        if not self._api_ok():
            return self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong X-Vote-Key")
        path = urlsplit(self.path).path
        body = self._body()
        if body is None or not isinstance(body.get("token"), str):
            return self._refuse(HTTPStatus.BAD_REQUEST, "expected a JSON object with a token")
        session = self.server.session
        if path == "/api/vote":
            return self._json(session.vote(body["token"], str(body.get("choice", "")), str(body.get("rater", ""))))
        if path == "/api/skip":
            return self._json(session.skip(body["token"]))
        return self._refuse(HTTPStatus.NOT_FOUND, "not found")

    def _media(self, media_id: str) -> None:
        path = self.server.session.media_path(media_id)
        try:
            f = open(path, "rb") if path is not None else None  # noqa: SIM115 - closed below
        except OSError:
            f = None
        if f is None or path is None:
            return self._refuse(HTTPStatus.NOT_FOUND, "no such video (expired)")
        with f:
            size = os.fstat(f.fileno()).st_size
            ctype = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            headers = {"Accept-Ranges": "bytes"}
            start, end, status = 0, size - 1, HTTPStatus.OK
            match = _RANGE.match(self.headers.get("Range", "").strip())
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:  # a suffix range: the last N bytes
                    start = max(0, size - int(match.group(2)))
                if start > end or start >= size:
                    return self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", ctype,
                                      {"Content-Range": f"bytes */{size}"})
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                status = HTTPStatus.PARTIAL_CONTENT
            f.seek(start)
            return self._send(status, f.read(end - start + 1), ctype, headers)


class VoteServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` on 127.0.0.1 serving one `VoteSession`. `url` is the page's address."""

    daemon_threads = True

    def __init__(self, session: VoteSession, port: int = DEFAULT_PORT) -> None:
        self.session = session
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise VoteError(f"port {port} on {HOST} is already in use (another vote server or program); pass "
                                "another --port, or --port 0 for any free one") from None
            if exc.errno == errno.EACCES:
                raise VoteError(f"port {port} on {HOST} needs privileges; pass a port above 1023, or --port 0 "
                                "for any free one") from None
            raise VoteError(f"cannot listen on {HOST}:{port} ({exc.strerror}); pass another --port") from None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"
