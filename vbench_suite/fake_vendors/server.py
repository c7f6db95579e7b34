"""The fake vendors' HTTP servers: one API server speaking five protocols under path prefixes, and one 'CDN'
server for output files (so a client that sends its API key to a CDN is caught).

API prefixes: /runway (Runway dev API), /fal (fal queue), /synthesia (v2), /heygen (v3), /veo (Gemini API).
Never logs request headers or bodies (keys must not end up anywhere).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vbench_suite.fake_vendors import media
from vbench_suite.fake_vendors.scenario import RUNWAY_CREDIT_USD
from vbench_suite.fake_vendors.state import FakeConfig, FakeJob, FakeState, RequestedOutput

VENDORS: tuple[str, ...] = ("runway", "fal", "synthesia", "heygen", "veo")
REQUEST_QUEUE_SIZE = 256
RUNWAY_CREDITS_PER_S: dict[str, int] = {"gen4.5": 12, "gen4_turbo": 5, "veo3.1": 40, "veo3.1_fast": 15, "veo3": 40}
"""What the fake Runway charges (credits per second of output) in a terminal task's `cost` without a scenario."""
_RUNWAY_WIDE = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
_RUNWAY_VEO = ("1280:720", "720:1280", "1080:1920", "1920:1080")
RUNWAY_MODES: dict[tuple[str, str], tuple[tuple[str, ...], tuple[int, ...]]] = {
    ("gen4.5", "text_to_video"): (("1280:720", "720:1280"), tuple(range(2, 11))),
    ("gen4.5", "image_to_video"): (_RUNWAY_WIDE, tuple(range(2, 11))),
    ("gen4_turbo", "image_to_video"): (_RUNWAY_WIDE, tuple(range(2, 11))),
    ("veo3.1", "text_to_video"): (_RUNWAY_VEO, (4, 6, 8)), ("veo3.1", "image_to_video"): (_RUNWAY_VEO, (4, 6, 8)),
    ("veo3.1_fast", "text_to_video"): (_RUNWAY_VEO, (4, 6, 8)),
    ("veo3.1_fast", "image_to_video"): (_RUNWAY_VEO, (4, 6, 8)),
    ("veo3", "text_to_video"): (_RUNWAY_VEO, (8,)), ("veo3", "image_to_video"): (_RUNWAY_VEO, (8,)),
}
"""Runway's documented (ratios, durations) per (model, endpoint); other models accept any W:H and duration."""
RUNWAY_I2V_DEFAULT_S = 5
"""Duration when an image-to-video body omits it (the docs call it optional without stating a default)."""
PIKA_DURATIONS = (5, 10)
FAL_DEFAULTS = {"aspect_ratio": "16:9", "resolution": "720p", "duration": 5}
"""fal/Pika defaults for omitted fields (Pika v2.2 documents 16:9, 720p, 5 s)."""
VEO_DEFAULTS = {"aspectRatio": "16:9", "resolution": "720p", "durationSeconds": 8}
VEO_DURATIONS = (4, 6, 8)
AVATAR_SECONDS = 5.0
"""Length of Synthesia/HeyGen videos (really the spoken script's length, which the fake does not speak)."""
SHORT_SIDE = {"480p": 480, "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
AUDIT_PATH = "/_fake/audit"
"""GET on the API server: the fake's audit (accepted creates, outcomes, bills) as JSON. Needs no key."""


class BadPayload(ValueError):
    """A create body the vendor would reject: (field, message)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _ratio_size(ratio: str, short: int) -> tuple[int, int]:
    """'16:9' at short side 720 -> (1280, 720); sizes rounded to even pixels."""
    a, _, b = str(ratio).partition(":")
    wa, hb = float(a), float(b)
    if wa >= hb:
        return 2 * round(short * wa / hb / 2), short
    return short, 2 * round(short * hb / wa / 2)


def _int_field(body: dict[str, Any], name: str, default: int | None) -> int:
    value = body.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadPayload(name, f"{name} must be a number") from None
    if number != int(number):
        raise BadPayload(name, f"{name} must be an integer")
    return int(number)


def runway_output(endpoint: str, body: dict[str, Any]) -> RequestedOutput:
    """Runway: `ratio` is "W:H" in pixels, `duration` integer seconds (validated per model and endpoint)."""
    model, ratio = body["model"], str(body["ratio"])
    duration = _int_field(body, "duration", RUNWAY_I2V_DEFAULT_S if endpoint == "image_to_video" else None)
    allowed = RUNWAY_MODES.get((model, endpoint))
    if allowed is None and (model, "image_to_video" if endpoint == "text_to_video" else "text_to_video") in RUNWAY_MODES:
        raise BadPayload("model", f"model {model} does not support {endpoint}")
    if allowed is not None and ratio not in allowed[0]:
        raise BadPayload("ratio", f"Invalid enum value. Expected {' | '.join(allowed[0])}, received '{ratio}'")
    if allowed is not None and duration not in allowed[1]:
        raise BadPayload("duration", f"duration must be one of {', '.join(map(str, allowed[1]))}")
    w, _, h = ratio.partition(":")
    if not (w.isdigit() and h.isdigit()):
        raise BadPayload("ratio", "ratio must be 'W:H' in pixels")
    return RequestedOutput(prompt=str(body.get("promptText") or ""), width=int(w), height=int(h),
                           seconds=float(duration), fps=media.FPS, seed=body.get("seed"))


def fal_output(app: str, body: dict[str, Any]) -> RequestedOutput:
    """fal/Pika: `aspect_ratio` (e.g. 16:9), `resolution` (720p/1080p), `duration` (Pika: 5 or 10 s)."""
    ratio = str(body.get("aspect_ratio") or FAL_DEFAULTS["aspect_ratio"])
    resolution = str(body.get("resolution") or FAL_DEFAULTS["resolution"]).lower()
    duration = _int_field(body, "duration", FAL_DEFAULTS["duration"])
    if resolution not in SHORT_SIDE:
        raise BadPayload("resolution", f"resolution must be one of {', '.join(SHORT_SIDE)}")
    if "pika" in app and duration not in PIKA_DURATIONS:
        raise BadPayload("duration", f"duration must be one of {', '.join(map(str, PIKA_DURATIONS))}")
    try:
        width, height = _ratio_size(ratio, SHORT_SIDE[resolution])
    except ValueError:
        raise BadPayload("aspect_ratio", "aspect_ratio must look like 16:9") from None
    return RequestedOutput(prompt=str(body.get("prompt") or ""), width=width, height=height, seconds=float(duration),
                           fps=media.FPS, seed=body.get("seed"))


def veo_output(body: dict[str, Any]) -> RequestedOutput:
    """Gemini API Veo: `parameters.aspectRatio` 16:9/9:16, `resolution` 720p/1080p/4k, `durationSeconds` 4/6/8."""
    params = {**VEO_DEFAULTS, **(body.get("parameters") or {})}
    if params["aspectRatio"] not in ("16:9", "9:16"):
        raise BadPayload("aspectRatio", "aspectRatio must be 16:9 or 9:16")
    if params["resolution"] not in ("720p", "1080p", "4k"):
        raise BadPayload("resolution", "resolution must be 720p, 1080p or 4k")
    duration = _int_field(params, "durationSeconds", None)
    if duration not in VEO_DURATIONS:
        raise BadPayload("durationSeconds", "durationSeconds must be 4, 6 or 8")
    width, height = _ratio_size(params["aspectRatio"], SHORT_SIDE[params["resolution"]])
    prompt = str(((body.get("instances") or [{}])[0]).get("prompt") or "")
    return RequestedOutput(prompt=prompt, width=width, height=height, seconds=float(duration), fps=media.FPS)


def avatar_output(vendor: str, body: dict[str, Any]) -> RequestedOutput:
    """Synthesia (no size fields: 1280x720) and HeyGen (`resolution`, `aspect_ratio`, 'auto' = 16:9)."""
    if vendor == "heygen":
        ratio = body.get("aspect_ratio") or "16:9"
        width, height = _ratio_size("16:9" if ratio == "auto" else ratio, SHORT_SIDE.get(
            str(body.get("resolution") or "720p").lower(), 720))
        script = str(body.get("script") or "")
    else:
        width, height = 1280, 720
        script = str(((body.get("input") or [{}])[0]).get("scriptText") or "")
    return RequestedOutput(prompt=script, width=width, height=height, seconds=AVATAR_SECONDS, fps=media.FPS)


class _Drop(Exception):
    """Close the connection without answering."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = REQUEST_QUEUE_SIZE
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type, state: FakeState, role: str) -> None:
        super().__init__(addr, handler)
        self.state = state
        self.role = role
        self.cdn_base = ""
        self.api_base = ""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish (killed, timed out) are expected here; nothing is printed (a library never prints)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: request lines could carry presigned tokens, and nothing here may print."""

    # ---- plumbing -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        state = self.server.state
        with state.lock:
            state.requests += 1
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        self.query = parse_qs(parts.query)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._json(400, {"error": "body is not JSON"})
            return
        try:
            if self.server.role == "cdn":
                self._cdn(method, parts.path)
            else:
                self._api(method, parts.path, body)
        except _Drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (KeyError, TypeError, ValueError) as exc:
            self._json(400, {"error": f"bad request: {type(exc).__name__}"})

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if data:
            self.wfile.write(data)

    @property
    def cfg(self) -> FakeConfig:
        return self.server.state.config

    def _origin(self) -> str:
        return self.server.api_base

    # ---- routing ------------------------------------------------------------------------------------------
    def _api(self, method: str, path: str, body: Any) -> None:
        prefix, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest
        handler = {"runway": self._runway, "fal": self._fal, "synthesia": self._synthesia,
                   "heygen": self._heygen, "veo": self._veo}.get(prefix)
        if method == "GET" and path == AUDIT_PATH:
            with self.server.state.lock:
                audit = self.server.state.audit()
            self._json(200, audit)
            return
        if handler is None:
            self._json(404, {"error": f"no such vendor prefix '/{prefix}'"})
            return
        if self.cfg.require_key and not self._authorised(prefix):
            self._auth_error(prefix)
            return
        handler(method, rest, body)

    def _authorised(self, vendor: str) -> bool:
        auth = self.headers.get("Authorization", "")
        if vendor == "runway":
            return auth.startswith("Bearer ") and len(auth) > 7 and bool(self.headers.get("X-Runway-Version"))
        if vendor == "fal":
            return auth.startswith("Key ") and len(auth) > 4
        if vendor == "synthesia":
            return bool(auth) and not auth.startswith("Bearer ")
        if vendor == "heygen":
            return bool(self.headers.get("x-api-key"))
        return bool(self.headers.get("x-goog-api-key") or self.query.get("key"))

    def _auth_error(self, vendor: str) -> None:
        shapes: dict[str, tuple[int, Any]] = {
            "runway": (401, {"error": "Invalid API key or missing X-Runway-Version header"}),
            "fal": (401, {"detail": "No user found for Key ID and Secret"}),
            "synthesia": (403, {"error": "Forbidden", "context": "invalid API key"}),
            "heygen": (401, {"error": {"code": "unauthorized", "message": "Invalid API key"}}),
            "veo": (403, {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}}),
        }
        status, body = shapes[vendor]
        self._json(status, body)

    # ---- shared create/poll logic ------------------------------------------------------------------------
    def _create(self, vendor: str, path: str, body: Any, *, model: str = "", job_id: str | None = None,
                output: RequestedOutput | None = None) -> FakeJob | None:
        """Count the create, apply create-time faults (429 / drop); None means an answer was already sent."""
        state = self.server.state
        with state.lock:
            fp = state.fingerprint(vendor, path, body)
            fault = state.fault_for(fp, body)
            state.create_attempts[fp] += 1
            rate_limited = fault == "rate_limit" and state.create_attempts[fp] <= self.cfg.rate_limit_answers
            job = None if rate_limited else state.new_job(vendor, fp, fault, body, job_id=job_id, model=model,
                                                          variants=media.VARIANTS, output=output)
        if rate_limited:
            self._rate_limited(vendor)
            return None
        assert job is not None
        if self.cfg.prebuild_videos and job.video is not None and job.timed_phase(self.cfg, now=job.created + 1e9
                                                                                   ) == "succeeded":
            media.prebuild(job.video)
        if fault == "drop_after_create" and state.creates[fp] == 1:
            raise _Drop()
        return job

    def _rate_limited(self, vendor: str) -> None:
        wait = self.cfg.retry_after_s
        headers = {"Retry-After": str(max(0, int(round(wait)))), "retry-after-ms": str(int(wait * 1000))}
        bodies: dict[str, Any] = {
            "runway": {"error": "You have exceeded your daily generation limit."},
            "fal": {"detail": "Too many requests", "error_type": "rate_limited"},
            "synthesia": {"error": "Too many requests", "context": "rate limit"},
            "heygen": {"error": {"code": "rate_limit_exceeded", "message": "Too many concurrent jobs"}},
            "veo": {"error": {"code": 429, "message": "Resource has been exhausted.",
                              "status": "RESOURCE_EXHAUSTED"}},
        }
        if vendor == "synthesia":
            headers["RateLimit-Limit"] = "60"
            headers["RateLimit-Reset"] = headers["Retry-After"]
        self._json(429, bodies[vendor], headers)

    def _job(self, job_id: str, vendor: str) -> FakeJob | None:
        with self.server.state.lock:
            job = self.server.state.jobs.get(job_id)
            if job is None or job.vendor != vendor:
                return None
            job.polls += 1
            return job

    def _poll_fault(self, job: FakeJob, vendor: str) -> bool:
        """server_error jobs: the first polls answer 5xx. True when an answer was sent."""
        state = self.server.state
        if job.fault != "server_error":
            return False
        with state.lock:
            if state.polls_answered_5xx[job.job_id] >= self.cfg.server_error_answers:
                return False
            state.polls_answered_5xx[job.job_id] += 1
            n = state.polls_answered_5xx[job.job_id]
        status = 503 if n % 2 else 500
        bodies: dict[str, Any] = {
            "runway": {"error": "Service unavailable"}, "fal": {"detail": "Internal error", "error_type":
                                                              "internal_error"},
            "synthesia": {"error": "Internal Server Error"},
            "heygen": {"error": {"code": "internal_error", "message": "Internal error"}},
            "veo": {"error": {"code": status, "message": "The service is currently unavailable.",
                              "status": "UNAVAILABLE"}}}
        self._json(status, bodies[vendor])
        return True

    def _output_url(self, job: FakeJob) -> str:
        with self.server.state.lock:
            token = self.server.state.issue_token(job)
        if job.vendor == "veo":
            return f"{self._origin()}/veo/v1beta/files/{token}:download?alt=media"
        return f"{self.server.cdn_base}/files/{token}.mp4?expires=1"

    # ---- Runway -------------------------------------------------------------------------------------------
    def _runway(self, method: str, path: str, body: Any) -> None:
        if method == "POST" and path in ("/v1/text_to_video", "/v1/image_to_video"):
            missing = [k for k in ("model", "promptText" if path.endswith("text_to_video") else "promptImage",
                                   "ratio") if not (body or {}).get(k)]
            if path.endswith("text_to_video") and "duration" not in (body or {}):
                missing.append("duration")
            if missing:
                self._json(400, {"error": "Validation of body failed",
                                 "issues": [{"path": [k], "message": "Required"} for k in missing]})
                return
            try:
                output = runway_output(path.rsplit("/", 1)[1], body)
            except BadPayload as bad:
                self._json(400, {"error": "Validation of body failed",
                                 "issues": [{"path": [bad.field], "message": bad.message}]})
                return
            job = self._create("runway", path, body, model=body["model"], output=output)
            if job is not None:
                self._json(200, {"id": job.job_id})
            return
        if path.startswith("/v1/tasks/"):
            job = self._job(path.rsplit("/", 1)[1], "runway")
            if job is None:
                self._json(404, {"error": "Task not found"})
                return
            if method == "DELETE":
                job.cancelled = True
                self._json(204, None)
                return
            if self._poll_fault(job, "runway"):
                return
            created = _iso(job.created)
            phase = job.phase(self.cfg)
            out: dict[str, Any] = {"id": job.job_id, "createdAt": created}
            credits = self._runway_credits(job)
            if phase in ("throttled", "queued", "running"):
                out["estimatedCost"] = {"credits": float(credits)}
            else:
                out["cost"] = {"credits": credits if phase == "succeeded" else 0}
            if phase == "throttled":
                out["status"] = "THROTTLED"
            elif phase == "queued":
                out["status"] = "PENDING"
            elif phase == "running":
                out.update(status="RUNNING", progress=round(job.progress(self.cfg), 3))
            elif phase == "succeeded":
                out.update(status="SUCCEEDED", output=[self._output_url(job)])
            elif phase == "refused":
                out.update(status="FAILED", failure="Content moderation rejected the input",
                           failureCode="SAFETY.INPUT.TEXT")
            elif phase == "cancelled":
                out["status"] = "CANCELLED"
            else:
                out.update(status="FAILED", failure="The asset could not be processed", failureCode="ASSET.INVALID")
            self._json(200, out)
            return
        self._json(404, {"error": "Not found"})

    def _runway_credits(self, job: FakeJob) -> float:
        """Credits for the job's whole duration: the scenario's price, else RUNWAY_CREDITS_PER_S."""
        if job.draw is not None:
            price = job.draw.truth.price
            per_s = price.credits_per_s if price.credits_per_s is not None else price.usd_per_s / RUNWAY_CREDIT_USD
        else:
            per_s = RUNWAY_CREDITS_PER_S.get(job.model, 10)
        credits = per_s * job.seconds
        return int(credits) if float(credits).is_integer() else round(credits, 6)

    # ---- fal queue ----------------------------------------------------------------------------------------
    def _fal(self, method: str, path: str, body: Any) -> None:
        segments = [s for s in path.split("/") if s]
        if "requests" in segments:
            i = segments.index("requests")
            app = "/".join(segments[:i])
            request_id = segments[i + 1] if len(segments) > i + 1 else ""
            tail = segments[i + 2:]
            job = self._job(request_id, "fal")
            if job is None:
                self._json(404, {"detail": "Request not found"})
                return
            base = f"{self._origin()}/fal/{app}/requests/{request_id}"
            if method == "PUT" and tail == ["cancel"]:
                done = job.phase(self.cfg) in ("succeeded", "failed", "refused")
                if done:
                    self._json(400, {"status": "ALREADY_COMPLETED"})
                else:
                    job.cancelled = True
                    self._json(202, {"status": "CANCELLATION_REQUESTED"})
                return
            if tail == ["status"]:
                if self._poll_fault(job, "fal"):
                    return
                phase = job.phase(self.cfg)
                if phase in ("throttled", "queued"):
                    position = 3 if phase == "throttled" else 0
                    self._json(200, {"status": "IN_QUEUE", "queue_position": position, "response_url": base},
                               {"x-fal-request-id": job.job_id})
                elif phase == "running":
                    self._json(200, {"status": "IN_PROGRESS", "logs": None, "response_url": base},
                               {"x-fal-request-id": job.job_id})
                else:
                    out: dict[str, Any] = {"status": "COMPLETED", "logs": None, "response_url": base,
                                           "metrics": {"inference_time": self.cfg.run_s}}
                    if phase == "failed":
                        out.update(error="Internal server error", error_type="runner_server_error")
                    if phase == "cancelled":
                        out.update(error="Request was cancelled", error_type="client_cancelled")
                    self._json(200, out, {"x-fal-request-id": job.job_id})
                return
            if not tail and method == "GET":
                phase = job.phase(self.cfg)
                if phase in ("throttled", "queued", "running"):
                    self._json(400, {"detail": "Request is still in progress"})
                elif phase == "refused":
                    self._json(422, {"detail": [{
                        "loc": ["body", "prompt"], "type": "content_policy_violation",
                        "msg": "The content could not be processed because it contained material flagged by a "
                               "content checker.", "url": "https://docs.fal.ai/errors#content_policy_violation",
                        "input": {"prompt": (job.body or {}).get("prompt", "")}}]}, {"X-Fal-Retryable": "false"})
                elif phase in ("failed", "cancelled"):
                    self._json(500, {"detail": "Internal server error", "error_type": "runner_server_error"},
                               {"X-Fal-Error-Type": "runner_server_error", "x-fal-request-id": job.job_id})
                else:
                    self._json(200, {"video": {"url": self._output_url(job), "content_type": "video/mp4",
                                               "file_name": "output.mp4",
                                               "file_size": len(self._video(job))},
                                     "seed": (job.body or {}).get("seed")})
                return
            self._json(405, {"detail": "Method not allowed"})
            return
        if method == "POST" and len(segments) >= 2:
            if not isinstance(body, dict) or not body.get("prompt") and not body.get("image_url"):
                self._json(422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required",
                                             "type": "missing"}]})
                return
            ns = 3 if segments[0] in ("workflows", "comfy") else 2
            app = "/".join(segments[:ns])
            try:
                output = fal_output("/".join(segments), body)
            except BadPayload as bad:
                self._json(422, {"detail": [{"loc": ["body", bad.field], "msg": bad.message,
                                             "type": "value_error"}]})
                return
            job = self._create("fal", path, body, model="/".join(segments), output=output)
            if job is None:
                return
            base = f"{self._origin()}/fal/{app}/requests/{job.job_id}"
            self._json(200, {"request_id": job.job_id, "response_url": base, "status_url": f"{base}/status",
                             "cancel_url": f"{base}/cancel", "queue_position": 0})
            return
        self._json(404, {"detail": "Not found"})

    # ---- Synthesia ----------------------------------------------------------------------------------------
    def _synthesia(self, method: str, path: str, body: Any) -> None:
        if method == "POST" and path == "/v2/videos":
            scenes = (body or {}).get("input")
            if not scenes or not all(s.get("avatar") and s.get("background") for s in scenes):
                self._json(400, {"error": "Invalid input", "context": "input[].avatar and background are required"})
                return
            job = self._create("synthesia", path, body, output=avatar_output("synthesia", body))
            if job is not None:
                self._json(201, self._synthesia_video(job, "in_progress"))
            return
        if path.startswith("/v2/videos/"):
            job = self._job(path.rsplit("/", 1)[1], "synthesia")
            if job is None:
                self._json(404, {"error": "Video not found"})
                return
            if method == "DELETE":
                job.cancelled = True
                self._json(204, None)
                return
            if self._poll_fault(job, "synthesia"):
                return
            phase = job.phase(self.cfg)
            status = {"succeeded": "complete", "refused": "rejected", "failed": "error",
                      "cancelled": "deleted"}.get(phase, "in_progress")
            self._json(200, self._synthesia_video(job, status))
            return
        self._json(404, {"error": "Not found"})

    def _synthesia_video(self, job: FakeJob, status: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": job.job_id, "title": (job.body or {}).get("title", ""), "visibility": "private",
                               "status": status, "createdAt": int(_wall(job.created)),
                               "lastUpdatedAt": int(time.time())}
        if status == "complete":
            out.update(download=self._output_url(job), duration=f"0:00:{job.seconds:09.6f}",
                       thumbnail=None)
        if status == "rejected":
            out["error"] = "The script was rejected by content moderation"
        return out

    # ---- HeyGen -------------------------------------------------------------------------------------------
    def _heygen(self, method: str, path: str, body: Any) -> None:
        if method == "POST" and path == "/v3/videos":
            if not isinstance(body, dict) or body.get("type") not in ("avatar", "image", "cinematic_avatar",
                                                                      "studio"):
                self._json(400, {"error": {"code": "validation_error", "message": "type is required",
                                           "param": "type"}})
                return
            job = self._create("heygen", path, body, job_id=uuid.uuid4().hex, output=avatar_output("heygen", body))
            if job is not None:
                self._json(200, {"data": {"video_id": job.job_id}})
            return
        if path.startswith("/v3/videos/"):
            job = self._job(path.rsplit("/", 1)[1], "heygen")
            if job is None:
                self._json(404, {"error": {"code": "not_found", "message": "Video not found"}})
                return
            if self._poll_fault(job, "heygen"):
                return
            phase = job.phase(self.cfg)
            data: dict[str, Any] = {"id": job.job_id, "status": {
                "throttled": "pending", "queued": "pending", "running": "processing", "succeeded": "completed"
            }.get(phase, "failed"), "video_url": None, "created_at": int(_wall(job.created)), "completed_at": None,
                "failure_code": None, "failure_message": None, "duration": None}
            if phase == "succeeded":
                data.update(video_url=self._output_url(job), duration=job.seconds,
                            completed_at=int(time.time()), thumbnail_url=None, gif_url=None)
            elif phase == "refused":
                data.update(failure_code="content_moderation", failure_message="Script violates the content policy")
            elif phase in ("failed", "cancelled"):
                data.update(failure_code="render_failed", failure_message="Video rendering failed")
            self._json(200, {"data": data})
            return
        self._json(404, {"error": {"code": "not_found", "message": "Not found"}})

    # ---- Veo (Gemini API) ---------------------------------------------------------------------------------
    def _veo(self, method: str, path: str, body: Any) -> None:
        # google-genai >= 3.6 defaults to API version v1; the REST docs use v1beta. Both are served.
        if path.startswith("/v1/"):
            path = "/v1beta/" + path[len("/v1/"):]
        if method == "POST" and path.startswith("/v1beta/models/") and path.endswith(":predictLongRunning"):
            model = path[len("/v1beta/models/"):-len(":predictLongRunning")]
            instances = (body or {}).get("instances") or []
            if not instances or not instances[0].get("prompt") and not instances[0].get("image"):
                self._json(400, {"error": {"code": 400, "message": "instances[0].prompt is required",
                                           "status": "INVALID_ARGUMENT"}})
                return
            try:
                output = veo_output(body)
            except BadPayload as bad:
                self._json(400, {"error": {"code": 400, "message": bad.message, "status": "INVALID_ARGUMENT"}})
                return
            op = f"models/{model}/operations/{uuid.uuid4().hex[:12]}"
            job = self._create("veo", path, body, model=model, job_id=op, output=output)
            if job is not None:
                self._json(200, {"name": job.job_id})
            return
        if method == "GET" and path.startswith("/v1beta/files/") and path.endswith(":download"):
            token = path[len("/v1beta/files/"):-len(":download")]
            self._serve_file(token)
            return
        if method == "GET" and "/operations/" in path:
            job = self._job(path[len("/v1beta/"):], "veo")
            if job is None:
                self._json(404, {"error": {"code": 404, "message": "Operation not found", "status": "NOT_FOUND"}})
                return
            if self._poll_fault(job, "veo"):
                return
            phase = job.phase(self.cfg)
            out: dict[str, Any] = {"name": job.job_id}
            if phase in ("throttled", "queued", "running"):
                self._json(200, out)
                return
            out["done"] = True
            if phase == "succeeded":
                out["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                            "PredictLongRunningResponse",
                                   "generateVideoResponse": {"generatedSamples": [
                                       {"video": {"uri": self._output_url(job)}}]}}
            elif phase == "refused":
                out["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                                            "PredictLongRunningResponse",
                                   "generateVideoResponse": {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [
                                       "The prompt could not be submitted: it violates the usage guidelines."]}}
            else:
                out["error"] = {"code": 3, "message": "Video generation failed: the input image could not be "
                                                      "used.", "status": "INVALID_ARGUMENT"}
            self._json(200, out)
            return
        self._json(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})

    # ---- files --------------------------------------------------------------------------------------------
    def _cdn(self, method: str, path: str) -> None:
        if self.headers.get("Authorization") or self.headers.get("x-api-key") or self.headers.get("x-goog-api-key"):
            with self.server.state.lock:
                self.server.state.auth_on_cdn += 1
        if method == "GET" and path.startswith("/files/"):
            self._serve_file(path[len("/files/"):].removesuffix(".mp4"))
            return
        self._json(404, {"error": "Not found"})

    def _serve_file(self, token: str) -> None:
        state = self.server.state
        with state.lock:
            entry = state.tokens.get(token)
            job = state.jobs.get(entry.job_id) if entry else None
            expired = entry is not None and (entry.expired or time.monotonic() - entry.issued > self.cfg.url_ttl_s)
            if job is not None:
                job.downloads += 1
        if entry is None or job is None or expired:
            self._json(403, {"error": "AccessDenied", "message": "Request has expired"})
            return
        data = self._video(job)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if job.fault == "truncated" and job.downloads == 1:
            self.wfile.write(data[: len(data) // 2])
            raise _Drop()
        self.wfile.write(data)


    def _video(self, job: FakeJob) -> bytes:
        spec = job.video or media.VideoSpec(prompt="", width=64, height=64, frames=2 * media.FPS, seed=job.variant)
        return media.video_bytes(spec)


def _wall(monotonic_t: float) -> float:
    return time.time() - (time.monotonic() - monotonic_t)


def _iso(monotonic_t: float) -> str:
    return datetime.fromtimestamp(_wall(monotonic_t), timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


class FakeVendors:
    """Start/stop the fake vendor servers on loopback ports (port 0 = any free port).

    >>> with FakeVendors(FakeConfig(queue_s=0.01, run_s=0.02)) as fake:
    ...     url = fake.base_url("runway")   # http://127.0.0.1:PORT/runway
    """

    def __init__(self, config: FakeConfig | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 cdn_port: int = 0) -> None:
        self.state = FakeState(config or FakeConfig())
        self.host, self._port, self._cdn_port = host, port, cdn_port
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> "FakeVendors":
        api = _Server((self.host, self._port), _Handler, self.state, "api")
        cdn = _Server((self.host, self._cdn_port), _Handler, self.state, "cdn")
        api.api_base = cdn.api_base = f"http://{self.host}:{api.server_address[1]}"
        api.cdn_base = cdn.cdn_base = f"http://{self.host}:{cdn.server_address[1]}"
        self._servers = [api, cdn]
        for srv in self._servers:
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                                 name=f"fake-vendors-{srv.role}")
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._servers, self._threads = [], []

    def __enter__(self) -> "FakeVendors":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_origin(self) -> str:
        return self._servers[0].api_base

    @property
    def cdn_origin(self) -> str:
        return self._servers[0].cdn_base

    def base_url(self, vendor: str) -> str:
        """Base URL to configure a backend (or an SDK) with, e.g. http://127.0.0.1:PORT/runway."""
        if vendor not in VENDORS:
            raise ValueError(f"unknown fake vendor '{vendor}' (one of {', '.join(VENDORS)})")
        return f"{self.api_origin}/{vendor}"

    def env(self) -> dict[str, str]:
        """VBENCH_<VENDOR>_BASE_URL for every vendor (what `vbench-suite fake-vendors` prints)."""
        return {f"VBENCH_{v.upper()}_BASE_URL": self.base_url(v) for v in VENDORS}

    def created_per_request(self) -> dict[str, int]:
        """Accepted creates per request fingerprint (a correct client never exceeds 1)."""
        with self.state.lock:
            return dict(self.state.creates)

    def jobs(self) -> list[FakeJob]:
        with self.state.lock:
            return list(self.state.jobs.values())

    def audit(self) -> dict[str, Any]:
        """The fake's ground truth (see `FakeState.audit`); also served at GET {api_origin}/_fake/audit."""
        with self.state.lock:
            return self.state.audit()

    def write_audit(self, path: str | Path) -> None:
        """Write `audit()` as JSON to `path` atomically (temp file + rename)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(self.audit(), indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, target)
