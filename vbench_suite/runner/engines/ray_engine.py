"""The Ray engine: local backends run in actors (model loaded once per actor), metrics in scoring actors; the driver
(this process) plans, owns the run folder and writes every video and record, exactly as the local engine does.

- Generation: each local backend becomes a `RayBackend`, a driver-side `Backend` whose calls go to a pool of
  actors (`ray_pool.ActorPool`) holding one real instance each. The runner's own generation loop drives it, so
  caching, resume, budget, progress and records are the local engine's; its threads pull the next items as actors
  free up. Conditioning images travel as bytes with the call; the finished video comes back as bytes, and the
  driver writes it atomically into the run folder. Remote API backends stay in the driver (their job records
  and crash rules unchanged).
- Scoring: `RayScorer` ships each video once into Ray's object store and shards the work over scoring actors:
  per-video metrics chunk by chunk, FVD as I3D features of slices of the video list (the driver stacks them in item
  order and builds the records: the same numbers whatever the number of actors or the order they finish in),
  LPIPS diversity prompt group by prompt group, any other set metric whole on one actor.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vbench_suite.backends import Backend, backend_class
from vbench_suite.backends.base import GenerationContext, split_placement_options
from vbench_suite.errors import BackendNotConfigured, ConfigError, UserError
from vbench_suite.metrics.base import ScoringContext, ScoringItem
from vbench_suite.runner.engines.local import construct_backend
from vbench_suite.runner.engines.placement import PoolPlan, PoolSpec, plan_pools, pool_spec
from vbench_suite.tempfiles import make_temp
from vbench_suite.types import Capabilities, Fingerprint, GenerationRequest, GenerationResult, ScoreRecord

log = logging.getLogger(__name__)

OBJECT_STORE_ENV = "VBENCH_RAY_OBJECT_STORE_MB"
"""Object store size of a local Ray instance in MiB (default: `DEFAULT_OBJECT_STORE_MB`, at most 30 % of RAM).
Videos pass through it; what does not fit is spilled to disk by Ray."""
DEFAULT_OBJECT_STORE_MB = 1024
WORKER_NICENESS_ENV = "RAY_worker_niceness"
"""Ray runs its workers at niceness 15 unless this says otherwise. A local instance started for a command gets 0
(unless the variable is set): its actors do the command's work, which the local engine does at the user's
priority; at 15, every other process on the machine goes first (measured here on a shared machine: a 2-thread
actor's matmuls 2-3x slower than the same work in the driver)."""
RAY_INSTALL_HINT = "pip install 'vbench_suite[ray]' (or `make setup`, which installs the extra)"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed here: {RAY_INSTALL_HINT}") from None
    return ray


def _target(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class RayEngine:
    """Connects to Ray (or starts a local instance), builds `RayBackend`s and a `RayScorer`; `close` stops every
    actor it started and the Ray instance if it started one."""

    def __init__(self, address: str | None = None, score_actors: int | None = None, device: str = "auto") -> None:
        ray = self.ray = _import_ray()
        self.score_actors, self.device = score_actors, device
        self._owns_ray = False
        self._pools: list[Any] = []
        # A local instance has the capacity it has: what cannot fit is refused up front. A cluster may grow.
        self.strict = address is None
        if address is not None:
            _check_reachable(address)  # even when already connected (tests): a wrong address is the user's error
        if ray.is_initialized():
            log.info("--engine ray: using the Ray instance this process is already connected to")
        elif address is None:
            with _environ(WORKER_NICENESS_ENV, os.environ.get(WORKER_NICENESS_ENV, "0")):
                ray.init(address="local", num_cpus=os.cpu_count() or 1, object_store_memory=_object_store_bytes(),
                         include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
            self._owns_ray = True
        else:
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise UserError(f"--ray-address {address}: cannot join that Ray cluster ({str(exc).splitlines()[0]}); "
                                "start one with `ray start --head` (docs/scale-out.md) or omit --ray-address to run "
                                "on a local Ray instance") from None
        self.worker_cls = ray.remote(_worker_class("GenerationWorker"))
        self.scorer_cls = ray.remote(_worker_class("ScoringWorker"))

    def capacity(self) -> dict[str, float]:
        """The cluster's total resources ({'CPU': n, 'GPU': n, ...})."""
        return dict(self.ray.cluster_resources())

    def nodes(self) -> list[dict[str, float]]:
        """Total resources of each live node."""
        return [dict(n.get("Resources") or {}) for n in self.ray.nodes() if n.get("Alive")]

    def _plan(self, specs: Sequence[PoolSpec]) -> list[PoolPlan]:
        plans, notes = plan_pools(specs, self.nodes(), strict=self.strict)
        for level, note in notes:
            log.log(level, "--engine ray: %s", note)
        for plan in plans:
            log.info("--engine ray: %s", plan.describe())
        return plans

    # ---- generation ------------------------------------------------------------------------------------------
    def create_backends(self, specs: dict[str, dict[str, Any]]) -> dict[str, Backend]:
        out: dict[str, Backend] = {}
        pooled: list[tuple[str, type, dict[str, Any], PoolSpec]] = []
        for name, options in specs.items():
            ctor, placement = split_placement_options(options)
            cls = backend_class(name)
            if cls.remote:
                out[name] = construct_backend(name, ctor)     # I/O-bound: the driver's threads, as locally
                continue
            probe = construct_backend(name, ctor)           # cheap by contract; only asked what it needs
            declared = probe.resources()
            probe.close()
            pooled.append((name, cls, ctor, pool_spec(name, declared, placement)))
        plans = self._plan([spec for *_, spec in pooled])
        for (name, cls, ctor, _), plan in zip(pooled, plans, strict=True):   # every pool starts now, in parallel
            out[name] = RayBackend(name, _target(cls), ctor, plan, self)
        return {name: out[name] for name in specs}

    def pool(self, label: str, actor_class: Any, args: tuple[Any, ...], plan: PoolPlan, **kw: Any) -> Any:
        from vbench_suite.runner.engines.ray_pool import ActorPool

        r = plan.resources
        options: dict[str, Any] = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus}
        if r.memory_mb:
            options["memory"] = int(r.memory_mb * 2**20)
        pool = ActorPool(label, actor_class, args, options, plan.actors, **kw)
        self._pools.append(pool)
        return pool

    # ---- scoring ---------------------------------------------------------------------------------------------
    def scorer(self) -> RayScorer:
        return RayScorer(self)

    def close(self) -> None:
        for pool in self._pools:
            pool.close()
        self._pools.clear()
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False


@contextmanager
def _environ(key: str, value: str) -> Iterator[None]:
    """`os.environ[key] = value` for the block (what the Ray processes started in it inherit)."""
    saved = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = saved


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse at once an address nothing listens on: Ray itself keeps retrying such an address for minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except ValueError:
        raise UserError(f"--ray-address {address}: expected auto, HOST:PORT or ray://HOST:PORT") from None
    except OSError as exc:
        raise UserError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); start the cluster "
                        "with `ray start --head` (docs/scale-out.md), check the address and port, or omit "
                        "--ray-address to run on a local Ray instance") from None


