"""The fake vendors' shared state: configuration, fault plan, jobs on a wall-clock timeline, counters.

Jobs need no background threads: a job's status is computed from the time since its creation whenever it is
polled (queued for `queue_s` (+ `throttle_s` when throttled), running for `run_s`, then terminal).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vbench_suite.fake_vendors import media
from vbench_suite.fake_vendors.media import VideoSpec, is_shapes_prompt
from vbench_suite.fake_vendors.scenario import Draw, Quality, Scenario

FAULTS: tuple[str, ...] = ("rate_limit", "server_error", "drop_after_create", "throttled", "moderation", "fail",
                           "hang", "expired_url", "truncated", "fal_422")
"""Injectable faults. Force one for a request by putting `[fault:<name>]` in its prompt/script."""
EXPECTED_STATUS: dict[str, str] = {
    "none": "ok", "rate_limit": "ok", "server_error": "ok", "throttled": "ok", "expired_url": "ok",
    "truncated": "ok", "drop_after_create": "failed", "moderation": "refused", "fail": "failed", "hang": "failed",
    "fal_422": "refused"}
"""What a correct client ends with for each fault (fal_422 means moderation via COMPLETED-then-422)."""
FAULT_MARKER = re.compile(r"\[fault:([a-z_0-9]+)\]")


@dataclass(frozen=True)
class FakeConfig:
    """Latencies (seconds, scaled down from real vendors' minutes) and fault injection."""

    queue_s: float = 1.0
    """Time a job waits before running."""
    run_s: float = 3.0
    """Time a job runs before finishing."""
    throttle_s: float = 2.0
    """Extra waiting for throttled jobs (Runway THROTTLED, fal queue positions)."""
    fault_rate: float = 0.0
    """Probability of a random fault per request (drawn deterministically from the request body)."""
    fault_seed: int = 0
    faults: tuple[str, ...] = FAULTS
    """Faults drawn at random (markers can force any fault)."""
    retry_after_s: float = 1.0
    """Retry-After sent with 429 answers."""
    rate_limit_answers: int = 2
    """How many 429s a rate-limited create gets before it is accepted."""
    server_error_answers: int = 2
    """How many 5xx answers a server_error job's polls get."""
    url_ttl_s: float = 3600.0
    """Lifetime of an output URL."""
    require_key: bool = True
    """Answer 401/403 when the vendor's auth header is missing."""
    prebuild_videos: bool = False
    """Encode a job's output file in the background as soon as it is created, and report the job succeeded only once
    its file exists (as a vendor's job ends when its file is written), so a download never waits for an encoder.
    Costs CPU and GIL time in the server's process, so tests of protocol timing leave it off (files are then built
    when first downloaded)."""
    scenario: Scenario | None = None
    """When set, each accepted request's outcome, latency, price and output quality come from it (deterministic in
    the scenario seed and the request); `[fault:...]` markers still win over it."""
    max_video_short_side: int | None = None
    """Protocol tests only: serve files whose short side is at most this many pixels (aspect ratio, duration and
    frame rate kept; the audit reports the size served). None (the default): the requested size."""


@dataclass
class FakeJob:
    """One created job."""

    vendor: str
    job_id: str
    fingerprint: str
    """sha256 of vendor + create path + canonical body: identifies 'the same request'."""
    fault: str
    created: float
    body: dict[str, Any]
    model: str = ""
    variant: int = 0
    polls: int = 0
    cancelled: bool = False
    urls_issued: int = 0
    downloads: int = 0
    video: VideoSpec | None = None
    """What the output file is (size, frames, content, corruption)."""
    queue_s: float | None = None
    """This job's queueing time (scenario draw); None = the config's."""
    run_s: float | None = None
    draw: Draw | None = None
    """The scenario's decision for this job (None without a scenario)."""
    file_ready: bool = False
    """The output file has been built (checked by `phase` under `prebuild_videos`)."""

    def timings(self, cfg: FakeConfig) -> tuple[float, float, float]:
        """(throttle, queue, run) seconds of this job."""
        throttle = cfg.throttle_s if self.fault == "throttled" else 0.0
        queue = cfg.queue_s if self.queue_s is None else self.queue_s
        run = cfg.run_s if self.run_s is None else self.run_s
        return throttle, queue, run

    @property
    def seconds(self) -> float:
        """Duration of the output video in seconds (0 if unknown)."""
        return 0.0 if self.video is None else self.video.frames / self.video.fps

    def phase(self, cfg: FakeConfig, now: float | None = None) -> str:
        """'throttled' | 'queued' | 'running' | 'succeeded' | 'failed' | 'refused' | 'cancelled' as of now: the timed
        phase, except that under `cfg.prebuild_videos` a job whose time is up stays 'running' until its file exists
        (and its build is queued if it was not)."""
        phase = self.timed_phase(cfg, now)
        if phase == "succeeded" and cfg.prebuild_videos and self.video is not None and not self.file_ready:
            if not media.is_built(self.video):
                media.prebuild(self.video)
                return "running"
            self.file_ready = True
        return phase

    def timed_phase(self, cfg: FakeConfig, now: float | None = None) -> str:
        """The phase from the job's timeline alone (what it will be once its file exists)."""
        if self.cancelled:
            return "cancelled"
        t = (time.monotonic() if now is None else now) - self.created
        throttle, queue, run = self.timings(cfg)
        if t < throttle:
            return "throttled"
        if t < throttle + queue:
            return "queued"
        if self.fault == "hang" or t < throttle + queue + run:
            return "running"
        if self.fault in ("moderation", "fal_422"):
            return "refused"
        if self.fault == "fail":
            return "failed"
        return "succeeded"

    def progress(self, cfg: FakeConfig) -> float:
        throttle, queue, run = self.timings(cfg)
        t = time.monotonic() - self.created - queue - throttle
        return 0.5 if self.fault == "hang" else max(0.0, min(0.99, t / max(run, 1e-9)))


@dataclass(frozen=True)
class RequestedOutput:
    """The output a create request asks for, read from its payload the way the vendor documents it."""

    prompt: str
    width: int
    height: int
    seconds: float
    fps: int
    seed: int | None = None


@dataclass
class FileToken:
    job_id: str
    issued: float
    expired: bool


@dataclass
class FakeState:
    """Everything the fake knows. All access goes through `lock`."""

    config: FakeConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    creates: Counter = field(default_factory=Counter)
    """Accepted creates per request fingerprint (a correct client never makes this exceed 1)."""
    create_attempts: Counter = field(default_factory=Counter)
    """All create requests per fingerprint, 429'd ones included."""
    polls_answered_5xx: Counter = field(default_factory=Counter)
    tokens: dict[str, FileToken] = field(default_factory=dict)
    requests: int = 0
    auth_on_cdn: int = 0
    """Downloads from the CDN host that carried an auth header (a client should send none)."""

    def fingerprint(self, vendor: str, path: str, body: Any) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(f"{vendor}\x1f{path}\x1f{canonical}".encode()).hexdigest()

    def fault_for(self, fingerprint: str, body: Any) -> str:
        """Marker in the body wins; otherwise a deterministic draw at `fault_rate`."""
        text = json.dumps(body)
        marker = FAULT_MARKER.search(text)
        if marker:
            return marker.group(1)
        cfg = self.config
        if cfg.fault_rate <= 0 or not cfg.faults:
            return "none"
        digest = hashlib.sha256(f"{cfg.fault_seed}\x1f{fingerprint}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u >= cfg.fault_rate:
            return "none"
        return cfg.faults[int.from_bytes(digest[8:16], "big") % len(cfg.faults)]

    def new_job(self, vendor: str, fingerprint: str, fault: str, body: dict[str, Any], *, job_id: str | None = None,
                model: str = "", variants: int = 8, output: "RequestedOutput | None" = None) -> FakeJob:
        """Record an accepted create. With a scenario, a request without a fault marker gets the scenario's outcome
        (failed -> 'fail', refused -> moderation), and every request gets its latency and output quality."""
        scenario = self.config.scenario
        draw = scenario.draw(vendor, model, fingerprint) if scenario is not None else None
        if draw is not None and fault == "none" and draw.outcome != "succeeded":
            fault = "fail" if draw.outcome == "failed" else ("fal_422" if vendor == "fal" else "moderation")
        video = None
        if output is not None:
            seed = output.seed if output.seed is not None else int(fingerprint[8:16], 16)
            if not is_shapes_prompt(output.prompt):  # fallback content has VARIANTS looks: share their cache
                seed %= variants
            width, height = _capped(output.width, output.height, self.config.max_video_short_side)
            video = VideoSpec(prompt=output.prompt, width=width, height=height,
                              frames=max(1, round(output.seconds * output.fps)), fps=output.fps, seed=seed,
                              quality=draw.truth.quality if draw is not None else Quality(),
                              noise_seed=draw.noise_seed if draw is not None else 0)
        job = FakeJob(vendor=vendor, job_id=job_id or str(uuid.uuid4()), fingerprint=fingerprint, fault=fault,
                      created=time.monotonic(), body=body, model=model,
                      variant=int(fingerprint[:8], 16) % variants, video=video, draw=draw,
                      queue_s=None if draw is None else draw.queue_s, run_s=None if draw is None else draw.run_s)
        self.jobs[job.job_id] = job
        self.creates[fingerprint] += 1
        return job

    def billed_usd(self, job: FakeJob) -> float:
        """What the vendor charges for `job`: its price x seconds once it succeeded; failed, refused and cancelled
        jobs are refunded (Runway reports cost 0 for them), and the price is 0 without a scenario."""
        if job.draw is None or job.phase(self.config) != "succeeded":
            return 0.0
        return job.draw.truth.price.billed_usd(job.seconds)

    def audit(self) -> dict[str, Any]:
        """The truth a test compares a report with: accepted creates per request and per vendor, outcomes, bills.

        Shape: {"scenario": source|None, "vendors": {vendor: {"accepted_creates", "duplicate_creates",
        "outcomes": {phase: n}, "billed_usd", "billed_seconds"}}, "jobs": [{vendor, model, fingerprint, job_id,
        fault, phase, width, height, frames, fps, seconds, billed_usd}]}. Phases are as of now.
        """
        vendors: dict[str, dict[str, Any]] = {}
        jobs = []
        for job in self.jobs.values():
            phase = job.phase(self.config)
            billed = self.billed_usd(job)
            v = vendors.setdefault(job.vendor, {"accepted_creates": 0, "duplicate_creates": 0, "outcomes": {},
                                                "billed_usd": 0.0, "billed_seconds": 0.0})
            v["accepted_creates"] += 1
            v["outcomes"][phase] = v["outcomes"].get(phase, 0) + 1
            v["billed_usd"] += billed
            v["billed_seconds"] += job.seconds if billed > 0 else 0.0
            video = job.video
            jobs.append({"vendor": job.vendor, "model": job.model, "fingerprint": job.fingerprint,
                         "job_id": job.job_id, "fault": job.fault, "phase": phase,
                         "width": video.width if video else None, "height": video.height if video else None,
                         "frames": video.frames if video else None, "fps": video.fps if video else None,
                         "seconds": job.seconds, "billed_usd": billed})
        for fp, n in self.creates.items():
            vendor = next((j.vendor for j in self.jobs.values() if j.fingerprint == fp), None)
            if vendor is not None and n > 1:
                vendors[vendor]["duplicate_creates"] += n - 1
        scenario = self.config.scenario
        return {"scenario": None if scenario is None else scenario.source, "vendors": vendors, "jobs": jobs,
                "creates_per_request": dict(self.creates)}

    def issue_token(self, job: FakeJob) -> str:
        """A fresh output-URL token; the first one of an expired_url job is already expired."""
        token = uuid.uuid4().hex
        job.urls_issued += 1
        expired = job.fault == "expired_url" and job.urls_issued == 1
        self.tokens[token] = FileToken(job.job_id, time.monotonic(), expired)
        return token


def _capped(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down so the short side is at most `short_side` (even sizes, at least 16 pixels)."""
    if short_side is None or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(16, 2 * round(width * scale / 2)), max(16, 2 * round(height * scale / 2))
