"""The interface every generator implements (local models and paid APIs alike)."""
from __future__ import annotations

import abc
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, GenerationResult

PLACEMENT_OPTIONS = ("num_cpus", "num_gpus", "memory_mb", "actors")
"""`--option BACKEND.KEY=VALUE` keys that say where a backend runs, not what it makes: they override `resources()`
(and `actors` the number of instances) under `--engine ray`, never reach the constructor and are not part of the
fingerprint. Under `--engine local` they are accepted and have no effect."""


@dataclass(frozen=True)
class Resources:
    """What one instance of a backend needs on the machine that runs it (Ray's scheduling units under `--engine ray`).

    Declare it truthfully: a GPU model declares `num_gpus=1` so it is only placed where a GPU is; an instance
    declared without GPUs sees none (its CUDA_VISIBLE_DEVICES is emptied) and runs on the CPU.
    """

    num_cpus: float = 1.0
    """CPU cores (fractions allowed: a light renderer can share a core)."""
    num_gpus: float = 0.0
    """GPUs (fractions allowed: several small models on one GPU)."""
    memory_mb: float = 0.0
    """Host memory in MiB reserved for the instance (0: not declared)."""


def split_placement_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Backend options -> (constructor options, placement options of `PLACEMENT_OPTIONS`)."""
    ctor = {k: v for k, v in options.items() if k not in PLACEMENT_OPTIONS}
    return ctor, {k: v for k, v in options.items() if k in PLACEMENT_OPTIONS}


@dataclass
class GenerationContext:
    """Where and how one request's output is kept. Built by the runner (or the `generate` command).

    `out_path` is where the backend must write the finished video (atomically: write elsewhere, then rename).
    `record_job` persists a remote job id *before* polling starts; `recorded_job` returns the one persisted by an
    earlier, interrupted attempt so the backend polls it instead of submitting (and paying) again.
    """

    out_path: Path
    """Final path of the video file; its parent exists."""
    key: str = ""
    """Cache key of this generation (see `vbench_suite.keys.generation_key`)."""
    record_job: Callable[[dict[str, Any]], None] = field(default=lambda job: None)
    """Persist {'job_id': ..., ...} durably before polling. Must never receive secrets."""
    recorded_job: dict[str, Any] | None = None
    """Job persisted by an earlier attempt of the same key, if any."""


class Backend(abc.ABC):
    """A video generator. Subclasses set `name`, implement `generate`, `fingerprint` and `capabilities`.

    Contract:
    - `generate` never raises for generation failures: it returns a result with status 'refused'/'failed'.
      It may raise `UserError` for configuration problems (missing key) discovered before any work.
    - the same request (seed included) gives the same video whatever else is in the batch.
    """

    name: str = ""
    max_concurrency: int = 1
    """Default number of requests in flight at once (the runner may lower it)."""
    batch_size: int = 1
    """How many requests the runner hands to `generate_batch` at once."""
    bills_usd: bool = False
    """True when `cost_usd` is money a vendor bills (counts against the run's budget cap). Local backends record
    a self-hosting cost for comparison, which is not spent from the budget."""
    remote: bool = False
    """True when a service outside this machine makes the video: the vendor may change the model behind the same
    name, so every run is a new measurement and the runner's default reuse policy (`--reuse local`) never copies
    this backend's results from another run."""

    @abc.abstractmethod
    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        """Generate one video into `ctx.out_path` (a temporary path if ctx is None)."""

    def generate_batch(self, requests: Sequence[GenerationRequest],
                       ctxs: Sequence[GenerationContext]) -> list[GenerationResult]:
        """Generate several videos; returns results in input order. Override to batch on the accelerator."""
        return [self.generate(r, c) for r, c in zip(requests, ctxs, strict=True)]

    @abc.abstractmethod
    def fingerprint(self) -> Fingerprint:
        """Everything that changes this backend's output (model id, version, output-changing settings)."""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """Per mode, the durations, resolutions and frame rates this backend (its configured model) accepts.

        Must be cheap: no model loading, no network, no heavy imports (`list backends` calls it for every backend)."""

    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        """Why this backend cannot serve `request` at all (the runner records it as unsupported, never sends it),
        or None. Default: `capabilities().check`; backends add their own input rules (a missing image, a prompt
        outside a grammar). A request that `capabilities().fit` returned must only be refused for inputs fitting
        cannot change (mode, images, prompt)."""
        return self.capabilities().check(request)

    def readiness(self) -> str | None:
        """Like `not_configured_reason`, but cheap enough for listings: never loads a model or imports torch.
        Default: `not_configured_reason()` (override when that is expensive)."""
        return self.not_configured_reason()

    def resources(self) -> Resources:
        """What one instance needs (see `Resources`); placement options override it per run. Must be cheap (no
        model loading). Default: one CPU core."""
        return Resources()

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        """Upper estimate of what `request` will cost, used by the budget cap before submitting. Local: 0."""
        return 0.0

    def not_configured_reason(self) -> str | None:
        """Why this backend cannot run here (e.g. 'RUNWAYML_API_SECRET is not set'), or None when ready."""
        return None

    def close(self) -> None:
        """Release clients, files and models."""

    @staticmethod
    def default_context(request: GenerationRequest) -> GenerationContext:
        """A throwaway context writing into a fresh temporary folder (for ad-hoc calls without a runner)."""
        out_dir = Path(tempfile.mkdtemp(prefix="vbench-"))
        return GenerationContext(out_path=out_dir / f"{request.prompt_id}.mp4")
