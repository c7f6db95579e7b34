"""Engines: where a run's backends and metrics execute. `local` (this process, today's runner) or `ray` (Ray actors
on this machine or a cluster). Either way the driver process owns the run folder and writes every record.

`open_engine(config)` is the only entry point; Ray is imported only when `ray` is asked for.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from vbench_suite.errors import ConfigError

if TYPE_CHECKING:
    from vbench_suite.backends.base import Backend
    from vbench_suite.runner.score import Scorer

ENGINES = ("local", "ray")
"""`run --engine` choices."""


class Engine(Protocol):
    """Builds a run's backends and its scorer; `close` releases what it started (actors, a local Ray instance)."""

    def create_backends(self, specs: dict[str, dict[str, Any]]) -> dict[str, Backend]:
        """Backend name -> its `--option`s (placement options included) => one ready-to-use backend per name. All
        of a run's backends are created in one call, so an engine can place them together. Raises `ConfigError`
        for options a backend rejects."""
        ...

    def scorer(self) -> Scorer:
        """What `runner.score.run_scoring` runs metrics with."""
        ...

    def close(self) -> None:
        ...


def check_engine(engine: str, ray_address: str | None) -> None:
    """`ConfigError` for an unknown engine, or a Ray address without the Ray engine (cheap: nothing is started)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got '{engine}'")
    if ray_address and engine != "ray":
        raise ConfigError("--ray-address is only used with --engine ray; add --engine ray or drop --ray-address")


@contextmanager
def open_engine(engine: str, *, ray_address: str | None = None, score_actors: int | None = None,
                device: str = "auto") -> Iterator[Engine]:
    """The engine named `engine`, closed when the block ends (actors stopped, a Ray instance it started shut down)."""
    check_engine(engine, ray_address)
    if engine == "local":
        from vbench_suite.runner.engines.local import LocalEngine

        opened: Engine = LocalEngine()
    else:
        from vbench_suite.runner.engines.ray_engine import RayEngine

        opened = RayEngine(address=ray_address, score_actors=score_actors, device=device)
    try:
        yield opened
    finally:
        opened.close()
