"""Metric registry: name -> 'module:Class', imported only when used (importing this package never imports torch).

`score_items` is the one entry point the runner and `vbench-suite score` share: it runs each named metric over the
items and turns a metric that cannot run, or that fails, into records, so one metric never stops the others.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from vbench_suite.errors import MetricUnavailable, UnknownNameError, UserError
from vbench_suite.metrics.base import Metric, MetricInfo, ScoringContext, ScoringItem
from vbench_suite.types import ScoreRecord

__all__ = ["METRICS", "METRIC_GROUPS", "Metric", "MetricInfo", "ScoringContext", "ScoringItem", "available_metrics",
           "create_metric", "metric_class", "resolve_metric_names", "score_items", "score_with"]

log = logging.getLogger(__name__)

METRICS: dict[str, str] = {
    "fvd": "vbench_suite.metrics.fvd:FVD",
    "lpips_ref": "vbench_suite.metrics.lpips:LPIPSReference",
    "lpips_temporal": "vbench_suite.metrics.lpips:LPIPSTemporal",
    "lpips_diversity": "vbench_suite.metrics.lpips:LPIPSDiversity",
    "clipsim": "vbench_suite.metrics.clip:CLIPSim",
    "shapes_adherence": "vbench_suite.metrics.shapes_adherence:ShapesAdherence",
}

METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "lpips": ("lpips_ref", "lpips_temporal", "lpips_diversity"),
    "clip": ("clipsim",),
}
"""Short names accepted wherever metric names are (CLI `--metrics fvd,lpips,clip`)."""


def available_metrics() -> list[str]:
    return sorted(METRICS)


def resolve_metric_names(names: Sequence[str]) -> list[str]:
    """Expand groups ('lpips' -> the three LPIPS metrics), drop duplicates keeping order, reject unknown names."""
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        expanded = METRIC_GROUPS.get(name, (name,))
        for n in expanded:
            if n not in METRICS:
                raise UnknownNameError("metric", n, list(METRICS) + list(METRIC_GROUPS))
            if n not in out:
                out.append(n)
    return out


def metric_class(name: str) -> type[Metric]:
    """Import and return the class registered under `name`; unknown names raise `UnknownNameError`."""
    if name not in METRICS:
        raise UnknownNameError("metric", name, METRICS)
    module_name, class_name = METRICS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_metric(name: str, **options: Any) -> Metric:
    """Instantiate a metric by registered name with metric-specific options (e.g. net='vgg')."""
    cls = metric_class(name)
    try:
        return cls(**options)
    except TypeError as exc:
        raise UserError(f"bad options for metric '{name}': {exc}") from exc


def _failure(name: str, status: str, reason: str) -> ScoreRecord:
    info = _info_or_none(name)
    return ScoreRecord(metric=name, status=status, reason=reason, scope="set",  # type: ignore[arg-type]
                       unit=info.unit if info else "", higher_is_better=info.higher_is_better if info else True)


def _info_or_none(name: str) -> MetricInfo | None:
    try:
        return getattr(metric_class(name), "info", None)
    except Exception:  # the class itself could not be imported; the failure record says why
        return None


def score_items(items: Sequence[ScoringItem], metric_names: Sequence[str], ctx: ScoringContext) -> list[ScoreRecord]:
    """Score `items` with each metric in `metric_names` (groups allowed); options come from `ctx.options[name]`.

    A metric that cannot run here yields one 'unavailable' record, one that crashes yields one 'error' record with
    the exception text; the other metrics still run. Per-video problems are 'error' records from the metric itself.
    """
    records: list[ScoreRecord] = []
    for name in resolve_metric_names(metric_names):
        options = dict(ctx.options.get(name) or {})
        records.extend(score_with(name, lambda name=name, options=options: create_metric(name, **options), items, ctx))
    return records


def score_with(name: str, make: Callable[[], Metric], items: Sequence[ScoringItem],
               ctx: ScoringContext) -> list[ScoreRecord]:
    """`make().score(items, ctx)` for the metric registered as `name`, with a metric that cannot be built or run
    turned into one record exactly as `score_items` does (engines that build metrics elsewhere use this)."""
    try:
        return list(make().score(items, ctx))
    except MetricUnavailable as exc:
        return [_failure(name, "unavailable", str(exc))]
    except UserError as exc:
        return [_failure(name, "error", str(exc))]
    except ImportError as exc:
        return [_failure(name, "unavailable", f"cannot import the metric's code: {exc}")]
    except Exception as exc:  # a bug or an environment problem in one metric must not lose the others
        log.exception("metric %s failed", name)
        return [_failure(name, "error", f"{type(exc).__name__}: {exc}")]
