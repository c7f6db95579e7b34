"""The voting page: one HTML document with inline CSS and JavaScript, no external assets.

It asks the server for a pair (`GET /api/next`), shows the two videos side by side under the prompt, and posts the
rater's answer (`POST /api/vote`). The page never learns which backend made which video: it knows only the pair's
opaque token and two opaque media URLs. Every API call carries the per-server key from the page's <meta> tag
(header `X-Vote-Key`), so other web pages open in the same browser cannot vote or draw pairs.

Keys: 1 or ← left is better, 2 or → right is better, 3 / t / ↓ tie, 4 / b both bad, s skip, r replay both.
`document.body.dataset` exposes `pairs` (pairs loaded), `votes` (votes stored this visit) and `ready` ("1" once
both videos of the current pair have loaded), for tests and for people who script the page.
"""
from __future__ import annotations

import html

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1em auto;max-width:1100px;color:#222;
padding:0 1em}
h1{font-size:1.3em;margin:.2em 0}#prompt{font-size:1.15em;background:#f4f4f4;padding:.6em .8em;border-radius:4px;
min-height:1.4em}
.pair{display:flex;gap:1.5em;justify-content:center;margin:1em 0}
.side{flex:1;text-align:center}.side h2{font-size:1em;margin:.3em 0;color:#555}
video{width:100%;max-width:480px;aspect-ratio:auto;background:#000;image-rendering:pixelated;border-radius:4px}
.buttons{display:flex;gap:.6em;justify-content:center;flex-wrap:wrap}
button{font-size:1em;padding:.6em 1em;border-radius:4px;border:1px solid #888;background:#fff;cursor:pointer}
button:hover:enabled{background:#eef}button:disabled{opacity:.45;cursor:default}
button.primary{border-color:#246;font-weight:600}
#status{margin:.8em 0;color:#555;text-align:center;min-height:1.2em}#status.error{color:#a22}
.meta{font-size:.85em;color:#666;text-align:center}label{font-size:.9em}
input{font-size:.95em;padding:.2em .4em}
"""

_JS = r"""
"use strict";
const KEY = document.querySelector('meta[name="vote-key"]').content;
const $ = (id) => document.getElementById(id);
const videos = [$("left"), $("right")];
const buttons = Array.from(document.querySelectorAll("button[data-choice]"));
let token = null, busy = false, loaded = 0, pairs = 0, votes = 0;

function say(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}
function setEnabled(on) { buttons.forEach((b) => { b.disabled = !on; }); }
async function api(method, path, body) {
  const opts = {method, headers: {"X-Vote-Key": KEY}};
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  return res.json();
}
function rater() { return $("rater").value.trim(); }
async function next() {
  busy = true;
  setEnabled(false);
  document.body.dataset.ready = "0";
  loaded = 0;
  let data;
  try {
    data = await api("GET", "/api/next?rater=" + encodeURIComponent(rater()));
  } catch (e) {
    token = null;
    busy = false;
    say("The vote server does not answer (stopped?). Restart it and reload this page.", true);
    return;
  }
  if (data.error) { token = null; busy = false; say(data.error, true); return; }
  token = data.token;
  $("prompt").textContent = data.prompt || "(no prompt text recorded)";
  videos[0].src = data.left;
  videos[1].src = data.right;
  pairs += 1;
  document.body.dataset.pairs = String(pairs);
  $("progress").textContent = data.progress;
  say("Loading the videos…");
  busy = false;
}
videos.forEach((v) => {
  v.addEventListener("loadeddata", () => {
    loaded += 1;
    if (loaded === 2) {
      document.body.dataset.ready = "1";
      setEnabled(true);
      say("Which video fits the prompt better and looks better?");
    }
  });
  v.addEventListener("error", () => { say("A video failed to load; press s to skip this pair.", true); });
});
async function send(choice) {
  if (busy || token === null) return;
  if (choice !== "skip" && buttons[0].disabled) return;  // a vote only once both videos have loaded
  busy = true;
  setEnabled(false);
  let data;
  try {
    data = await api("POST", choice === "skip" ? "/api/skip" : "/api/vote",
                     {token, choice, rater: rater()});
  } catch (e) {
    say("The vote server does not answer (stopped?). Restart it and reload this page.", true);
    busy = false;
    return;
  }
  if (data.error) { say(data.error, true); busy = false; setEnabled(true); return; }
  if (data.stored) {
    votes += 1;
    document.body.dataset.votes = String(votes);
  }
  next();
}
function replay() { videos.forEach((v) => { v.currentTime = 0; v.play().catch(() => {}); }); }
buttons.forEach((b) => b.addEventListener("click", () => send(b.dataset.choice)));
$("replay").addEventListener("click", replay);
$("skip").addEventListener("click", () => send("skip"));
$("rater").addEventListener("change", () => { if (token === null && !busy) next(); });  // e.g. after a bad name
const KEYS = {"1": "left", "ArrowLeft": "left", "2": "right", "ArrowRight": "right", "3": "tie", "t": "tie",
              "ArrowDown": "tie", "4": "both_bad", "b": "both_bad", "s": "skip"};
document.addEventListener("keydown", (ev) => {
  if (ev.target && ev.target.tagName === "INPUT") return;
  if (ev.key === "r") { replay(); return; }
  const choice = KEYS[ev.key];
  if (choice) { ev.preventDefault(); send(choice); }
});
document.body.dataset.votes = "0";
next();
"""


def page_html(rater: str, key: str, run_name: str) -> str:
    """The voting page for a server whose API key is `key`, with the rater field prefilled."""
    esc = html.escape
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', '<link rel="icon" href="data:,">',
        f'<meta name="vote-key" content="{esc(key)}">', f"<title>Blind vote: {esc(run_name)}</title>",
        f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>Which video is better? <small>(run {esc(run_name)}; the backends are hidden)</small></h1>",
        '<div id="prompt" aria-live="polite"></div>',
        '<div class="pair">',
        '<div class="side"><h2>Left</h2><video id="left" muted loop autoplay playsinline controls></video></div>',
        '<div class="side"><h2>Right</h2><video id="right" muted loop autoplay playsinline controls></video></div>',
        "</div>",
        '<div class="buttons">',
        '<button class="primary" data-choice="left" disabled>← Left is better (1)</button>',
        '<button data-choice="tie" disabled>Tie (3)</button>',
        '<button data-choice="both_bad" disabled>Both bad (4)</button>',
        '<button class="primary" data-choice="right" disabled>Right is better → (2)</button>',
        "</div>",
        '<div id="status"></div>',
        '<p class="meta"><button id="replay" type="button">Replay both (r)</button> '
        '<button id="skip" type="button">Skip this pair (s)</button> '
        f'<label>Rater <input id="rater" maxlength="64" value="{esc(rater)}"></label></p>',
        '<p class="meta" id="progress"></p>',
        f"<script>{_JS}</script>", "</body>", "</html>"]) + "\n"

