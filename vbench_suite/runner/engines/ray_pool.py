"""A pool of identical Ray actors, each serving one call at a time, pulled by the driver's threads as they free up.

Faults: a call whose actor dies (its process killed, its node lost) is retried on another actor, up to `attempts`
times; its result reaches the caller once, so the driver writes one record for it. Ray restarts a dead actor
(`max_restarts`) wherever the cluster has room; it rejoins the pool once it answers `ready` again (its model loaded
anew). An actor that cannot come back (restarts used up) leaves the pool, and the other actors take its share.
A caller waits while some actor is busy (a long generation is not a fault); when every actor is dead or
restarting and none comes back within `wait_s`, the call fails (the item is recorded as a retriable failure, which
a rerun of the command retries).
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, ObjectLostError, RayActorError

log = logging.getLogger(__name__)

ACTOR_LOST = (RayActorError, ObjectLostError)
"""What a call raises when its actor died or the node holding its answer was lost (not the call's own error)."""
DEFAULT_ATTEMPTS = 3
"""Actors one call may be tried on before it is given up (one that kills every actor is a poison item)."""
DEFAULT_RESTARTS = 2
"""Times Ray restarts each actor after it dies."""
DEFAULT_WAIT_S = 600.0
"""How long a call waits for an actor when none is alive or busy, only starting or restarting."""
RETRY_READY_S = 0.5
"""Pause before asking a restarting actor again whether it is ready."""
CLEANUP_WAIT_S = 5.0
"""How long `close` waits for idle actors to remove their scratch folders before stopping them."""


class NoActorAvailable(RuntimeError):
    """Every actor of the pool is dead, or none came back within the wait."""


class ActorsKeptDying(RuntimeError):
    """The call's actor died on each of its attempts."""


class ActorPool:
    """`count` actors of `actor_class` (a `ray.remote` class) created with `options`; see the module docstring.

    `accept(info) -> str | None` vets each actor's `ready()` answer (a reason rejects and kills it).
    """

    def __init__(self, label: str, actor_class: Any, args: tuple[Any, ...], options: dict[str, Any], count: int, *,
                 accept: Callable[[dict[str, Any]], str | None] | None = None, attempts: int = DEFAULT_ATTEMPTS,
                 restarts: int = DEFAULT_RESTARTS, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.label, self.size, self.attempts, self.wait_s = label, count, attempts, wait_s
        self._accept = accept
        self._cond = threading.Condition()
        self._idle: list[Any] = []
        self._busy = 0
        self._pending = 0
        self._closed = False
        self.infos: list[dict[str, Any]] = []
        """`ready()` answers of the actors accepted so far (in the order they became ready)."""
        self.errors: list[str] = []
        """Why actors left the pool (failed to start, rejected, restarts used up)."""
        self.started_at = time.perf_counter()
        self.first_ready_s: float | None = None
        """Seconds from creation to the first actor's `ready` answer (start-up and model loading)."""
        opts = {"max_restarts": restarts, "max_task_retries": 0, **options}
        self._actors = [actor_class.options(**opts).remote(*args) for _ in range(count)]
        for actor in self._actors:
            self._watch(actor)

    # ---- lifecycle -------------------------------------------------------------------------------------------
    def _watch(self, actor: Any) -> None:
        """Wait (in a thread) for `actor` to answer `ready`, then make it available; or record why it left."""
        with self._cond:
            self._pending += 1
        threading.Thread(target=self._await_ready, args=(actor,), daemon=True,
                         name=f"ray-ready-{self.label}").start()

    def _await_ready(self, actor: Any) -> None:
        reason: str | None = None
        info: dict[str, Any] = {}
        while True:
            try:
                info = ray.get(actor.ready.remote())
                reason = self._accept(info) if self._accept else None
            except ActorUnavailableError:      # restarting: ask again once Ray has it back
                if self._closed:
                    return
                time.sleep(RETRY_READY_S)
                continue
            except Exception as exc:  # noqa: BLE001 - start-up failure, restarts used up, or the pool closed
                reason = _short(exc)
            break
        with self._cond:
            self._pending -= 1
            if self._closed:
                pass
            elif reason is None:
                if self.first_ready_s is None:
                    self.first_ready_s = time.perf_counter() - self.started_at
                    log.info("%s: first actor ready after %.1f s", self.label, self.first_ready_s)
                self.infos.append(info)
                self._idle.append(actor)
            else:
                self.errors.append(reason)
            self._cond.notify_all()
        if reason is not None and not self._closed:
            log.warning("%s: an actor left the pool: %s", self.label, reason)
            ray.kill(actor, no_restart=True)

    def wait_first(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The first accepted actor's `ready()` answer, waiting for it; raises `NoActorAvailable` with the reasons
        when every actor failed, or none answered within `timeout_s` (default `wait_s`)."""
        deadline = time.monotonic() + (self.wait_s if timeout_s is None else timeout_s)
        with self._cond:
            while not self.infos:
                if self._pending == 0:
                    raise NoActorAvailable(f"{self.label}: no actor could start: {'; '.join(self.errors[:3])}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NoActorAvailable(f"{self.label}: no actor started within {self.wait_s:.0f} s (does any "
                                           f"node have the resources it reserves? `ray status` shows them)")
                self._cond.wait(min(left, 1.0))
            return self.infos[0]

    def close(self) -> None:
        """Stop every actor (their reservations are released at once), letting live ones remove their scratch
        files first (briefly: a lost one cannot answer)."""
        with self._cond:
            self._closed = True
            idle = list(self._idle)
            self._cond.notify_all()
        if idle:
            ray.wait([actor.release.remote() for actor in idle], num_returns=len(idle), timeout=CLEANUP_WAIT_S)
        for actor in self._actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass

    # ---- calls -----------------------------------------------------------------------------------------------
    def _acquire(self) -> Any:
        stalled_since: float | None = None
        with self._cond:
            while not self._idle:
                if self._closed:
                    raise NoActorAvailable(f"{self.label}: the pool is closed")
                if self._busy == 0 and self._pending == 0:
                    raise NoActorAvailable(f"{self.label}: every actor has left the pool "
                                           f"({'; '.join(self.errors[-3:]) or 'no reason recorded'})")
                if self._busy == 0:     # only starting / restarting actors: do not wait forever for a lost node
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > self.wait_s:
                        raise NoActorAvailable(f"{self.label}: no actor came back within {self.wait_s:.0f} s")
                else:
                    stalled_since = None
                self._cond.wait(1.0)
            self._busy += 1
            return self._idle.pop(0)

    def _release(self, actor: Any, *, lost: bool) -> None:
        with self._cond:
            self._busy -= 1
            if not lost and not self._closed:
                self._idle.append(actor)
            self._cond.notify_all()
        if lost and not self._closed:
            self._watch(actor)      # back in the pool once Ray has restarted it, or recorded as gone

    def call(self, method: str, *args: Any) -> Any:
        """`actor.method(*args)` on the next free actor; on actor loss, again on another (see module docstring).
        An exception raised by the method itself (`ray.exceptions.RayTaskError`) is the caller's, not retried."""
        last: BaseException | None = None
        for attempt in range(1, self.attempts + 1):
            actor = self._acquire()
            try:
                out = ray.get(getattr(actor, method).remote(*args))
            except ACTOR_LOST as exc:
                last = exc
                self._release(actor, lost=True)
                log.warning("%s: actor lost during %s (attempt %d of %d): %s; retrying on another", self.label,
                            method, attempt, self.attempts, _short(exc))
                continue
            except BaseException:
                self._release(actor, lost=False)
                raise
            self._release(actor, lost=False)
            return out
        raise ActorsKeptDying(f"{self.label}: the actor died on each of {self.attempts} attempts at this item (last: "
                              f"{_short(last)}); a rerun of the same command tries it again")


def _short(exc: BaseException | None) -> str:
    """One line saying what went wrong. Ray's errors carry whole remote tracebacks: an actor whose constructor
    raised is named by the exception at the traceback's end (e.g. a package missing on its node)."""
    text = _ANSI.sub("", str(exc)).strip().splitlines()
    if text and "error raised in its creation task" in text[0]:
        cause = next((line for line in reversed(text) if _EXCEPTION_LINE.match(line)), "")
        return f"its constructor raised {cause}"[:300] if cause else text[0][:300]
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")
