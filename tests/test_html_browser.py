"""The HTML report in a real headless Chromium (Debian's `chromium` package): loads with no console errors, tables and
plots are present and decoded, nothing is fetched from outside the page, and a screenshot is not blank.

Talks the DevTools protocol over pipes (`--remote-debugging-pipe`: NUL-terminated JSON on fds 3/4), so it needs no
extra Python package. Skipped, with the install command, when chromium is not installed.
"""
from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_report_fixtures import make_run

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1600", "--remote-debugging-pipe")
TIMEOUT_S = 60.0


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


pytestmark = pytest.mark.skipif(
    _chromium() is None, reason="chromium is not installed (apt-get update && apt-get install -y chromium)")


@dataclass
class PageCheck:
    """What the browser saw: console errors/warnings, uncaught exceptions, DOM facts, and the screenshot."""

    problems: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    screenshot: bytes = b""


class _Pipe:
    """Minimal DevTools client over Chromium's debugging pipe; events are buffered in `events`."""

    def __init__(self, chromium: str, user_data_dir: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads fd 3
        self._res_r, res_w = os.pipe()  # Chromium writes responses on fd 4

        def _child_fds() -> None:  # runs in the child between fork and exec
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_child_fds, close_fds=False)
        os.close(cmd_r)
        os.close(res_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self._res_r], [], [], left)
            if ready:
                chunk = os.read(self._res_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the debugging pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._res_r)
        if self.proc.stderr:
            self.proc.stderr.close()


_FACTS_JS = """JSON.stringify({
  title: document.title,
  tables: document.querySelectorAll('table').length,
  rows: document.querySelectorAll('tbody tr').length,
  imgs: document.images.length,
  svgs: document.querySelectorAll('svg').length,
  broken_imgs: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length,
  resources: performance.getEntriesByType('resource').map(e => e.name)
    .filter(n => !n.startsWith('data:')),
  text: document.body.innerText
})"""


class BrowserPage:
    """One live page in headless Chromium, driven through the DevTools pipe: evaluate JS, real mouse clicks and key
    presses, screenshots; console errors and warnings, uncaught exceptions and failed loads are kept for
    `problems()`. Used by the report, gallery and vote-page tests."""

    def __init__(self, url: str, profile: Path) -> None:
        chromium = _chromium()
        assert chromium is not None
        self.pipe = _Pipe(chromium, profile)
        try:
            target = self.pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            self.session = self.pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                self.call(domain)
            self.call("Page.navigate", {"url": url})
            self.pipe.wait_event("Page.loadEventFired")
        except BaseException:
            self.pipe.close()
            raise

    def call(self, method: str, params: dict | None = None) -> dict:
        return self.pipe.call(method, params, session=self.session)

    def js(self, expression: str) -> object:
        """The value of `expression` (promises awaited); a JS exception fails the test."""
        res = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in res:
            raise AssertionError(f"{expression[:200]}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = TIMEOUT_S, hint: str | None = None) -> None:
        """Poll until `expression` is truthy; on timeout the failure shows the value of the JS `hint`."""
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {expression}"
                                     + (f"; {hint}: {self.js(hint)}" if hint else ""))
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the element, after scrolling it into view."""
        rect = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView("
                       "{block: 'center'}); const r = e.getBoundingClientRect(); "
                       "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = rect  # type: ignore[misc]
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def press(self, key: str, code: str, keycode: int) -> None:
        """A real key press (down with its text, then up)."""
        for kind in ("keyDown", "keyUp"):
            params = {"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": keycode}
            if kind == "keyDown":
                params["text"] = key
            self.call("Input.dispatchKeyEvent", params)

    def screenshot(self, selector: str | None = None) -> bytes:
        """PNG bytes of the viewport, or of the element `selector` (at most 1400 px tall)."""
        params: dict = {"format": "png"}
        if selector is not None:
            box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView(); "
                          "const r = e.getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, "
                          "Math.min(r.height, 1400)]; })()")
            x, y, w, h = box  # type: ignore[misc]
            params.update(captureBeyondViewport=True, clip={"x": x, "y": y, "width": w, "height": h, "scale": 1})
        return base64.b64decode(self.call("Page.captureScreenshot", params)["data"])

    def problems(self) -> list[str]:
        """Console errors/warnings/asserts, uncaught exceptions and error/warning log entries seen so far."""
        out = []
        for ev in self.pipe.events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                out.append(f"console.{params['type']}: {args}")
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                desc = details.get("exception", {}).get("description", "")
                out.append(f"exception: {details.get('text', '')} {desc}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                entry = params["entry"]
                out.append(f"log {entry['level']}: {entry.get('text', '')} {entry.get('url', '')}")
        return out

    def close(self) -> None:
        self.pipe.close()


def check_page(path: Path, tmp: Path) -> PageCheck:
    """Load `path` in headless Chromium and report console problems, DOM facts and a screenshot (PNG bytes)."""
    page = BrowserPage(path.resolve().as_uri(), tmp / "chromium-profile")
    try:
        facts = json.loads(page.js(_FACTS_JS))  # type: ignore[arg-type]
        return PageCheck(problems=page.problems(), facts=facts, screenshot=page.screenshot())
    finally:
        page.close()


def _pixel_std(png: bytes) -> float:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return float(img.std())


def test_report_html_renders_in_chromium(tmp_path: Path) -> None:
    from vbench_suite.report import write_report

    run = make_run(tmp_path / "q1")
    html_path = write_report(run, tmp_path / "report")
    check = check_page(html_path, tmp_path)
    assert check.problems == []
    facts = check.facts
    assert facts["title"].startswith("vbench-suite report")
    assert facts["tables"] >= 6 and facts["rows"] >= 10
    assert facts["imgs"] + facts["svgs"] >= 4  # quality vs cost, latency, per category, break-even
    assert facts["broken_imgs"] == 0
    assert facts["resources"] == []  # self-contained: nothing fetched
    assert "(simulated)" in facts["text"] and "unavailable: CLIP weights" in facts["text"]
    assert _pixel_std(check.screenshot) > 5.0


def test_checker_catches_a_broken_page(tmp_path: Path) -> None:
    """The checker itself must fail on console errors, exceptions and broken images, and see a blank page as blank."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"></head><body>'
                   '<img src="missing.png"><script>console.error("boom"); notDefined();</script></body></html>')
    check = check_page(bad, tmp_path)
    text = "\n".join(check.problems)
    assert "boom" in text and "notDefined" in text
    assert check.facts["broken_imgs"] == 1
    blank = tmp_path / "blank.html"
    blank.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body></body></html>')
    assert _pixel_std(check_page(blank, tmp_path / "b").screenshot) < 1.0
