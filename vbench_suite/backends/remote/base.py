"""The template every paid-API backend follows: submit -> poll -> (result) -> download, written once.

A vendor subclass only builds payloads and parses responses (pure functions of their inputs):
`build_create`, `parse_create`, `build_poll`, `parse_poll`, optionally `build_result`/`parse_result` (fal),
`classify_http_error`, plus identity (`fingerprint`, `capabilities`, `price_key`). This class owns the HTTP
client, timeouts by phase, the retry policy, the job deadline, crash-safe job records, downloads, latency and cost.

Crash safety (no vendor supports idempotency keys):
1. before the create request, `ctx.record_job({"state": "submitting", ...})` (no job id yet);
2. after the create answer, `ctx.record_job({"state": "submitted", "job_id": ...})` and only then poll;
3. a create whose answer was lost is never re-sent; its result is `failed` (retriable) with the reason;
4. `ctx.recorded_job` set -> poll that job (fresh output URLs come with it) instead of submitting. A recorded
   `submitting` entry without a job id means the earlier create's outcome is unknown: not re-sent either.
5. when the vendor ends a job refused/failed, `{"state": "finished", "retriable": ...}` is recorded. A later
   call for the same key submits a new job only if that failure was retriable (the runner retrying it); otherwise
   it re-polls the job and reports the same outcome (a crash between the two records changes nothing). A job
   that passed the deadline is not finished: a later call polls it again.
"""
from __future__ import annotations

import abc
import base64
import logging
import math
import mimetypes
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

import httpx

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.backends.remote import pricing
from vbench_suite.backends.remote.retry import RetryPolicy
from vbench_suite.backends.remote.transport import (MAX_DOWNLOAD_BYTES, CallError, CallStats, Downloaded,
                                                    ExpiredURLError, Transport, api_timeout, download_timeout,
                                                    is_loopback_host, same_origin, validate_base_url)
from vbench_suite.errors import BackendNotConfigured, ConfigError
from vbench_suite.types import Fingerprint, GenerationRequest, GenerationResult, Latency, make_extra

log = logging.getLogger(__name__)

JobPhase = Literal["queued", "running", "succeeded", "failed", "refused"]
TERMINAL_PHASES: frozenset[str] = frozenset({"succeeded", "failed", "refused"})
"""Harness phases after which polling stops. Vendors' own vocabularies map onto these in each subclass."""

POLL_INTERVAL_S = 2.0
"""Default seconds between polls (the fake's tests use milliseconds)."""
POLL_JITTER_FRACTION = 0.1
"""Polls are spread by +-10% so concurrent jobs do not poll in lock-step."""
JOB_DEADLINE_S = 30 * 60.0
"""Default longest time one job may take from submit to terminal state before it is reported as failed."""
MAX_URL_REFRESHES = 2
"""How often an expired output URL is refreshed from the job before giving up."""
JOB_GONE_STATUSES: frozenset[int] = frozenset({404, 410})
"""Poll answers meaning the vendor no longer knows the job."""
MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024
"""Conditioning images travel inline as data URIs; vendors cap them around 5 MB."""
ENV_BASE_URL = "VBENCH_{vendor}_BASE_URL"
"""Environment variable that overrides a vendor's base URL (vendor upper-cased)."""
ENV_SIMULATED = "VBENCH_SIMULATED"
"""Set to 1 to label results simulated even when the base URL is not loopback."""

STATE_SUBMITTING = "submitting"
STATE_SUBMITTED = "submitted"
STATE_NOT_CREATED = "not_created"
STATE_FINISHED = "finished"
"""Recorded when the vendor ends a job refused/failed: a later call submits a new job instead of re-polling."""


