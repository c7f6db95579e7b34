"""What the drift test needs from two runs of a backend, gathered once: distances between same-seed outputs, the
replay noise floor from both runs' probes, and I3D features of every measured video.

`BackendEvidence` is plain data (numpy arrays and numbers), so the report (which never imports torch) can test it;
`collect_evidence` decodes videos and runs LPIPS and I3D, importing torch only when there is a video to measure.
Only results each run measured itself count: results reused from another run, unsupported requests and failures
are left out (they are not this run's output).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from vbench_suite.report.load import RunData

log = logging.getLogger(__name__)

REPRODUCIBLE = ("bit-exact", "seed-faithful within noise")
"""Probe classes whose same-seed outputs are compared pair by pair (same values as `drift.probe`; this module
stays importable without the runner)."""


@dataclass
class BackendEvidence:
    """Drift evidence for one backend between a baseline and a current run."""

    backend: str
    classes: tuple[str | None, str | None] = (None, None)
    """Probe class in the (baseline, current) run; None where that run has no probe of the backend."""
    floor: list[float] = field(default_factory=list)
    """Replay LPIPS of both runs' probes (drift profile): the noise floor of one request sent twice."""
    pairs: list[tuple[str, float]] = field(default_factory=list)
    """(prompt id, LPIPS) between the two runs' outputs of the same request and seed (same cache key)."""
    baseline_features: np.ndarray = field(default_factory=lambda: np.zeros((0, 400), np.float32))
    baseline_strata: list[str] = field(default_factory=list)
    current_features: np.ndarray = field(default_factory=lambda: np.zeros((0, 400), np.float32))
    current_strata: list[str] = field(default_factory=list)
    """I3D features (N, 400) of each side's measured ok videos, and the prompt id of each row."""
    notes: list[str] = field(default_factory=list)
    """What was left out and why (videos missing or unreadable, reused results)."""
    lpips_profile: str = ""
    i3d_profile: str = ""

    @property
    def reproducible(self) -> bool:
        """Both runs probed the backend and found the seed fixes the video (bit-exact or seed-faithful)."""
        return all(c in REPRODUCIBLE for c in self.classes)

    def shared_strata(self) -> list[str]:
        """Prompts with at least one measured video on each side (the only ones the stratified test can use)."""
        return sorted(set(self.baseline_strata) & set(self.current_strata))


def fingerprint_set(run: "RunData", backend: str) -> set[tuple[str, str, str]]:
    """The declared (model, version, settings) of `backend`'s current generations in `run`."""
    g = run.generations[run.generations["backend"] == backend]
    return {(str(m), str(v), str(s)) for m, v, s in zip(g["model"], g["version"], g["settings"])}


def measured_ok(run: "RunData", backend: str) -> list[tuple[str, str, Path]]:
    """(key, prompt id, video path) of `backend`'s ok generations that `run` made itself (not reused), in key order."""
    g = run.generations
    g = g[(g["backend"] == backend) & (g["status"] == "ok") & (g["reused_from"] == "")
          & ~g["unsupported"].astype(bool)]
    out = []
    for key, prompt, video in sorted(zip(g["key"], g["prompt_id"], g["video_path"])):
        if video:
            out.append((str(key), str(prompt), Path(run.run_dir) / str(video)))
    return out


def _probe(run: "RunData", backend: str) -> dict[str, Any] | None:
    probe = (run.meta.get("probe") or {}).get(backend)
    return probe if isinstance(probe, dict) else None


def collect_evidence(current: "RunData", baseline: "RunData", backends: Iterable[str] | None = None, *,
                     cache_dir: Path | None = None, meter: Any = None, features: Any = None,
                     on_progress: Callable[[str], None] | None = None) -> dict[str, BackendEvidence]:
    """Evidence for every backend in both runs whose declared fingerprint is the same in both (`backends` narrows
    that). `meter` (a `drift.distance.PairMeter`) and `features` (a `drift.features.FeatureCache`) are built on first
    use unless given. Raises `MetricUnavailable` when LPIPS or I3D weights are missing."""
    from vbench_suite.drift.distance import DRIFT_LPIPS_PROFILE

    say = on_progress or (lambda msg: None)
    common = sorted(set(current.backends()) & set(baseline.backends()))
    wanted = set(backends) if backends is not None else set(common)
    out: dict[str, BackendEvidence] = {}
    for backend in common:
        if backend not in wanted or fingerprint_set(current, backend) != fingerprint_set(baseline, backend):
            continue
        ev = BackendEvidence(backend, lpips_profile=DRIFT_LPIPS_PROFILE)
        pb, pc = _probe(baseline, backend), _probe(current, backend)
        ev.classes = (pb.get("class") if pb else None, pc.get("class") if pc else None)
        for probe in (pb, pc):
            if probe and probe.get("lpips_profile") == DRIFT_LPIPS_PROFILE:
                ev.floor += [float(v) for v in probe.get("replay_lpips") or []]
        side_b, side_c = measured_ok(baseline, backend), measured_ok(current, backend)
        for run in (baseline, current):
            reused = int(((run.generations["backend"] == backend) & (run.generations["reused_from"] != "")).sum())
            if reused:
                ev.notes.append(f"{reused} {backend} result(s) of {run.name} were reused from another run: left out")
        if ev.reproducible:
            say(f"{backend}: same-seed pairs")
            ev.pairs = _pair_distances(side_b, side_c, meter, ev.notes)
        say(f"{backend}: I3D features")
        features = features if features is not None else _feature_cache(cache_dir)
        ev.i3d_profile = features.profile.id
        ev.baseline_features, ev.baseline_strata = _features(features, side_b, baseline.name, ev.notes)
        ev.current_features, ev.current_strata = _features(features, side_c, current.name, ev.notes)
        out[backend] = ev
    return out


def _feature_cache(cache_dir: Path | None) -> Any:
    from vbench_suite.drift.features import FeatureCache
    from vbench_suite.paths import cache_dir as default_cache

    return FeatureCache(cache_dir if cache_dir is not None else default_cache())


def _pair_distances(side_b: list[tuple[str, str, Path]], side_c: list[tuple[str, str, Path]], meter: Any,
                    notes: list[str]) -> list[tuple[str, float]]:
    from vbench_suite.errors import VideoError

    if meter is None:
        from vbench_suite.drift.distance import PairMeter

        meter = PairMeter()
    base = {k: p for k, _, p in side_b}
    out = []
    for key, prompt, path in side_c:
        if key not in base:
            continue
        try:
            out.append((prompt, meter.measure(str(base[key]), str(path)).lpips))
        except (VideoError, OSError) as exc:
            notes.append(f"same-seed pair of {prompt} not measured: {exc}")
    return out


def _features(cache: Any, side: list[tuple[str, str, Path]], run_name: str,
              notes: list[str]) -> tuple[np.ndarray, list[str]]:
    present = [(prompt, p) for _, prompt, p in side if p.is_file()]
    missing = len(side) - len(present)
    if missing:
        notes.append(f"{missing} video(s) of {run_name} are not on this machine: left out")
    got = cache.features([str(p) for _, p in present])
    rows, strata = [], []
    for prompt, p in present:
        vec = got.features.get(str(p))
        if vec is None:
            notes.append(f"{run_name}: {p.name} has no I3D features ({got.errors.get(str(p), 'unknown reason')})")
            continue
        rows.append(vec)
        strata.append(prompt)
    feats = np.stack(rows).astype(np.float32) if rows else np.zeros((0, 400), np.float32)
    return feats, strata
