"""How many instances of each backend (and of the scorer) run at once, and what each reserves: pure arithmetic over
the declared `Resources`, the run's placement options and the cluster's capacity, so it is tested without Ray.

Rules (docs/scale-out.md#resources):
- `actors` defaults to one instance per GPU the cluster has for a backend that declares GPUs (its fair share when
  several GPU backends run at once), else one;
- every pool runs at the same time, so together they must fit, each instance on one node. When the CPUs do not
  suffice, pools whose `num_cpus` the user did not set are given less, in proportion, so a 2-core machine still runs
  them all: a pool that took every core would leave the others' instances unscheduled and the run waiting for them
  forever;
- GPUs, memory and explicit settings are never shrunk: on a local Ray instance (nothing will join) a run that cannot
  fit is refused up front with the fix; on a cluster that may grow (an autoscaler) it is a warning.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from vbench_suite.backends.base import PLACEMENT_OPTIONS, Resources
from vbench_suite.errors import ConfigError

MIN_CPU_SHARE = 0.05
"""Smallest CPU share a shrunk pool's instance gets (Ray needs a positive amount to count it)."""


@dataclass(frozen=True)
class PoolSpec:
    """What a run asks for one pool of identical instances."""

    name: str
    """Backend name (or 'scoring')."""
    resources: Resources
    """Per instance, after the run's placement options."""
    actors: int | None = None
    """Instances; None: the default (see the module docstring)."""
    explicit: frozenset[str] = frozenset()
    """Placement options the user set (never changed by the plan)."""


@dataclass(frozen=True)
class PoolPlan:
    """What a pool gets: its instances and what each reserves."""

    name: str
    resources: Resources
    actors: int

    def describe(self) -> str:
        r = self.resources
        parts = [f"{r.num_cpus:g} CPU"] + ([f"{r.num_gpus:g} GPU"] if r.num_gpus else []) + \
                ([f"{r.memory_mb:g} MiB"] if r.memory_mb else [])
        return f"{self.name}: {self.actors} x ({', '.join(parts)})"


def pool_spec(name: str, declared: Resources, options: Mapping[str, Any]) -> PoolSpec:
    """The pool a backend's declared resources and its placement options (`PLACEMENT_OPTIONS`) ask for.

    Raises `ConfigError` naming the option for a value of the wrong type or range."""
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in PLACEMENT_OPTIONS:
            raise ConfigError(f"backend '{name}': '{key}' is not a placement option ({', '.join(PLACEMENT_OPTIONS)})")
        values[key] = _checked(name, key, value)
    resources = replace(declared, **{k: v for k, v in values.items() if k != "actors"})
    return PoolSpec(name, resources, values.get("actors"), frozenset(values))


def check_placement_options(name: str, options: Mapping[str, Any]) -> None:
    """Raise `ConfigError` for a placement option value of the wrong type or range (checked before any work)."""
    for key, value in options.items():
        _checked(name, key, value)


def _checked(name: str, key: str, value: Any) -> Any:
    if key == "actors":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--option {name}.actors must be a whole number >= 1, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"--option {name}.{key} must be a number >= 0, got {value!r}")
    if key == "num_cpus" and value <= 0:
        raise ConfigError(f"--option {name}.num_cpus must be > 0 (a fraction such as 0.5 shares a core), got {value!r}")
    return float(value)


