"""What runs inside Ray actors: one backend instance per generation actor, metric instances per scoring actor.

Plain classes (the engine wraps them with `ray.remote`). Nothing here touches the run folder: inputs arrive as
bytes, videos go back as bytes, records go back as values, and the driver writes everything (one writer, one
store). Files live in a private temporary folder per actor, so workers need no shared filesystem.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.tempfiles import make_temp
from vbench_suite.types import GenerationRequest, GenerationResult, ScoreRecord, make_extra

SCRATCH_ROOT = "vbench-ray"
"""Folder under the system temp dir holding one scratch folder per actor process (named by its PID)."""


def import_target(target: str) -> Any:
    """'module:Class' -> the class (the driver sends targets, so plugins and test classes need no registry here)."""
    module, _, name = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def hide_gpus_unless_given(num_gpus: float) -> None:
    """An actor that reserved no GPU must not use one: Ray leaves CUDA_VISIBLE_DEVICES alone for such actors, and
    a backend with device 'auto' would take a GPU another actor reserved. Called before anything initialises CUDA."""
    if not num_gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def scratch_dir(kind: str) -> Path:
    """A fresh folder for this actor process; folders of actor processes that no longer exist are removed (a
    killed actor cannot clean up after itself)."""
    root = Path(tempfile.gettempdir()) / SCRATCH_ROOT
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{kind}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def where() -> dict[str, Any]:
    """Node id, node address and process of this actor (recorded with results)."""
    import ray

    ctx = ray.get_runtime_context()
    return {"node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


class _Files:
    """Driver paths -> local copies, written from bytes (or object refs to bytes) the driver sent."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.local: dict[str, Path] = {}

    def fetch(self, files: Mapping[str, Any]) -> dict[str, str]:
        """Make a local copy of each file not copied yet; returns {driver path: local path} for `files`."""
        import ray

        missing = [p for p in files if p not in self.local]
        refs = [files[p] for p in missing]
        fetched = ray.get([r for r in refs if isinstance(r, ray.ObjectRef)]) if refs else []
        values = iter(fetched)
        for path, ref in zip(missing, refs):
            data = next(values) if isinstance(ref, ray.ObjectRef) else ref
            digest = hashlib.sha256(data).hexdigest()[:24]
            local = self.root / f"{digest}{Path(path).suffix}"
            if not local.exists():
                fd, tmp = make_temp(self.root, local.name)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                tmp.replace(local)
            self.local[path] = local
        return {p: str(self.local[p]) for p in files}


class GenerationWorker:
    """One backend instance (its model loaded once, here) serving generation calls one at a time."""

    def __init__(self, target: str, options: dict[str, Any], num_gpus: float) -> None:
        hide_gpus_unless_given(num_gpus)
        self.scratch = scratch_dir("gen")
        self.files = _Files(self.scratch / "inputs")
        self.files.root.mkdir()
        self.backend: Backend = import_target(target)(**options)
        try:
            self.reason = self.backend.not_configured_reason()   # loads the model now, once
        except Exception as exc:  # noqa: BLE001 - reported as "not configured", as the listing would
            self.reason = f"{type(exc).__name__}: {exc}"

    def ready(self) -> dict[str, Any]:
        """What the driver needs before planning: whether the backend can run, its fingerprint and capabilities."""
        info: dict[str, Any] = {"not_configured": self.reason, **where()}
        if self.reason is None:
            info.update(fingerprint=self.backend.fingerprint(), capabilities=self.backend.capabilities(),
                        batch_size=int(self.backend.batch_size), bills_usd=bool(self.backend.bills_usd))
        return info

    def release(self) -> None:
        """Remove this actor's scratch folder (the pool calls it before stopping the actor)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        return self.backend.unsupported_reason(request)

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        return float(self.backend.estimate_cost_usd(request))

    def generate_batch(self, jobs: Sequence[tuple[GenerationRequest, str, str]],
                       files: Mapping[str, Any]) -> list[tuple[GenerationResult, bytes | None]]:
        """`jobs`: (request, cache key, file name the driver will store the video under); `files`: {driver path of
        a conditioning image: its bytes}. Returns each result with its video's bytes (None without a video)."""
        local = self.files.fetch(files)
        out_dir = Path(tempfile.mkdtemp(dir=self.scratch, prefix="out-"))
        try:
            requests = [_localised(r, local) for r, _, _ in jobs]
            ctxs = [GenerationContext(out_path=out_dir / name, key=key) for _, key, name in jobs]
            try:
                results = self.backend.generate_batch(requests, ctxs)
            except Exception as exc:  # noqa: BLE001 - as the local runner records a backend crash
                results = [GenerationResult(status="failed", fingerprint=self.backend.fingerprint(),
                                            error=f"backend raised {type(exc).__name__}: {exc}", retriable=True)
                           for _ in requests]
            placed = where()
            out: list[tuple[GenerationResult, bytes | None]] = []
            for result in results:
                data = None
                if result.video_path and Path(result.video_path).is_file():
                    data = Path(result.video_path).read_bytes()
                info = {**dict(result.info), "ray_node_id": placed["node_id"], "ray_node_ip": placed["node_ip"]}
                out.append((dataclasses.replace(result, info=make_extra(info)), data))
            return out
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)


