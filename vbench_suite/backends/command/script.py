"""`ScriptBackend`: the part every backend shares that makes each video by running a command on this machine.

Per request: an empty temporary folder is made beside the final video (inside the run folder, named with the
harness's temporary prefix, so a resumed run removes what a killed one left); the subclass builds the argv list,
working folder and where the video will appear; the command runs (`process.run_process`: no shell, own process
group, deadline, no credentials); the video it wrote is checked by decoding it (`video.read.open_video`) and renamed
atomically onto the final path; the folder is removed. Every failure is a result, never an exception: the command
cannot start, exits non-zero (with the end of its stderr, redacted), hangs (killed at `timeout_s` with its whole
process group; retriable), writes nothing, or writes something that is not a video. A failure after the command ran
is charged for the hardware it held, like a success.

Accounting (`vbench_suite.backends.hardware`): on a GPU, `hardware_s` = wall time x `gpus` (GPU-seconds: the GPUs
are held for the whole command, model loading included); on a CPU, the CPU seconds of the command and its
descendants. `cost_usd` = `hardware_s` at `usd_per_gpu_hour` / `usd_per_cpu_hour` (stated defaults when unset).
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.backends.command.process import ProcessOutcome, child_env, run_process, secrets_in
from vbench_suite.backends.command.template import TemplateValueError
from vbench_suite.backends.hardware import DEVICE_CHOICES, Device, HourlyRate, hourly_rate, resolve_device
from vbench_suite.errors import ConfigError, VideoError, shown
from vbench_suite.keys import file_sha256
from vbench_suite.tempfiles import make_temp_dir
from vbench_suite.types import Fingerprint, GenerationRequest, GenerationResult, Latency, make_extra

DEFAULT_TIMEOUT_S = 3600.0
"""Longest a command may run for one video before it is killed (a 768px Open-Sora video on one GPU: ~28 min)."""
HASH_LIMIT_BYTES = 256 * 2**20
"""Files up to this size are identified by content (sha256) in a fingerprint; larger ones by name and size."""
MAX_LISTED_FILES = 10
"""At most this many file names are listed when a command wrote something other than the expected video."""


class RequestError(ValueError):
    """A request this backend cannot turn into a command; becomes a 'failed' result (not retriable)."""


@dataclass(frozen=True)
class Invocation:
    """One command to run for one request."""

    argv: list[str]
    cwd: Path
    output: Path | None = None
    """The file the command is told to write; None when it chooses its own name (`glob`)."""
    glob: str | None = None
    """Pattern, relative to the temporary folder, matching the one video the command writes (when `output` is
    None, or as a fallback when it is missing)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Facts worth recording with the result (never a secret)."""


def file_identity(path: Path) -> str:
    """'sha256:<hex>' of a file up to `HASH_LIMIT_BYTES`, else 'size:<bytes>' (hashing model weights of tens of
    gigabytes on every run would take minutes)."""
    size = path.stat().st_size
    if size > HASH_LIMIT_BYTES:
        return f"size:{size}"
    return f"sha256:{file_sha256(path)}"


def combined_identity(parts: dict[str, str]) -> str:
    """A short stable version string from {name: identity} pairs (sorted)."""
    digest = hashlib.sha256("\n".join(f"{k}={v}" for k, v in sorted(parts.items())).encode()).hexdigest()
    return digest[:16]


def check_positive(name: str, value: Any, backend: str, kind: type = float) -> Any:
    """`value` converted to `kind` if it is > 0, else `ConfigError` naming the option."""
    try:
        converted = kind(value)
    except (TypeError, ValueError):
        converted = None
    if converted is None or not converted > 0 or converted == float("inf"):
        raise ConfigError(f"backend '{backend}': {name} must be a positive {'integer' if kind is int else 'number'}, "
                          f"got {shown(value)}")
    return converted


def check_price(name: str, value: Any, backend: str) -> float | None:
    """None, or `value` as a finite non-negative number of US dollars (`ConfigError` naming the option)."""
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = -1.0
    if not 0 <= price < float("inf"):
        raise ConfigError(f"backend '{backend}': {name} must be a non-negative number of US dollars, "
                          f"got {shown(value)}")
    return price


def refuse_secrets(option: str, text: str, backend: str) -> None:
    """`ConfigError` when `text` (an option that ends up on a command line and in run.json) holds the value of a
    credential-like environment variable; the message names the variable, never the value."""
    found = secrets_in(text)
    if found:
        raise ConfigError(f"backend '{backend}': {option} contains the value of {', '.join(found)}; a secret must "
                          f"never be on a command line: let the script read it from the environment (pass_env="
                          f"{','.join(found)})")


def names_option(value: Any) -> tuple[str, ...]:
    """A list option given as 'a,b' or as a JSON list."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