@dataclass(frozen=True)
class HttpCall:
    """One request a subclass wants sent: method, path relative to the base URL, JSON body, query."""

    method: str
    path: str
    json: Any = None
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class JobStatus:
    """A vendor's job state mapped onto harness phases (what `parse_poll`/`parse_result` return)."""

    phase: JobPhase
    vendor_status: str = ""
    """The vendor's own status literal (kept in the result's info)."""
    output_url: str | None = None
    """Where the finished video can be downloaded (phase 'succeeded')."""
    needs_result: bool = False
    """True when the output lives behind a separate result call (fal's COMPLETED)."""
    reason: str | None = None
    """Vendor's words for a refusal or failure."""
    code: str | None = None
    """Vendor's failure code, if any."""
    retriable: bool = False
    """For 'failed': whether trying again later may succeed."""
    queue_position: int | None = None
    progress: float | None = None
    video_seconds: float | None = None
    """Duration the vendor reports for the output (talking heads: from the script)."""
    vendor_times: tuple[tuple[str, Any], ...] = ()
    """Vendor timestamps (created/completed...) as (name, value) pairs."""
    vendor_cost_usd: float | None = None
    """What the vendor says this job cost (Runway reports credits on terminal tasks); preferred over tables."""


@dataclass(frozen=True)
class ErrorVerdict:
    """How a non-2xx answer is classified by the vendor subclass."""

    phase: Literal["failed", "refused"]
    reason: str
    retriable: bool = False
    code: str | None = None


