"""The local engine: backends and metrics run in this process (threads per backend), as the runner always did."""
from __future__ import annotations

import logging
from typing import Any

from vbench_suite.backends import Backend, backend_class
from vbench_suite.backends.base import split_placement_options
from vbench_suite.errors import ConfigError
from vbench_suite.runner.score import LocalScorer, Scorer

log = logging.getLogger(__name__)


def construct_backend(name: str, options: dict[str, Any]) -> Backend:
    """Instantiate backend `name` with its constructor options; a value the constructor rejects is a `ConfigError`."""
    try:
        return backend_class(name)(**options)
    except (TypeError, ValueError) as exc:  # e.g. a value of the wrong type
        raise ConfigError(f"backend '{name}' rejected options {sorted(options)}: {exc}") from None


class LocalEngine:
    """Everything in this process; placement options (`num_cpus`, `actors`, ...) are accepted and have no effect."""

    def create_backends(self, specs: dict[str, dict[str, Any]]) -> dict[str, Backend]:
        out: dict[str, Backend] = {}
        for name, options in specs.items():
            ctor, placement = split_placement_options(options)
            if placement:
                log.info("backend %s: placement options %s apply to --engine ray only", name, sorted(placement))
            out[name] = construct_backend(name, ctor)
        return out

    def scorer(self) -> Scorer:
        return LocalScorer()

    def close(self) -> None:
        pass