def _worker_class(name: str) -> type:
    from vbench_suite.runner.engines import ray_actors

    return getattr(ray_actors, name)


def _object_store_bytes() -> int:
    mb = os.environ.get(OBJECT_STORE_ENV)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    if mb:
        try:
            return int(float(mb) * 2**20)
        except ValueError:
            raise ConfigError(f"{OBJECT_STORE_ENV} must be a number of MiB, got {mb!r}") from None
    return int(min(DEFAULT_OBJECT_STORE_MB * 2**20, 0.3 * total))


class RayBackend(Backend):
    """A local backend run by a pool of Ray actors, seen by the runner as one backend.

    Its fingerprint, capabilities and answers come from the actors (the instances that generate), not from an
    instance in the driver: a model that runs on a GPU worker may be fingerprinted differently from one the driver
    could load. An actor whose fingerprint differs from the first one's is rejected (e.g. another library version
    on its node). `max_concurrency` is the number of actors: the runner keeps each busy with one batch.
    """

    remote = False

    def __init__(self, name: str, target: str, options: dict[str, Any], plan: PoolPlan, engine: RayEngine) -> None:
        self.name, self.plan = name, plan
        self.max_concurrency = plan.actors
        self._first: dict[str, Any] | None = None
        self._vetting = threading.Lock()          # actors become ready in parallel threads
        self._pool = engine.pool(f"backend {name}", engine.worker_cls, (target, options, plan.resources.num_gpus),
                                 plan, accept=self._accept)

    def _accept(self, info: dict[str, Any]) -> str | None:
        with self._vetting:
            first = self._first = self._first or info
        if info.get("fingerprint") != first.get("fingerprint"):
            return (f"actor on node {info.get('node_ip')} has fingerprint {info.get('fingerprint')}, the others "
                    f"{first.get('fingerprint')} (another version of the model or its libraries there?)")
        return None

    @property
    def info(self) -> dict[str, Any]:
        """The first accepted actor's `ready()` answer (waits for it); `BackendNotConfigured` when none starts."""
        from vbench_suite.runner.engines.ray_pool import NoActorAvailable

        try:
            return self._pool.wait_first()
        except NoActorAvailable as exc:
            raise BackendNotConfigured(str(exc)) from None

    @property
    def bills_usd(self) -> bool:  # type: ignore[override]
        return bool(self.info.get("bills_usd"))

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        return int(self.info.get("batch_size") or 1)

    def not_configured_reason(self) -> str | None:
        try:
            return self.info["not_configured"]
        except BackendNotConfigured as exc:   # no actor could start: the backend cannot run here
            return str(exc)

    def readiness(self) -> str | None:
        return self.not_configured_reason()

    def fingerprint(self) -> Fingerprint:
        return self.info["fingerprint"]

    def capabilities(self) -> Capabilities:
        return self.info["capabilities"]

    def resources(self) -> Any:
        return self.plan.resources

    def unsupported_reason(self, request: GenerationRequest) -> str | None:
        return self._pool.call("unsupported_reason", request)

    def estimate_cost_usd(self, request: GenerationRequest) -> float:
        return float(self._pool.call("estimate_cost_usd", request))

    def generate(self, request: GenerationRequest, ctx: GenerationContext | None = None) -> GenerationResult:
        return self.generate_batch([request], [ctx or self.default_context(request)])[0]

    def generate_batch(self, requests: Sequence[GenerationRequest],
                       ctxs: Sequence[GenerationContext]) -> list[GenerationResult]:
        from vbench_suite.runner.engines.ray_actors import request_files

        files = {p: Path(p).read_bytes() for r in requests for p in request_files(r)}
        jobs = [(r, c.key, c.out_path.name) for r, c in zip(requests, ctxs, strict=True)]
        answers = self._pool.call("generate_batch", jobs, files)
        return [self._store(result, data, ctx) for (result, data), ctx in zip(answers, ctxs, strict=True)]

    def _store(self, result: GenerationResult, data: bytes | None, ctx: GenerationContext) -> GenerationResult:
        """Write a video that came back as bytes atomically at its place in the run folder (checked against the
        sha256 the actor recorded); the result then names that file."""
        if data is None and result.status == "ok":
            return dataclasses.replace(result, status="failed", video_path=None, retriable=True,
                                       error=f"the backend reported a video it did not write ({result.video_path})")
        if data is None:
            return dataclasses.replace(result, video_path=None) if result.video_path else result
        target = ctx.out_path.with_suffix(Path(result.video_path or ctx.out_path.name).suffix or ctx.out_path.suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        sha = hashlib.sha256(data).hexdigest()
        if result.video_sha256 and sha != result.video_sha256:
            return dataclasses.replace(result, status="failed", video_path=None, retriable=True,
                                       error="the video changed on its way from the Ray actor (sha256 differs)")
        fd, tmp = make_temp(target.parent, target.name)
        try:
            with os.fdopen(fd, "wb") as f:     # like a local backend's video: renamed into place, not fsynced (a
                f.write(data)                  # resume checks size and sha256 against the record anyway)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return dataclasses.replace(result, video_path=str(target), video_sha256=sha)

    def close(self) -> None:
        self._pool.close()


# --------------------------------------------------------------------------------------------------- scoring

class RayScorer:
    """`runner.score.Scorer` over a pool of `ScoringWorker` actors, started on first use and sized to the work."""

    def __init__(self, engine: RayEngine) -> None:
        self.engine = engine
        self.resources: Any = None
        """What each scoring actor reserves (a `Resources`); None: 1 CPU, plus 1 GPU when scoring on GPUs."""
        self._pool: Any = None
        self._refs: dict[str, Any] = {}

    def start(self, units: int) -> Any:
        """Start the scoring actors (once; later calls return the same pool): one per GPU when scoring on GPUs,
        else one per CPU, at most `units` (the parts the first metric's work splits into), or `--score-actors`."""
        if self._pool is not None:
            return self._pool
        from vbench_suite.backends.base import Resources

        gpus = float(self.engine.capacity().get("GPU", 0.0))
        on_gpu = self.engine.device.startswith("cuda") or (self.engine.device == "auto" and gpus > 0)
        if on_gpu and gpus <= 0 and self.engine.strict:
            raise UserError("--device cuda: the Ray cluster has no GPU; use --device auto or cpu, or join a cluster "
                            "with GPU nodes (--ray-address)")
        count = self.engine.score_actors
        if count is None:
            count = max(1, int(gpus) if on_gpu else int(self.engine.capacity().get("CPU", 1.0)))
            count = min(count, max(1, units))
        resources = self.resources or Resources(num_cpus=1.0, num_gpus=1.0 if on_gpu else 0.0)
        explicit = ({"actors"} if self.engine.score_actors else set()) | ({"num_cpus"} if self.resources else set())
        spec = PoolSpec("scoring", resources, count, frozenset(explicit))
        plan = self.engine._plan([spec])[0]
        self._pool = self.engine.pool("scoring", self.engine.scorer_cls, (self.engine.device, plan.resources.num_gpus),
                                      plan)
        self._pool.wait_first()
        return self._pool

    def _files(self, paths: Sequence[str | None]) -> dict[str, Any]:
        """{path: object ref of its bytes}, each file put into the object store once per scoring stage."""
        ray = self.engine.ray
        for p in paths:
            if p and p not in self._refs and Path(p).is_file():
                self._refs[p] = ray.put(Path(p).read_bytes())
        return {p: self._refs[p] for p in paths if p and p in self._refs}

    def _item_files(self, items: Sequence[ScoringItem], ctx: ScoringContext) -> dict[str, Any]:
        return self._files([*(it.video_path for it in items), *(it.reference_path for it in items)])

    def score_chunks(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext,
                     size: int) -> Iterator[tuple[Sequence[ScoringItem], list[ScoreRecord]]]:
        from vbench_suite.metrics import METRICS, score_with

        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        pool = self.start(len(chunks))
        options = dict(ctx.options.get(name) or {})
        with ThreadPoolExecutor(max_workers=pool.size, thread_name_prefix="ray-score") as threads:
            futures = {threads.submit(pool.call, "score_chunk", name, METRICS[name], options, chunk,
                                      self._item_files(chunk, ctx), ctx): chunk for chunk in chunks}
            for fut in as_completed(futures):
                try:
                    records = fut.result()
                except Exception as exc:  # noqa: BLE001 - actors kept dying on it: one record says so
                    records = score_with(name, _raiser(exc), futures[fut], ctx)
                yield futures[fut], records

    def score_set(self, name: str, items: Sequence[ScoringItem], ctx: ScoringContext) -> list[ScoreRecord]:
        from vbench_suite.metrics import METRICS, metric_class, score_with
        from vbench_suite.metrics.fvd import FVD

        cls = metric_class(name)
        options = dict(ctx.options.get(name) or {})
        pool = self.start(len(items))
        try:
            if issubclass(cls, FVD):
                return self._fvd(name, cls, options, items, ctx)
            groups = cls(**options).independent_groups(items) if hasattr(cls, "independent_groups") else None
            parts = groups if groups else [list(items)]
            references = self._files(list(ctx.reference_videos))
            with ThreadPoolExecutor(max_workers=pool.size, thread_name_prefix="ray-score") as threads:
                futures = [threads.submit(pool.call, "score_set", name, METRICS[name], options, part,
                                          {**self._item_files(part, ctx), **references}, ctx) for part in parts]
                return [r for fut in futures for r in fut.result()]    # in group order, as one call gives them
        except Exception as exc:  # noqa: BLE001 - the same records as a metric failing locally
            return score_with(name, _raiser(exc), items, ctx)

    def _fvd(self, name: str, cls: type, options: dict[str, Any], items: Sequence[ScoringItem],
             ctx: ScoringContext) -> list[ScoreRecord]:
        """I3D features of slices of `batch_size` videos on any actors (an I3D batch is the batch it is locally),
        the reference set's (unless cached) at the same time, stacked in order; the records built here."""
        from vbench_suite.errors import MetricUnavailable
        from vbench_suite.metrics import METRICS
        from vbench_suite.metrics.common import unavailable
        from vbench_suite.metrics.fvd import FeatureShard, load_reference_cache, save_reference_cache

        metric = cls(**options)
        step = max(1, int(getattr(metric, "batch_size", 4)))
        cache = metric.reference_cache_file(ctx) if ctx.reference_videos else None
        cached = load_reference_cache(cache) if cache is not None else None
        ref_paths = metric.reference_paths(ctx) if cache is not None and cached is None else []
        lists = [[it.video_path for it in items], ref_paths]
        slices = [[list(paths[i:i + step]) for i in range(0, len(paths), step)] for paths in lists]
        every = [s for part in slices for s in part]
        pool = self.start(len(every))
        with ThreadPoolExecutor(max_workers=pool.size, thread_name_prefix="ray-fvd") as threads:
            futures = [threads.submit(pool.call, "fvd_features", METRICS[name], options, s, self._files(s), ctx)
                       for s in every]
            answers = iter([f.result() for f in futures])
        shards = []
        for which, part in enumerate(slices):
            got = [next(answers) for _ in part]
            bad = next((a for a in got if isinstance(a, str)), None)
            if bad is not None and which == 0:     # as `FVD.score`: no weights for the videos' features
                return [unavailable(metric.info, bad, metric.profile.id)]
            if bad is not None:                    # as `FVD.reference_features` raising inside `score_items`
                raise MetricUnavailable(bad)
            shards.append(FeatureShard.concat(got, [len(s) for s in part]))
        if cache is not None and cached is None:
            ref = shards[1]
            cached = save_reference_cache(cache, ref.features, [(ref_paths[i], r) for i, r in ref.bad],
                                          metric.profile)
        return metric.records_from_features(items, shards[0], ctx, lambda _ctx: cached)


def _raiser(exc: BaseException) -> Any:
    """A metric factory that fails with `exc` (for `score_with`, which turns it into the record a local failure
    would give); Ray's errors are cut to their first line (they carry whole remote tracebacks)."""
    if type(exc).__module__.startswith("ray."):
        exc = RuntimeError(_first_line(exc))

    def make() -> Any:
        raise exc
    return make


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]