def plan_pools(specs: Sequence[PoolSpec], nodes: Sequence[Mapping[str, float]], *,
               strict: bool) -> tuple[list[PoolPlan], list[tuple[int, str]]]:
    """Plans for pools that run at the same time on a cluster whose live nodes have `nodes` resources (each
    {'CPU': n, 'GPU': n, 'memory': bytes, ...} as `ray.nodes()` lists them), and notes (logging level, text) on
    what was adjusted (INFO) or does not fit (WARNING). Every instance must fit on one node (first fit, largest
    first), not just the cluster's sum.

    `strict` (a local instance, whose capacity is final): what cannot fit raises `ConfigError` with the fix;
    otherwise (a cluster that may grow) it becomes a note and the pools start anyway.
    """
    gpus = sum(float(n.get("GPU", 0.0)) for n in nodes)
    gpu_pools = [s for s in specs if s.resources.num_gpus > 0 and s.actors is None]
    fixed_gpus = sum((s.actors or 0) * s.resources.num_gpus for s in specs if s.actors is not None)
    plans: dict[str, PoolPlan] = {}
    for s in specs:
        if s.actors is not None:
            count = s.actors
        elif s.resources.num_gpus > 0:
            share = max(0.0, gpus - fixed_gpus) / len(gpu_pools)
            count = max(1, int(math.floor(share / s.resources.num_gpus + 1e-9)))
        else:
            count = 1
        plans[s.name] = PoolPlan(s.name, s.resources, count)
    notes: list[tuple[int, str]] = []
    if fits(plans.values(), nodes):
        return [plans[s.name] for s in specs], notes

    # Lower the CPU share of the pools whose num_cpus the user did not set, until every instance fits on a node.
    flexible = [s for s in specs if "num_cpus" not in s.explicit]
    asked = _describe(plans.values())
    scale = 1.0
    while flexible:
        scale *= 0.9
        trial = dict(plans)
        for s in flexible:
            share = max(MIN_CPU_SHARE, math.floor(s.resources.num_cpus * scale * 100) / 100)
            trial[s.name] = replace(plans[s.name], resources=replace(s.resources, num_cpus=share))
        if fits(trial.values(), nodes):
            notes.append((logging.INFO, f"lowered the CPU share of each instance so that every pool fits at once "
                                        f"({asked} asked; now {_describe(trial.values())})"))
            return [trial[s.name] for s in specs], notes
        if all(trial[s.name].resources.num_cpus <= MIN_CPU_SHARE for s in flexible):
            break
    _refuse(strict, notes, f"the pools cannot all be placed at once ({asked}; nodes: {_describe_nodes(nodes)}); "
                           "lower --option NAME.actors, --option NAME.num_cpus (fractions such as 0.5 share a core) "
                           "or --option NAME.num_gpus, or add nodes (docs/scale-out.md)")
    return [plans[s.name] for s in specs], notes


def fits(plans: Iterable[PoolPlan], nodes: Sequence[Mapping[str, float]]) -> bool:
    """Whether every instance of `plans` can be placed on `nodes` at once (first fit, largest first)."""
    free = [{"CPU": float(n.get("CPU", 0.0)), "GPU": float(n.get("GPU", 0.0)),
             "memory": float(n.get("memory", 0.0)) / 2**20} for n in nodes]
    instances = sorted((p.resources for p in plans for _ in range(p.actors)),
                       key=lambda r: (r.num_gpus, r.num_cpus, r.memory_mb), reverse=True)
    for r in instances:
        need = {"CPU": r.num_cpus, "GPU": r.num_gpus, "memory": r.memory_mb}
        for node in free:
            if all(node[k] + 1e-9 >= v for k, v in need.items() if v):
                for k, v in need.items():
                    node[k] -= v
                break
        else:
            return False
    return True


def _refuse(strict: bool, notes: list[tuple[int, str]], message: str) -> None:
    if strict:
        raise ConfigError(f"--engine ray: {message}")
    notes.append((logging.WARNING, f"{message} (starting anyway: a cluster that grows can still place them)"))


def _describe(plans: Any) -> str:
    return "; ".join(p.describe() for p in plans)


def _describe_nodes(nodes: Sequence[Mapping[str, float]]) -> str:
    return ", ".join(f"{float(n.get('CPU', 0)):g} CPU" + (f" + {float(n['GPU']):g} GPU" if n.get("GPU") else "")
                     for n in nodes) or "none"