def _localised(request: GenerationRequest, local: Mapping[str, str]) -> GenerationRequest:
    """The request with its conditioning images at their local copies (same bytes, so the same output)."""
    return dataclasses.replace(
        request, images=tuple(local.get(p, p) for p in request.images),
        first_frame=local.get(request.first_frame, request.first_frame) if request.first_frame else None,
        last_frame=local.get(request.last_frame, request.last_frame) if request.last_frame else None)


def request_files(request: GenerationRequest) -> list[str]:
    """Paths of the files a request refers to (conditioning images), which must travel with it."""
    return [p for p in (*request.images, request.first_frame, request.last_frame) if p]


class ScoringWorker:
    """Metric instances (weights loaded once per actor) scoring the videos the driver sends."""

    def __init__(self, device: str, num_gpus: float) -> None:
        hide_gpus_unless_given(num_gpus)
        from vbench_suite.device import resolve_device
        from vbench_suite.paths import cache_dir

        self.device = resolve_device(device)
        self.cache_dir = cache_dir()
        self.scratch = scratch_dir("score")
        self.files = _Files(self.scratch)
        self.metrics: dict[tuple[str, str], Any] = {}

    def ready(self) -> dict[str, Any]:
        return {"device": self.device, **where()}

    def release(self) -> None:
        """Remove this actor's scratch folder (the pool calls it before stopping the actor)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _metric(self, name: str, target: str, options: Mapping[str, Any]) -> Any:
        key = (target, repr(sorted(options.items())))
        if key not in self.metrics:
            from vbench_suite.errors import UserError

            try:
                self.metrics[key] = import_target(target)(**options)
            except TypeError as exc:
                raise UserError(f"bad options for metric '{name}': {exc}") from exc
        return self.metrics[key]

    def _local(self, items: Sequence[ScoringItem], files: Mapping[str, Any],
               ctx: ScoringContext) -> tuple[list[ScoringItem], ScoringContext, dict[str, str]]:
        local = self.files.fetch(files)
        out = [dataclasses.replace(it, video_path=local.get(it.video_path, it.video_path),
                                   reference_path=local.get(it.reference_path, it.reference_path)
                                   if it.reference_path else None) for it in items]
        here = dataclasses.replace(ctx, device=self.device, cache_dir=self.cache_dir,
                                   reference_videos=[local.get(p, p) for p in ctx.reference_videos])
        return out, here, {v: k for k, v in local.items()}

    def score_chunk(self, name: str, target: str, options: dict[str, Any], items: Sequence[ScoringItem],
                    files: Mapping[str, Any], ctx: ScoringContext) -> list[ScoreRecord]:
        """A video-scope metric on a few items with this actor's instance; if it fails, a fresh instance scores the
        chunk through `metrics.score_with`, which turns a failure into records as the local engine does."""
        from vbench_suite.metrics import score_with
        from vbench_suite.metrics.common import bound_heap_growth

        bound_heap_growth()
        here_items, here, back = self._local(items, files, ctx)
        try:
            records = self._metric(name, target, options).score(here_items, here)
        except Exception:  # noqa: BLE001 - see docstring
            records = score_with(name, lambda: import_target(target)(**options), here_items, here)
        return [_driver_paths(r, back) for r in records]

    def score_set(self, name: str, target: str, options: dict[str, Any], items: Sequence[ScoringItem],
                  files: Mapping[str, Any], ctx: ScoringContext) -> list[ScoreRecord]:
        """A set-scope metric over `items` (all of them, or one independent group)."""
        from vbench_suite.metrics import score_with
        from vbench_suite.metrics.common import bound_heap_growth

        bound_heap_growth()
        here_items, here, back = self._local(items, files, ctx)
        records = score_with(name, lambda: self._metric(name, target, options), here_items, here)
        return [_driver_paths(r, back) for r in records]

    def fvd_features(self, target: str, options: dict[str, Any], paths: Sequence[str], files: Mapping[str, Any],
                     ctx: ScoringContext) -> Any:
        """`FVD.features` of `paths` (a `FeatureShard`, reasons naming the driver's paths), or the reason string
        when the metric cannot run here (`MetricUnavailable`)."""
        from vbench_suite.errors import MetricUnavailable
        from vbench_suite.metrics.common import bound_heap_growth

        bound_heap_growth()
        local = self.files.fetch(files)
        back = {v: k for k, v in local.items()}
        here = dataclasses.replace(ctx, device=self.device, cache_dir=self.cache_dir)
        try:
            shard = self._metric("fvd", target, options).features([local.get(p, p) for p in paths], here)
        except MetricUnavailable as exc:
            return str(exc)
        shard.bad = [(i, _replace_paths(reason, back)) for i, reason in shard.bad]
        return shard


def _replace_paths(text: str, back: Mapping[str, str]) -> str:
    for local, driver in back.items():
        text = text.replace(local, driver)
    return text


def _driver_paths(record: ScoreRecord, back: Mapping[str, str]) -> ScoreRecord:
    """The record with this actor's local file paths (in reasons and extra values) put back as the driver's."""
    def fix(value: Any) -> Any:
        if isinstance(value, str):
            return _replace_paths(value, back)
        if isinstance(value, (list, tuple)):
            return type(value)(fix(v) for v in value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    reason = fix(record.reason) if record.reason else record.reason
    extra = tuple((k, fix(v)) for k, v in record.extra)
    return dataclasses.replace(record, reason=reason, extra=extra)