class ScriptBackend(Backend):
    """Base of backends that run a command per video. Subclasses implement `invocation`, `identity` (what goes
    into the fingerprint), `capabilities` and `not_configured_reason`."""

    max_concurrency = 1
    """One command at a time: each is expected to use the whole GPU (or all GPUs it is given)."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, device: str = "auto", gpus: int = 1,
                 usd_per_gpu_hour: float | None = None, usd_per_cpu_hour: float | None = None,
                 pass_env: str | Sequence[str] = "") -> None:
        self.timeout_s = check_positive("timeout_s", timeout_s, self.name)
        self.gpus = check_positive("gpus", gpus, self.name, int)
        if str(device) not in DEVICE_CHOICES:
            raise ConfigError(f"backend '{self.name}': device must be one of {', '.join(DEVICE_CHOICES)}, "
                              f"got {shown(device)}")
        self.device_option = str(device)
        self.usd_per_gpu_hour = check_price("usd_per_gpu_hour", usd_per_gpu_hour, self.name)
        self.usd_per_cpu_hour = check_price("usd_per_cpu_hour", usd_per_cpu_hour, self.name)
        self.pass_env = names_option(pass_env)
        self._device: Device | None = None
        self._fingerprint: Fingerprint | None = None

    # -- subclass hooks -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def invocation(self, request: GenerationRequest, tmpdir: Path) -> Invocation:
        """The command for `request`, writing into `tmpdir`; raises `RequestError` / `TemplateValueError`."""

    @abc.abstractmethod
    def identity(self) -> tuple[str, str, dict[str, Any]]:
        """(model, version, output-changing settings) for the fingerprint."""

    # -- accounting ----------------------------------------------------------------------------------------------
    @property
    def device(self) -> Device:
        """The device generations are charged for, resolved once (`hardware.resolve_device`)."""
        if self._device is None:
            self._device = resolve_device(self.device_option)
        return self._device

    @property
    def rate(self) -> HourlyRate:
        return hourly_rate(self.device, self.usd_per_gpu_hour, self.usd_per_cpu_hour)

    def fingerprint(self) -> Fingerprint:
        """Computed once per instance (it hashes the script files)."""
        if self._fingerprint is None:
            model, version, settings = self.identity()
            self._fingerprint = Fingerprint(backend=self.name, model=model, version=version,
                                            settings=make_extra({**settings, "device": self.device.kind}))
        return self._fingerprint

    # -- generation ----------------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        ctx = ctx or self.default_context(request)
        reason = self.not_configured_reason()
        if reason is not None:
            return GenerationResult(status="failed", fingerprint=self._fingerprint_or_name(), error=reason)
        fingerprint = self.fingerprint()
        ctx.out_path.parent.mkdir(parents=True, exist_ok=True)
        # Absolute: the command runs in another folder, where a relative run-folder path would point elsewhere.
        tmpdir = make_temp_dir(ctx.out_path.parent.resolve(), ctx.out_path.stem)
        try:
            return self._generate_in(request, ctx, tmpdir, fingerprint)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _fingerprint_or_name(self) -> Fingerprint:
        try:
            return self.fingerprint()
        except (OSError, ValueError):
            return Fingerprint(backend=self.name, model="unconfigured", version="")

    def _generate_in(self, request: GenerationRequest, ctx: GenerationContext, tmpdir: Path,
                     fingerprint: Fingerprint) -> GenerationResult:
        def failed(error: str, retriable: bool = False, **facts: Any) -> GenerationResult:
            return GenerationResult(status="failed", fingerprint=fingerprint, error=error, retriable=retriable,
                                    info=make_extra(facts))

        try:
            inv = self.invocation(request, tmpdir)
        except (RequestError, TemplateValueError, OSError) as exc:
            return failed(f"cannot build the command for this request: {exc}")
        try:
            outcome = run_process(inv.argv, inv.cwd, child_env(self.pass_env), self.timeout_s, tmpdir)
        except OSError as exc:
            return failed(f"cannot start {shown(inv.argv[0])} in {inv.cwd}: {exc.strerror or exc}")
        facts = {"exit_code": outcome.returncode, "wall_s": round(outcome.wall_s, 3)}
        said = f"; its last output: {outcome.stderr_tail}" if outcome.stderr_tail else "; it printed nothing"

        def spent(error: str, retriable: bool = False) -> GenerationResult:
            # The hardware was held for a failed attempt too: it is charged like a successful one.
            hardware_s = self._hardware_s(outcome)
            return dataclasses.replace(failed(error, retriable, **facts, **self._accounting_info(outcome)),
                                       hardware_s=hardware_s, cost_usd=self.rate.cost_usd(hardware_s),
                                       latency=Latency(generating_s=outcome.wall_s, total_s=outcome.wall_s))

        if outcome.timed_out:
            return spent(f"the command did not finish within timeout_s={self.timeout_s:g} s; it was stopped with "
                         f"everything it started (its process group){said}", retriable=True)
        if outcome.returncode != 0:
            return spent(f"the command exited with status {outcome.returncode}{said}")
        found = self._find_output(inv, tmpdir)
        if isinstance(found, str):
            return spent(found + said)
        t0 = time.perf_counter()
        try:
            frames, fps, width, height = _check_video(found)
        except VideoError as exc:
            return spent(f"the command's output is not a usable video: {exc}")
        final = ctx.out_path.with_suffix(found.suffix.lower())
        os.replace(found, final)
        sha = file_sha256(final)
        check_s = time.perf_counter() - t0
        return self._ok(request, final, sha, outcome, check_s, inv,
                        {**facts, "frames": frames, "fps": round(fps, 6), "width": width, "height": height},
                        fingerprint)

    def _find_output(self, inv: Invocation, tmpdir: Path) -> Path | str:
        """The video the command wrote, or why none was found (with what it did write)."""
        if inv.output is not None and inv.output.is_file():
            return inv.output
        if inv.glob is not None:
            matches = sorted(p for p in tmpdir.glob(inv.glob) if p.is_file() and not p.name.startswith(".vbench-"))
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                return (f"{len(matches)} files match output_glob {inv.glob!r} ("
                        f"{', '.join(str(p.relative_to(tmpdir)) for p in matches[:MAX_LISTED_FILES])}); make it "
                        "match the one video")
        wrote = sorted(str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*")
                       if p.is_file() and not p.name.startswith(".vbench-"))
        expected = f"the file {{output}}" if inv.output is not None else f"a file matching {inv.glob!r}"
        listing = (f"its folder holds only {', '.join(wrote[:MAX_LISTED_FILES])}"
                   f"{' …' if len(wrote) > MAX_LISTED_FILES else ''}" if wrote else "it wrote no file at all")
        return f"the command exited with status 0 but wrote no video (expected {expected}); {listing}"

    def _hardware_s(self, outcome: ProcessOutcome) -> float:
        """GPU-seconds (wall x GPUs) on a GPU, CPU-seconds of the command's process tree on a CPU."""
        return outcome.wall_s * self.gpus if self.device.kind == "cuda" else outcome.cpu_s

    def _accounting_info(self, outcome: ProcessOutcome) -> dict[str, Any]:
        """The record fields of `vbench_suite.backends.hardware`'s convention, plus how hardware_s was measured."""
        device = self.device
        gpu = device.kind == "cuda"
        return {**self.rate.info(), "device": device.kind, "device_name": device.name,
                "device_count": self.gpus if gpu else 1, "cpu_s": round(outcome.cpu_s, 3),
                "hardware_measure": "gpu_wall_x_count" if gpu else "process_tree_cpu",
                "process_peak_rss_mb": round(outcome.peak_rss_mb, 1)}

    def _ok(self, request: GenerationRequest, path: Path, sha: str, outcome: ProcessOutcome, check_s: float,
            inv: Invocation, facts: dict[str, Any], fingerprint: Fingerprint) -> GenerationResult:
        rate, gpu = self.rate, self.device.kind == "cuda"
        hardware_s = self._hardware_s(outcome)
        seconds = facts["frames"] / facts["fps"] if facts["fps"] > 0 else request.duration_s
        info = {**inv.info, **facts, **self._accounting_info(outcome)}
        total = outcome.wall_s + check_s
        return GenerationResult(
            status="ok", fingerprint=fingerprint, video_path=str(path),
            latency=Latency(generating_s=outcome.wall_s, total_s=total,
                            stages=(("command", outcome.wall_s), ("checking", check_s))),
            cost_usd=rate.cost_usd(hardware_s), hardware_s=hardware_s,
            peak_memory_mb=0.0 if gpu else outcome.peak_rss_mb, video_seconds=seconds, video_sha256=sha,
            info=make_extra(info))


def _check_video(path: Path) -> tuple[int, float, int, int]:
    """(frames, fps, width, height) of a video that decodes to the end; `VideoError` otherwise."""
    from vbench_suite.video.read import VIDEO_SUFFIXES, open_video

    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoError(f"{path.name}: not a video file type (expected one of {', '.join(VIDEO_SUFFIXES)})")
    with open_video(path) as stream:
        frames = stream.count_remaining()
        fps, width, height = stream.fps, stream.width, stream.height
    if frames < 1:
        raise VideoError(f"{path.name}: no frames")
    return frames, float(fps), int(width), int(height)