class _Outcome(Exception):
    """Internal: ends a generation early with a classified non-ok result."""

    def __init__(self, phase: Literal["failed", "refused"], reason: str, *, retriable: bool = False,
                 code: str | None = None, info: Mapping[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.phase, self.reason, self.retriable, self.code = phase, reason, retriable, code
        self.info = dict(info or {})
        self.job_gone = False
        """True when the vendor no longer knows the job (a later call may submit a new one)."""


@dataclass
class _Timeline:
    """Monotonic timestamps of one generation (seconds)."""

    start: float
    first_not_queued: float | None = None
    saw_queued: bool = False
    terminal: float | None = None
    download_start: float | None = None
    end: float | None = None
    polls: int = 0
    last_status: str = ""
    max_queue_position: int | None = None


class RemoteBackend(Backend, abc.ABC):
    """Template for paid video APIs. Subclasses set the class attributes and implement the hooks.

    Options common to every remote backend (config keys): base_url, simulated, poll_interval_s, job_deadline_s,
    max_concurrency, max_download_mb, connect_timeout_s, read_timeout_s, download_read_timeout_s,
    retry_max_attempts, retry_base_delay_s, max_retry_after_s, price_usd_per_second, resubmit_unknown_creates
    (False: a create interrupted before its answer was recorded is never re-sent; True accepts the risk of paying
    twice to get a result). Unknown keys raise ConfigError.
    """

    bills_usd = True
    remote = True
    vendor: str = ""
    """Short vendor id used for env names and price tables ('runway', 'fal', ...)."""
    api_key_env: str = ""
    """Environment variable holding the API key."""
    default_base_url: str = ""
    default_max_concurrency: int = 2
    api_version: str = ""
    """Vendor API version (part of the fingerprint)."""
    dashboard_hint: str = ""
    """Where to check, in the vendor's dashboard or API, whether a create whose answer was lost made (and billed) a
    job: stored in such records and shown in the run summary and report (which never import backends)."""

    def __init__(self, *, base_url: str | None = None, simulated: bool | None = None,
                 poll_interval_s: float = POLL_INTERVAL_S, job_deadline_s: float = JOB_DEADLINE_S,
                 max_concurrency: int | None = None, max_download_mb: float = MAX_DOWNLOAD_BYTES / 2**20,
                 connect_timeout_s: float = 10.0, read_timeout_s: float = 30.0,
                 download_read_timeout_s: float = 60.0, retry_max_attempts: int | None = None,
                 retry_base_delay_s: float | None = None, max_retry_after_s: float | None = None,
                 price_usd_per_second: float | None = None, resubmit_unknown_creates: bool = False,
                 **unknown: Any) -> None:
        if unknown:
            raise ConfigError(f"backend '{self.name}': unknown option(s) {', '.join(sorted(unknown))}")
        env_name = ENV_BASE_URL.format(vendor=self.vendor.upper())
        raw_url = base_url or os.environ.get(env_name) or self.default_base_url
        self.base_url = validate_base_url(raw_url, what=f"backend '{self.name}'")
        host = httpx.URL(self.base_url).host
        self.simulated = bool(simulated) if simulated is not None else (
            is_loopback_host(host) or os.environ.get(ENV_SIMULATED, "") == "1")
        for label, value in (("poll_interval_s", poll_interval_s), ("job_deadline_s", job_deadline_s),
                             ("max_download_mb", max_download_mb)):
            if not value > 0:
                raise ConfigError(f"backend '{self.name}': {label} must be > 0, got {value}")
        self.poll_interval_s = float(poll_interval_s)
        self.job_deadline_s = float(job_deadline_s)
        self.max_concurrency = int(max_concurrency or self.default_max_concurrency)
        self.max_download_bytes = int(max_download_mb * 2**20)
        self.price_usd_per_second = price_usd_per_second
        self.resubmit_unknown_creates = bool(resubmit_unknown_creates)
        defaults = RetryPolicy()
        policy = RetryPolicy(
            max_attempts=retry_max_attempts or defaults.max_attempts,
            base_delay_s=defaults.base_delay_s if retry_base_delay_s is None else retry_base_delay_s,
            max_retry_after_s=defaults.max_retry_after_s if max_retry_after_s is None else max_retry_after_s)
        self.transport = Transport(base_url=self.base_url, policy=policy,
                                   api_timeout=api_timeout(connect_timeout_s, read_timeout_s),
                                   download_timeout=download_timeout(connect_timeout_s, download_read_timeout_s),
                                   max_connections=max(4, 2 * self.max_concurrency))
        self._rng = random.Random()

    # ---- hooks a vendor implements -------------------------------------------------------------------------

    @abc.abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]:
        """Headers carrying `key` (and any required version header)."""

    @abc.abstractmethod
    def build_create(self, request: GenerationRequest) -> HttpCall:
        """The create request for `request` (pure)."""

    @abc.abstractmethod
    def parse_create(self, body: Any) -> dict[str, Any]:
        """From the create answer, the job record: at least {'job_id': str}, plus what polling needs. No secrets."""

    @abc.abstractmethod
    def build_poll(self, job: Mapping[str, Any]) -> HttpCall:
        """The status request for a recorded job."""

    @abc.abstractmethod
    def parse_poll(self, body: Any) -> JobStatus:
        """Map a status answer onto a JobStatus (pure)."""

    def build_result(self, job: Mapping[str, Any]) -> HttpCall:
        """The result request, for vendors whose status answer has no output (fal)."""
        raise NotImplementedError

    def parse_result(self, response: httpx.Response) -> JobStatus:
        """Map a result answer (any HTTP status) onto a terminal JobStatus."""
        raise NotImplementedError

    def classify_http_error(self, response: httpx.Response, *, during: str) -> ErrorVerdict:
        """Classify a non-2xx answer that the retry policy did not (or no longer) retry. `during` is 'create',
        'poll' or 'result'. The default reads a message from the body; subclasses spot moderation."""
        from vbench_suite.backends.remote.retry import is_retriable_status

        status = response.status_code
        message = self.error_message(response)
        if status in (401, 403):
            return ErrorVerdict("failed", f"HTTP {status} during {during}: authentication failed ({message}); "
                                          f"check {self.api_key_env}", retriable=False)
        return ErrorVerdict("failed", f"HTTP {status} during {during}: {message}",
                            retriable=is_retriable_status(status))

    def error_message(self, response: httpx.Response) -> str:
        """A short human message from an error body (vendor shapes differ; this handles the common ones)."""
        try:
            body = response.json()
        except ValueError:
            return response.text[:200] or response.reason_phrase
        return _message_from(body)[:500]

    def download_headers(self, url: str, key: str) -> dict[str, str]:
        """Headers for downloading `url`: auth only when the URL is on the API's own origin (never leak the key
        to a CDN)."""
        return self.auth_headers(key) if same_origin(url, self.base_url) else {}

    def check_request(self, request: GenerationRequest) -> str | None:
        """Vendor-specific reason `request` cannot be served (beyond `capabilities().check`), or None.
        Must accept every request `capabilities().fit` returns that carries the inputs its mode needs."""
        return None

    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        return self.capabilities().check(request) or self.check_request(request)

    @abc.abstractmethod
    def model_id(self, request: GenerationRequest | None = None) -> str:
        """The vendor's model id (the price-table key) for `request` (or the configured default)."""

    def resolution_label(self, request: GenerationRequest) -> str:
        """Resolution as price tables name it ('720p', '1080p', '4k')."""
        w, h = request.resolution
        short = min(w, h)
        return "4k" if short >= 2160 else "1080p" if short >= 1080 else "720p" if short >= 720 else f"{short}p"

    def billed_seconds(self, request: GenerationRequest, status: JobStatus | None = None) -> float:
        """Seconds of output the vendor bills: its reported duration if any, else the requested one."""
        if status is not None and status.video_seconds:
            return float(status.video_seconds)
        return float(request.duration_s)

    def billing(self, request: GenerationRequest, seconds: float, cost_usd: float) -> tuple[float, str]:
        """(billed units, unit name) in the vendor's own currency; default: seconds of video."""
        return seconds, "video_seconds"

    # ---- Backend interface --------------------------------------------------------------------------------

    def not_configured_reason(self) -> str | None:
        if not os.environ.get(self.api_key_env):
            return f"{self.api_key_env} is not set (export it to use the '{self.name}' backend)"
        return None

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        """Upper estimate for the budget cap: price of the requested (billed) duration; +inf when unpriced."""
        row, _ = self._price_row(request)
        seconds = self.estimate_seconds(request)
        if self.price_usd_per_second is not None:
            return self.price_usd_per_second * seconds
        return row.cost_usd(seconds) if row is not None else math.inf

    def price_table(self) -> str | None:
        """Name of the price table this backend bills from (e.g. 'runway_2026-04.csv'), for run.json; None if none."""
        if self.price_usd_per_second is not None:
            return "config:price_usd_per_second"
        table = pricing.table_for(self.vendor)
        return table.name if table is not None else None

    def estimate_seconds(self, request: GenerationRequest) -> float:
        """Upper estimate of billed seconds before submitting (talking heads override: script length)."""
        return float(request.duration_s)

    def close(self) -> None:
        self.transport.close()

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        """Submit (or resume), poll, download into `ctx.out_path`. Never raises for generation failures.

        Raises BackendNotConfigured when the API key is missing (before any network call).
        """
        ctx = ctx or self.default_context(request)
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise BackendNotConfigured(self.not_configured_reason() or f"{self.api_key_env} is not set")
        timeline = _Timeline(start=time.monotonic())
        stats = CallStats()
        info: dict[str, Any] = {"simulated": self.simulated, "api_version": self.api_version}
        job: dict[str, Any] | None = None
        status: JobStatus | None = None
        try:
            unsupported = self.unsupported_reason(request)
            if unsupported:
                raise _Outcome("failed", f"unsupported request: {unsupported}", retriable=False,
                               info={"unsupported": True})
            deadline = timeline.start + self.job_deadline_s
            if ctx.recorded_job is not None:
                job = dict(ctx.recorded_job)
                info["resumed"] = True
                if job.get("state") == STATE_FINISHED and (job.get("outcome") == "gone" or job.get("retriable")):
                    # That job ended with a retriable failure: calling again is a deliberate retry (a new job).
                    info["previous_job_id"] = job.get("job_id")
                    job = None
                elif not job.get("job_id"):
                    if job.get("state") == STATE_NOT_CREATED or self.resubmit_unknown_creates:
                        job = None
                    else:
                        raise _Outcome("failed", "an earlier attempt was interrupted while creating the job, so the "
                                       "vendor may have accepted (and billed) it; not resubmitted to avoid paying "
                                       "twice", retriable=True, code="create_outcome_unknown")
            if job is None:
                job = self._submit(request, ctx, key, stats, deadline)
            status = self._poll_until_terminal(job, key, timeline, stats, deadline)
            info.update(self._status_info(status))
            if status.phase != "succeeded":
                ctx.record_job({**job, "state": STATE_FINISHED, "outcome": status.phase,
                                "retriable": status.retriable, "at": _now_iso()})
                raise _Outcome(_non_ok(status.phase), status.reason or status.vendor_status or status.phase,
                               retriable=status.retriable, code=status.code)
            return self._deliver(request, ctx, job, status, key, timeline, stats, deadline, info)
        except _Outcome as outcome:
            if status is not None and status.vendor_cost_usd:
                info["vendor_cost_usd"] = status.vendor_cost_usd  # charged although it failed
            if outcome.job_gone and job is not None and job.get("job_id"):
                ctx.record_job({**job, "state": STATE_FINISHED, "outcome": "gone", "at": _now_iso()})
            info.update(outcome.info)
            if outcome.code:
                info["failure_code"] = outcome.code
            return self._result(request, outcome.phase, timeline, stats, info, job,
                                error=self._scrub(outcome.reason, key), retriable=outcome.retriable)
        except CallError as exc:
            return self._result(request, "failed", timeline, stats, info, job, error=self._scrub(str(exc), key),
                                retriable=exc.retriable)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            # A vendor answer we could not parse: a classified failure, not a crash of the whole run.
            return self._result(request, "failed", timeline, stats, info, job, retriable=True,
                                error=self._scrub(f"unexpected answer from {self.vendor}: "
                                                  f"{type(exc).__name__}: {exc}", key))

    # ---- the template -------------------------------------------------------------------------------------

    def _submit(self, request: GenerationRequest, ctx: GenerationContext, key: str, stats: CallStats,
                deadline: float) -> dict[str, Any]:
        try:
            call = self.build_create(request)
        except (ValueError, OSError) as exc:
            raise _Outcome("failed", f"cannot build the request: {exc}", retriable=False) from None
        base_record = {"backend": self.name, "vendor": self.vendor, "model": self.model_id(request),
                       "simulated": self.simulated}
        ctx.record_job({**base_record, "state": STATE_SUBMITTING, "job_id": None, "at": _now_iso()})
        try:
            response = self.transport.call(call.method, call.path, headers=self.auth_headers(key), json=call.json,
                                           params=call.params, idempotent=False, stats=stats, deadline=deadline)
        except CallError as exc:
            if exc.outcome_unknown:
                raise _Outcome("failed", f"the create request's answer was lost ({exc}); the vendor may have "
                               "accepted (and billed) the job, so it is not resubmitted", retriable=True,
                               code="create_outcome_unknown") from None
            ctx.record_job({**base_record, "state": STATE_NOT_CREATED, "job_id": None, "at": _now_iso()})
            raise
        if response.status_code >= 300:
            verdict = self.classify_http_error(response, during="create")
            ctx.record_job({**base_record, "state": STATE_NOT_CREATED, "job_id": None, "at": _now_iso()})
            raise _Outcome(verdict.phase, verdict.reason, retriable=verdict.retriable, code=verdict.code)
        job = {**base_record, **self.parse_create(response.json()), "state": STATE_SUBMITTED, "at": _now_iso()}
        if not job.get("job_id"):
            raise ValueError("create answer has no job id")
        ctx.record_job(dict(job))
        return job

    def _poll_until_terminal(self, job: Mapping[str, Any], key: str, timeline: _Timeline, stats: CallStats,
                             deadline: float) -> JobStatus:
        while True:
            status = self._poll_once(job, key, stats, deadline)
            now = time.monotonic()
            timeline.polls += 1
            timeline.last_status = status.vendor_status
            if status.phase == "queued":
                timeline.saw_queued = True
                if status.queue_position is not None:
                    timeline.max_queue_position = max(status.queue_position, timeline.max_queue_position or 0)
            elif timeline.first_not_queued is None:
                timeline.first_not_queued = now
            if status.phase in TERMINAL_PHASES:
                timeline.terminal = now
                if status.phase == "succeeded" and status.needs_result:
                    status = self._fetch_result(job, key, stats, deadline)
                return status
            if now >= deadline:
                raise _Outcome("failed", f"job {job['job_id']} did not finish within {self.job_deadline_s:g} s "
                               f"(last status {status.vendor_status}); its id is recorded, a resumed run polls it "
                               "again", retriable=True, code="deadline")
            jitter = 1.0 + POLL_JITTER_FRACTION * (2 * self._rng.random() - 1)
            time.sleep(max(0.0, min(self.poll_interval_s * jitter, deadline - now)))

    def _poll_once(self, job: Mapping[str, Any], key: str, stats: CallStats, deadline: float) -> JobStatus:
        call = self.build_poll(job)
        response = self.transport.call(call.method, call.path, headers=self.auth_headers(key), json=call.json,
                                       params=call.params, idempotent=True, stats=stats, deadline=deadline)
        if response.status_code >= 300:
            verdict = self.classify_http_error(response, during="poll")
            outcome = _Outcome(verdict.phase, verdict.reason, retriable=verdict.retriable, code=verdict.code)
            outcome.job_gone = response.status_code in JOB_GONE_STATUSES
            raise outcome
        return self.parse_poll(response.json())

    def _fetch_result(self, job: Mapping[str, Any], key: str, stats: CallStats, deadline: float) -> JobStatus:
        call = self.build_result(job)
        response = self.transport.call(call.method, call.path, headers=self.auth_headers(key), json=call.json,
                                       params=call.params, idempotent=True, stats=stats, deadline=deadline)
        return self.parse_result(response)

    def _deliver(self, request: GenerationRequest, ctx: GenerationContext, job: Mapping[str, Any],
                 status: JobStatus, key: str, timeline: _Timeline, stats: CallStats, deadline: float,
                 info: dict[str, Any]) -> GenerationResult:
        timeline.download_start = time.monotonic()
        final, got, refreshes = self._download_output(ctx, job, status, key, stats, deadline)
        timeline.end = time.monotonic()
        info.update({"container": got.container, "bytes": got.size, "url_refreshes": refreshes})
        seconds = self.billed_seconds(request, status)
        return self._result(request, "ok", timeline, stats, info, job, video_path=str(final),
                            video_sha256=got.sha256, video_seconds=seconds, vendor_cost_usd=status.vendor_cost_usd)

    def _download_output(self, ctx: GenerationContext, job: Mapping[str, Any], status: JobStatus, key: str,
                         stats: CallStats, deadline: float) -> tuple[Path, Downloaded, int]:
        """Download a succeeded job's output into `ctx.out_path` (refreshing an expired link from the job).
        Returns (final path, the transport's download, link refreshes)."""
        ctx.out_path.parent.mkdir(parents=True, exist_ok=True)
        refreshes = 0
        while True:
            if not status.output_url:
                raise _Outcome("failed", f"job {job['job_id']} succeeded but names no output file", retriable=True)
            try:
                got = self.transport.download(status.output_url, headers=self.download_headers(status.output_url, key),
                                              dest_dir=ctx.out_path.parent, max_bytes=self.max_download_bytes,
                                              stats=stats, deadline=deadline + self.job_deadline_s)
                break
            except ExpiredURLError:
                if refreshes >= MAX_URL_REFRESHES:
                    raise
                refreshes += 1
                status = self._poll_once(job, key, stats, deadline + self.job_deadline_s)
                if status.phase == "succeeded" and status.needs_result:
                    status = self._fetch_result(job, key, stats, deadline + self.job_deadline_s)
                if status.phase != "succeeded":
                    raise _Outcome(_non_ok(status.phase),
                                   f"output link expired and the job is now {status.vendor_status}",
                                   retriable=True) from None
        final = ctx.out_path if got.container == "mp4" else ctx.out_path.with_suffix(f".{got.container}")
        os.replace(got.tmp_path, final)
        return final, got, refreshes

    def redownload(self, job: dict[str, Any], ctx: GenerationContext) -> GenerationResult:
        """Download the output of `job` (a succeeded job as recorded in jobs.jsonl) again into `ctx.out_path`:
        one poll for a fresh output link, then the usual download. Creates nothing, so bills nothing.

        Returns an ok result (video path and sha256; cost 0) or a failed one, not retriable, saying why (the vendor
        no longer serves the job, its key is missing, ...). Never raises for vendor answers.
        """
        key = os.environ.get(self.api_key_env, "")

        def fail(why: str) -> GenerationResult:
            return GenerationResult(status="failed", fingerprint=self.fingerprint(), error=self._scrub(why, key),
                                    job_id=job.get("job_id"))

        if not key:
            return fail(f"{self.api_key_env} is not set")
        stats = CallStats()
        deadline = time.monotonic() + self.job_deadline_s
        try:
            status = self._poll_once(job, key, stats, deadline)
            if status.phase == "succeeded" and status.needs_result:
                status = self._fetch_result(job, key, stats, deadline)
            if status.phase != "succeeded":
                return fail(f"job {job.get('job_id')} is now {status.vendor_status or status.phase}")
            final, got, _ = self._download_output(ctx, job, status, key, stats, deadline)
        except _Outcome as outcome:
            return fail(f"job {job.get('job_id')}: {outcome.reason}")
        except (CallError, KeyError, ValueError, TypeError, IndexError) as exc:
            return fail(f"job {job.get('job_id')}: {type(exc).__name__}: {exc}")
        return GenerationResult(status="ok", fingerprint=self.fingerprint(), video_path=str(final),
                                video_sha256=got.sha256, job_id=job.get("job_id"),
                                info=make_extra({"simulated": self.simulated, "redownloaded": True}))

    # ---- results ------------------------------------------------------------------------------------------

    def _result(self, request: GenerationRequest, phase: Literal["ok", "failed", "refused"], timeline: _Timeline, stats: CallStats,
                info: dict[str, Any], job: Mapping[str, Any] | None, *, error: str | None = None,
                retriable: bool = False, video_path: str | None = None, video_sha256: str | None = None,
                video_seconds: float = 0.0, vendor_cost_usd: float | None = None) -> GenerationResult:
        end = timeline.end or time.monotonic()
        terminal = timeline.terminal or timeline.download_start or end
        if timeline.saw_queued:
            queued = (timeline.first_not_queued or terminal) - timeline.start
        else:
            queued = 0.0
        generating = max(0.0, terminal - timeline.start - queued)
        downloading = end - timeline.download_start if timeline.download_start is not None else 0.0
        latency = Latency(queued_s=queued, generating_s=generating, downloading_s=downloading,
                          total_s=end - timeline.start)
        info = {**info, "http_requests": stats.requests, "http_retries": stats.retries, "polls": timeline.polls,
                "max_queue_position": timeline.max_queue_position}
        cost = 0.0
        billed_units, billing_unit = 0.0, ""
        if phase != "ok" and info.get("vendor_cost_usd"):
            cost = float(info["vendor_cost_usd"])
        if phase == "ok":
            row, table = self._price_row(request)
            if self.price_usd_per_second is not None:
                cost = self.price_usd_per_second * video_seconds
                info["price_table"] = "config:price_usd_per_second"
            elif row is not None and table is not None:
                cost = row.cost_usd(video_seconds)
                info.update({"price_table": table.name, "price_date": row.date, "price_source": row.source})
            else:
                info["price_table"] = "none (model not priced)"
            if vendor_cost_usd is not None:
                # The vendor's own figure wins; the table's estimate stays in info as a cross-check.
                info["table_cost_usd"] = round(cost, 6)
                cost = vendor_cost_usd
                info["cost_source"] = "vendor"
            billed_units, billing_unit = self.billing(request, video_seconds, cost)
            per_10s = pricing.per_10s(cost, video_seconds)
            if per_10s is not None:
                info["cost_per_10s_usd"] = round(per_10s, 6)
        return GenerationResult(
            status=phase,
            fingerprint=self.fingerprint(), video_path=video_path, error=error, retriable=retriable,
            latency=latency, billed_units=billed_units, billing_unit=billing_unit, cost_usd=cost,
            video_seconds=video_seconds if phase == "ok" else 0.0, video_sha256=video_sha256,
            job_id=(job or {}).get("job_id"), info=make_extra({k: v for k, v in info.items() if v is not None}))

    def _status_info(self, status: JobStatus) -> dict[str, Any]:
        out: dict[str, Any] = {"vendor_status": status.vendor_status}
        for name, value in status.vendor_times:
            out[f"vendor_{name}"] = value
        return out

    def _price_row(self, request: GenerationRequest) -> tuple[pricing.PriceRow | None, pricing.PriceTable | None]:
        table = pricing.table_for(self.vendor)
        if table is None:
            return None, None
        return table.lookup(self.model_id(request), self.resolution_label(request)), table

    def _fingerprint(self, model: str, **settings: Any) -> Fingerprint:
        """Helper for subclasses: the standard fingerprint (never contains keys or the base URL)."""
        return Fingerprint(backend=self.name, model=model, version=self.api_version,
                           settings=make_extra({k: v for k, v in settings.items() if v is not None}),
                           simulated=self.simulated)

    @staticmethod
    def _scrub(text: str, key: str) -> str:
        """Belt and braces: no message leaves with the key in it."""
        return text.replace(key, "***") if key else text


def _non_ok(phase: str) -> Literal["failed", "refused"]:
    return "refused" if phase == "refused" else "failed"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _message_from(body: Any) -> str:
    """Human message from the error shapes vendors use: {'error': str | {'message'}}, {'detail': str | [..]},
    {'message': str}."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, str):
            return err
        if isinstance(err, Mapping):
            return str(err.get("message") or err.get("code") or err)
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], Mapping):
            return "; ".join(str(d.get("msg") or d.get("type")) for d in detail)
        if "message" in body:
            return str(body["message"])
    return str(body)[:200]


def image_data_uri(path: str) -> str:
    """A local image as a data URI (vendors accept these inline); ValueError if larger than the inline cap."""
    data = Path(path).read_bytes()
    if len(data) > MAX_INLINE_IMAGE_BYTES:
        raise ValueError(f"image {Path(path).name} is {len(data)} bytes; inline images are capped at "
                         f"{MAX_INLINE_IMAGE_BYTES} bytes")
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def single_image(request: GenerationRequest) -> str:
    """The one conditioning image of an i2v / hybrid request; ValueError unless there is exactly one (adapters
    send one image: capabilities declare `min_images = max_images = 1` so no image is silently dropped)."""
    if len(request.images) != 1:
        raise ValueError(f"mode '{request.mode}' sends exactly one conditioning image; the request has "
                         f"{len(request.images)}")
    return request.images[0]


def aspect_ratio(width: int, height: int) -> str:
    """'16:9'-style ratio of a resolution (reduced by the gcd)."""
    g = math.gcd(width, height) or 1
    return f"{width // g}:{height // g}"


def ratio_resolutions(ratios: tuple[str, ...], short_sides: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Every (width, height) with one of `ratios` ('W:H') and one of `short_sides` as its shorter side."""
    out = []
    for side in short_sides:
        for ratio in ratios:
            a, b = (int(x) for x in ratio.split(":"))
            out.append((side * a // b, side) if a >= b else (side, side * b // a))
    return tuple(out)
