"""Core value types shared by backends, the runner, metrics, the store and reports.

Everything here is a frozen dataclass of plain values, so it can be hashed into cache keys and written as JSON.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

Mode = Literal["t2v", "i2v", "hybrid", "keyframes"]
MODES: tuple[str, ...] = ("t2v", "i2v", "hybrid", "keyframes")
KeyframeRule = Literal["first_and_last", "first", "first_or_last"]
KEYFRAME_RULES: dict[str, tuple[frozenset[str], ...]] = {
    "first_and_last": (frozenset({"first", "last"}),),
    "first": (frozenset({"first"}), frozenset({"first", "last"})),
    "first_or_last": (frozenset({"first"}), frozenset({"last"}), frozenset({"first", "last"})),
}
"""Keyframe rule -> the sets of keyframes (first / last) a request may carry under it. 'first_and_last': both
are required (e.g. Pika's pikaframes); 'first': the first is required, the last optional (Veo's `image` +
optional `lastFrame`); 'first_or_last': either or both (the local DiT holds whichever it is given)."""
KEYFRAME_RULE_TEXT: dict[str, str] = {"first_and_last": "both a first_frame and a last_frame",
                                      "first": "a first_frame (a last_frame is optional)",
                                      "first_or_last": "a first_frame, a last_frame or both"}
"""How an unsupported-request reason names what each rule needs."""
Status = Literal["ok", "refused", "failed"]
STATUSES: tuple[str, ...] = ("ok", "refused", "failed")


@dataclass(frozen=True)
class GenerationRequest:
    """One video to generate. Everything that can change the output is in here (plus the backend's fingerprint)."""

    prompt_id: str
    """Stable id of the prompt within its suite (e.g. 'motion-012')."""
    prompt: str
    """The text prompt (for talking heads: the script)."""
    mode: Mode = "t2v"
    """Conditioning mode: text-to-video, image-to-video, text+image ('hybrid') or first/last keyframes."""
    images: tuple[str, ...] = ()
    """Paths of conditioning images (i2v / hybrid). Cache keys hash their contents, not their paths."""
    first_frame: str | None = None
    """Path of the required first frame (keyframes mode)."""
    last_frame: str | None = None
    """Path of the required last frame (keyframes mode)."""
    duration_s: float = 2.0
    """Requested duration in seconds."""
    fps: int = 8
    """Requested frames per second."""
    resolution: tuple[int, int] = (64, 64)
    """Requested (width, height) in pixels."""
    seed: int = 0
    """Sampling seed; the runner derives it from (run seed, prompt id, sample index)."""
    extra: tuple[tuple[str, Any], ...] = ()
    """Backend-specific options as sorted (key, value) pairs (hashable); read with `extra_dict()`."""

    def extra_dict(self) -> dict[str, Any]:
        return dict(self.extra)

    @property
    def num_frames(self) -> int:
        """Frames implied by duration and fps (at least 1)."""
        return max(1, round(self.duration_s * self.fps))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["images"] = list(self.images)
        d["resolution"] = list(self.resolution)
        d["extra"] = thaw(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GenerationRequest":
        d = dict(d)
        d["images"] = tuple(d.get("images", ()))
        d["resolution"] = tuple(d.get("resolution", (64, 64)))
        d["extra"] = make_extra(d.get("extra") or {})
        return cls(**d)


def make_extra(options: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Turn a mapping of backend options into the hashable, order-independent form used by `GenerationRequest.extra`."""
    return tuple(sorted((str(k), _freeze(v)) for k, v in options.items()))


def thaw(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """Inverse of `make_extra`: sorted pairs (nested too) back to plain dicts and lists for JSON."""
    return {k: _thaw(v) for k, v in pairs}


def _thaw(v: Any) -> Any:
    if isinstance(v, tuple):
        if v and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v):
            return thaw(v)
        return [_thaw(x) for x in v]
    return v


def _freeze(v: Any) -> Any:
    if isinstance(v, Mapping):
        return make_extra(v)
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a backend's output distribution: if any of this changes, cached generations are not reused."""

    backend: str
    """Registered backend name (e.g. 'dit-local', 'runway')."""
    model: str
    """Model id as the vendor or checkpoint names it (e.g. 'gen4_turbo')."""
    version: str
    """Model version / checkpoint hash / API version."""
    settings: tuple[tuple[str, Any], ...] = ()
    """Other output-changing settings (sorted pairs), e.g. sampler steps or the vendor's base URL kind."""
    simulated: bool = False
    """True when the backend talks to a fake vendor server: every record and report marks such results."""

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model, "version": self.version,
                "settings": thaw(self.settings), "simulated": self.simulated}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Fingerprint":
        return cls(backend=d["backend"], model=d["model"], version=d["version"],
                   settings=make_extra(d.get("settings") or {}), simulated=bool(d.get("simulated", False)))


@dataclass(frozen=True)
class Latency:
    """Wall-clock seconds as the harness saw them. Remote backends fill queued/generating/downloading;
    local backends fill `stages` (e.g. text_encoding, denoising, decoding)."""

    queued_s: float = 0.0
    """Time between submission and the job starting (includes over-concurrency throttling)."""
    generating_s: float = 0.0
    """Time the job spent generating (local: the whole generation)."""
    downloading_s: float = 0.0
    """Time spent fetching the output file."""
    total_s: float = 0.0
    """End-to-end time for this request."""
    stages: tuple[tuple[str, float], ...] = ()
    """Finer breakdown (name, seconds), e.g. (('text_encoding', 0.01), ('denoising', 2.3), ('decoding', 0.1))."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = {k: v for k, v in self.stages}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Latency":
        d = dict(d)
        d["stages"] = tuple((str(k), float(v)) for k, v in (d.get("stages") or {}).items())
        return cls(**d)


@dataclass(frozen=True)
class GenerationResult:
    """Outcome of one request. Failure is a value, not an exception."""

    status: Status
    """'ok' (video written), 'refused' (content moderation) or 'failed'."""
    fingerprint: Fingerprint
    """The backend identity that produced (or tried to produce) this result."""
    video_path: str | None = None
    """Path of the written video file (status 'ok' only)."""
    error: str | None = None
    """Human-readable reason for 'refused'/'failed' (never contains secrets)."""
    retriable: bool = False
    """True if trying again later may succeed (timeouts, 5xx, throttling)."""
    latency: Latency = field(default_factory=Latency)
    """Latency breakdown in seconds."""
    billed_units: float = 0.0
    """What the vendor bills in its own unit (credits, seconds of video, ...); 0 for local backends."""
    billing_unit: str = ""
    """Name of the billed unit (e.g. 'credits', 'video_seconds')."""
    cost_usd: float = 0.0
    """Cost in US dollars: price table × billed units, or hardware price × hardware seconds for local backends."""
    hardware_s: float = 0.0
    """Compute a local backend's generation used (0 for remote): CPU seconds of the generating thread and its native
    worker threads, or GPU seconds on a GPU; never wall time on a loaded machine (that is in `latency`)."""
    peak_memory_mb: float = 0.0
    """Peak memory of a local backend during this request, in MiB (0 if unknown)."""
    video_seconds: float = 0.0
    """Duration of the delivered video in seconds (for cost per 10 s)."""
    video_sha256: str | None = None
    """sha256 of the video file."""
    job_id: str | None = None
    """Vendor job/task id for remote backends."""
    info: tuple[tuple[str, Any], ...] = ()
    """Other backend facts worth keeping (sorted pairs), e.g. the vendor's own timestamps or moderation reason code."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "fingerprint": self.fingerprint.to_dict(), "video_path": self.video_path,
            "error": self.error, "retriable": self.retriable, "latency": self.latency.to_dict(),
            "billed_units": self.billed_units, "billing_unit": self.billing_unit, "cost_usd": self.cost_usd,
            "hardware_s": self.hardware_s, "peak_memory_mb": self.peak_memory_mb,
            "video_seconds": self.video_seconds, "video_sha256": self.video_sha256, "job_id": self.job_id,
            "info": thaw(self.info),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GenerationResult":
        d = dict(d)
        d["fingerprint"] = Fingerprint.from_dict(d["fingerprint"])
        d["latency"] = Latency.from_dict(d.get("latency") or {})
        d["info"] = make_extra(d.get("info") or {})
        return cls(**d)


@dataclass(frozen=True)
class ModeCapabilities:
    """What a backend accepts in one request mode (one model's limits; see `Capabilities`).

    Empty tuples mean "any". `default_*` are the backend's own choices for this mode, used when a user leaves a
    setting out (`vbench-suite generate`); None means the backend has no preference (the request's default is fitted).
    Model-shaped rules (frame counts of the form 4k+1, sizes in multiples of 16) are `frame_multiple`/
    `frame_remainder` and `size_multiple`; further rules belong here as new fields whose defaults change nothing,
    applied in `fit` and `check`.
    """

    durations_s: tuple[float, ...] = ()
    """Allowed durations in seconds; empty means any duration up to `max_duration_s`."""
    max_duration_s: float = 60.0
    """Longest duration accepted."""
    resolutions: tuple[tuple[int, int], ...] = ()
    """Allowed (width, height); empty means any."""
    fps: tuple[int, ...] = ()
    """Allowed frame rates; empty means any (remote APIs take no frame rate: the value is not sent)."""
    durations_by_resolution: tuple[tuple[tuple[int, int], tuple[float, ...]], ...] = ()
    """Resolutions that accept only some durations, as ((width, height), durations) pairs (e.g. Veo: 1080p needs 8 s)."""
    size_multiple: int = 1
    """Width and height must be multiples of this (used when `resolutions` is empty; e.g. 16 for a VAE + patches)."""
    frame_multiple: int = 1
    """Frame counts (duration x fps) must be `frame_multiple * k + frame_remainder` (e.g. 4 and 1 for 4k+1).
    Fitting changes the duration to the nearest such count; use with `durations_s` empty."""
    frame_remainder: int = 0
    """See `frame_multiple`."""
    default_duration_s: float | None = None
    """The backend's own duration for this mode when the user gives none."""
    default_resolution: tuple[int, int] | None = None
    """The backend's own (width, height) for this mode when the user gives none."""
    default_fps: int | None = None
    """The backend's own frame rate for this mode when the user gives none."""
    keyframes: KeyframeRule = "first_or_last"
    """Which keyframes a 'keyframes' request must carry (see `KEYFRAME_RULES`); checked in that mode only."""
    min_images: int = 0
    """Fewest conditioning images (`request.images`) a request in this mode must carry (1 for i2v / hybrid)."""
    max_images: int | None = None
    """Most conditioning images the backend uses in this mode; None means any. Checked so that no image a
    request carries is silently dropped."""

    def __post_init__(self) -> None:
        if self.size_multiple < 1 or self.frame_multiple < 1:
            raise ValueError("size_multiple and frame_multiple must be >= 1")
        if self.keyframes not in KEYFRAME_RULES:
            raise ValueError(f"keyframes must be one of {', '.join(KEYFRAME_RULES)}, got {self.keyframes!r}")
        if self.min_images < 0 or (self.max_images is not None and self.max_images < self.min_images):
            raise ValueError("need 0 <= min_images <= max_images")
        if self.frame_multiple > 1 and self.durations_s:
            raise ValueError("a frame-count rule and a list of durations cannot both decide the duration")

    def frames_ok(self, num_frames: int) -> bool:
        """Whether `num_frames` follows the frame-count rule."""
        return (num_frames - self.frame_remainder) % self.frame_multiple == 0

    def _fit_frames(self, duration_s: float, fps: int) -> float:
        """The duration whose frame count at `fps` is the allowed count nearest the requested one (ties: longer),
        staying within `max_duration_s` when any allowed count does."""
        m = self.frame_multiple
        n = max(1, round(duration_s * fps))
        lower = n - ((n - self.frame_remainder) % m)
        if lower < 1:
            lower += m
        candidates = [c for c in (lower, lower + m) if c / fps <= self.max_duration_s + 1e-9] or [lower]
        best = min(candidates, key=lambda c: (abs(c - n), -c))
        return duration_s if best == n else best / fps

    def _fit_size(self, size: tuple[int, int]) -> tuple[int, int]:
        m = self.size_multiple
        return (max(m, round(size[0] / m) * m), max(m, round(size[1] / m) * m))

    def resolutions_for(self, duration_s: float) -> tuple[tuple[int, int], ...]:
        """Allowed resolutions at `duration_s` (all of `resolutions` minus those restricted to other durations)."""
        restricted = dict(self.durations_by_resolution)
        return tuple(r for r in self.resolutions if r not in restricted or duration_s in restricted[r])

    def fit(self, request: GenerationRequest) -> tuple[GenerationRequest, tuple[str, ...]]:
        """The closest request this mode accepts, and a note per change (empty when nothing changed).

        Durations snap to the nearest allowed one (ties: the longer) within `max_duration_s`; then resolutions to
        the one allowed at that duration with the closest aspect ratio and then area; fps to the nearest allowed.
        """
        changes: dict[str, Any] = {}
        notes: list[str] = []
        duration = min(request.duration_s, self.max_duration_s)
        if self.durations_s:
            allowed = [d for d in self.durations_s if d <= self.max_duration_s] or list(self.durations_s)
            duration = min(allowed, key=lambda d: (abs(d - request.duration_s), -d))
        if duration != request.duration_s:
            changes["duration_s"] = float(duration)
            notes.append(f"duration {request.duration_s:g}s -> {duration:g}s")
        resolutions = self.resolutions_for(duration)
        if resolutions and tuple(request.resolution) not in resolutions:
            w, h = request.resolution
            best = min(resolutions, key=lambda r: (abs(math.log((r[0] / r[1]) / (w / h))),
                                                   abs(math.log((r[0] * r[1]) / (w * h)))))
            changes["resolution"] = tuple(best)
            notes.append(f"resolution {w}x{h} -> {best[0]}x{best[1]}")
        elif not resolutions and self.size_multiple > 1:
            size = self._fit_size(tuple(request.resolution))  # type: ignore[arg-type]
            if size != tuple(request.resolution):
                changes["resolution"] = size
                notes.append(f"resolution {request.resolution[0]}x{request.resolution[1]} -> {size[0]}x{size[1]} "
                             f"(multiples of {self.size_multiple})")
        fps = request.fps
        if self.fps and request.fps not in self.fps:
            fps = min(self.fps, key=lambda f: (abs(f - request.fps), -f))
            changes["fps"] = fps
            notes.append(f"fps {request.fps} -> {fps}")
        if self.frame_multiple > 1:
            framed = self._fit_frames(duration, fps)
            if framed != duration:
                changes["duration_s"] = framed
                notes.append(f"duration {duration:g}s -> {framed:g}s ({round(framed * fps)} frames at {fps} fps: "
                             f"counts of the form {self.frame_multiple}k+{self.frame_remainder})")
        return (dataclasses.replace(request, **changes) if changes else request), tuple(notes)

    def check_inputs(self, request: GenerationRequest) -> str | None:
        """Why the conditioning inputs of `request` (keyframes, images) do not suit this mode, or None.
        Fitting never changes these, so a request rejected here is unsupported whatever its settings."""
        if request.mode == "keyframes":
            given = frozenset(k for k, path in (("first", request.first_frame), ("last", request.last_frame)) if path)
            if given not in KEYFRAME_RULES[self.keyframes]:
                carried = " and ".join(f"{k}_frame" for k in ("first", "last") if k in given) or "no keyframe"
                return f"mode 'keyframes' needs {KEYFRAME_RULE_TEXT[self.keyframes]}; the request has {carried}"
        n = len(request.images)
        if n < self.min_images:
            return (f"mode '{request.mode}' needs {self.min_images} conditioning image"
                    f"{'s' if self.min_images > 1 else ''}; the request has {n}")
        if self.max_images is not None and n > self.max_images:
            return (f"mode '{request.mode}' uses at most {self.max_images} conditioning image"
                    f"{'s' if self.max_images != 1 else ''}; the request has {n}")
        return None

    def check(self, request: GenerationRequest) -> str | None:
        """Why `request` (already known to be in this mode) is outside these limits, or None."""
        inputs = self.check_inputs(request)
        if inputs is not None:
            return inputs
        if self.durations_s and request.duration_s not in self.durations_s:
            return (f"duration {request.duration_s:g}s not supported in mode '{request.mode}' (supports "
                    f"{', '.join(f'{d:g}' for d in self.durations_s)} s)")
        if request.duration_s > self.max_duration_s:
            return f"duration {request.duration_s:g}s exceeds the maximum {self.max_duration_s:g}s"
        resolutions = self.resolutions_for(request.duration_s)
        if resolutions and tuple(request.resolution) not in resolutions:
            w, h = request.resolution
            return (f"resolution {w}x{h} not supported in mode '{request.mode}' at {request.duration_s:g}s "
                    f"(supports {', '.join(f'{a}x{b}' for a, b in resolutions)})")
        if not resolutions and self._fit_size(tuple(request.resolution)) != tuple(request.resolution):  # type: ignore[arg-type]
            return f"resolution {request.resolution[0]}x{request.resolution[1]} is not a multiple of {self.size_multiple}"
        if self.fps and request.fps not in self.fps:
            return f"fps {request.fps} not supported (supports {', '.join(map(str, self.fps))})"
        if not self.frames_ok(request.num_frames):
            return (f"{request.num_frames} frames not supported (counts of the form "
                    f"{self.frame_multiple}k+{self.frame_remainder})")
        return None

    def defaults(self) -> tuple[float, tuple[int, int], int]:
        """(duration_s, resolution, fps) for a request that names none of them: the declared defaults, and for
        any left undeclared the shared request default fitted to these limits."""
        base = GenerationRequest(prompt_id="", prompt="")
        if self.default_duration_s is not None:
            base = dataclasses.replace(base, duration_s=float(self.default_duration_s))
        if self.default_resolution is not None:
            base = dataclasses.replace(base, resolution=tuple(self.default_resolution))  # type: ignore[arg-type]
        if self.default_fps is not None:
            base = dataclasses.replace(base, fps=int(self.default_fps))
        fitted, _ = self.fit(base)
        return fitted.duration_s, tuple(fitted.resolution), fitted.fps  # type: ignore[return-value]


@dataclass(frozen=True)
class Capabilities:
    """What a backend (with its configured model) accepts, declared per request mode.

    Build with `Capabilities.of({"t2v": ModeCapabilities(...), ...})` or `Capabilities.same(modes, ...)`. The
    runner fits requests with `fit` and skips (recording them as unsupported) those `check` rejects; a mode the
    backend lacks is never changed into another.
    """

    per_mode: tuple[tuple[str, ModeCapabilities], ...] = (("t2v", ModeCapabilities()),)
    """(mode, limits) pairs in the backend's order of preference; modes not listed are unsupported."""

    @classmethod
    def of(cls, modes: Mapping[str, ModeCapabilities]) -> "Capabilities":
        """Capabilities from a {mode: limits} mapping (order kept)."""
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown}; modes are {', '.join(MODES)}")
        return cls(per_mode=tuple(modes.items()))

    @classmethod
    def same(cls, modes: tuple[str, ...], limits: ModeCapabilities | None = None) -> "Capabilities":
        """The same limits in every mode of `modes`."""
        return cls.of({m: limits or ModeCapabilities() for m in modes})

    @property
    def modes(self) -> tuple[str, ...]:
        """Supported request modes."""
        return tuple(m for m, _ in self.per_mode)

    def for_mode(self, mode: str) -> ModeCapabilities | None:
        """The limits of `mode`, or None when the backend does not support it."""
        return dict(self.per_mode).get(mode)

    def fit(self, request: GenerationRequest) -> tuple[GenerationRequest, tuple[str, ...]]:
        """The closest request the backend accepts in the request's own mode, and a note per change.
        A request in an unsupported mode comes back unchanged (`check` then names it unsupported)."""
        limits = self.for_mode(request.mode)
        return (request, ()) if limits is None else limits.fit(request)

    def check(self, request: GenerationRequest) -> str | None:
        """Return why `request` is unsupported, or None if it is supported."""
        limits = self.for_mode(request.mode)
        if limits is None:
            return f"mode '{request.mode}' not supported (supports {', '.join(self.modes)})"
        return limits.check(request)


ScoreStatus = Literal["ok", "unavailable", "error"]


@dataclass(frozen=True)
class ScoreRecord:
    """One metric value (or the reason there is none). Written to `scores.jsonl` and the SQLite index.

    Carries its own direction and unit so reports never keep a list of which way is better.
    """

    metric: str
    """Metric name as registered (e.g. 'fvd', 'lpips_ref', 'clipsim', 'shapes_adherence')."""
    status: ScoreStatus
    """'ok' (value is real), 'unavailable' (metric cannot run here; see reason) or 'error' (this input is bad)."""
    value: float | None = None
    """The number (None unless status is 'ok')."""
    reason: str | None = None
    """Why there is no value, and what the user must do about it."""
    profile: str = ""
    """Preprocessing/weights profile id; part of every comparison (numbers under different profiles never mix)."""
    unit: str = ""
    """Display unit ('' for unitless)."""
    higher_is_better: bool = True
    """Direction declared by the metric."""
    scope: Literal["video", "set", "pair"] = "video"
    """'video': one generated video; 'set': a distribution (FVD over a backend's videos); 'pair': two backends."""
    backend: str = ""
    """Backend whose output was scored ('' for pure file scoring)."""
    other: str = ""
    """For scope 'pair' or 'set': what it was compared with (another backend, or the reference set id)."""
    prompt_id: str = ""
    """Prompt id (video scope)."""
    category: str = ""
    """Prompt category; for set scope, '' means all categories together."""
    sample: int = 0
    """Sample index (video scope)."""
    key: str = ""
    """Generation cache key (video scope); '' for set scope."""
    n: int = 0
    """Number of items behind the value (frames, videos, or generated videos for FVD)."""
    n_ref: int = 0
    """Number of reference items (FVD: real/reference videos)."""
    ci_low: float | None = None
    """Lower bound of a confidence interval, if computed."""
    ci_high: float | None = None
    """Upper bound of a confidence interval, if computed."""
    simulated: bool = False
    """True when the scored video came from a fake vendor server."""
    extra: tuple[tuple[str, Any], ...] = ()
    """Metric-specific facts (sorted pairs), e.g. FVD's bias-corrected value, CLIP's truncation flag."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["extra"] = thaw(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ScoreRecord":
        d = dict(d)
        d["extra"] = make_extra(d.get("extra") or {})
        return cls(**d)
