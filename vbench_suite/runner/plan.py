"""Turn (suite × backends × samples) into concrete, content-addressed work items."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from vbench_suite.keys import derive_seed, generation_key
from vbench_suite.suites import PromptItem, PromptSet, resolve_image
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, make_extra

REFERENCE_ROLE = "reference"
"""`role` of generation records that form the FVD reference set (not a benchmarked backend's output)."""


@dataclass(frozen=True)
class WorkItem:
    """One generation the run needs: which backend, which prompt and sample, the exact request and its key."""

    backend: str
    item: PromptItem
    sample: int
    request: GenerationRequest
    key: str
    role: str = "benchmark"
    adjustments: tuple[str, ...] = ()
    """How the suite's request was fitted to the backend's capabilities (e.g. 'duration 5s -> 4s')."""


def build_request(item: PromptItem, suite: PromptSet, sample: int, run_seed: int, inputs_dir: Path,
                  seed_namespace: str = "", extra: Mapping[str, Any] | None = None) -> GenerationRequest:
    """The request for (prompt, sample): suite defaults + the item's fields + a seed derived from the run seed.

    `seed_namespace` separates seed streams (the FVD reference set must not share seeds with the backends).
    """
    options: dict[str, Any] = dict(extra or {})
    if item.presenter:
        options["presenter"] = item.presenter

    def image(ref: str | None) -> str | None:
        return None if ref is None else str(resolve_image(ref, inputs_dir, suite.resolution))

    return GenerationRequest(
        prompt_id=item.id, prompt=item.text, mode=item.mode,  # type: ignore[arg-type]
        images=tuple(p for p in (image(item.image),) if p is not None),
        first_frame=image(item.first_frame), last_frame=image(item.last_frame),
        duration_s=item.duration_s, fps=suite.fps, resolution=tuple(suite.resolution),  # type: ignore[arg-type]
        seed=derive_seed(run_seed, f"{seed_namespace}{item.id}", sample), extra=make_extra(options))


def plan_work(suite: PromptSet, backend: str, fingerprint: Fingerprint, samples: int, run_seed: int,
              inputs_dir: Path, role: str = "benchmark", seed_namespace: str = "",
              items: tuple[PromptItem, ...] | None = None, capabilities: Capabilities | None = None) -> list[WorkItem]:
    """All work items for one backend, in suite order then sample order.

    With `capabilities`, each request is first fitted to what the backend accepts in the request's own mode (nearest
    duration, resolution, fps of that mode; a mode the backend lacks is left as it is and later recorded as
    unsupported); the adjustments are kept with the item and its record. Without, requests go as the suite wrote
    them.
    """
    out = []
    for item in (suite.items if items is None else items):
        for sample in range(samples):
            request = build_request(item, suite, sample, run_seed, inputs_dir, seed_namespace)
            notes: tuple[str, ...] = ()
            if capabilities is not None:
                request, notes = capabilities.fit(request)
            out.append(WorkItem(backend, item, sample, request, generation_key(fingerprint, request), role, notes))
    return out
