"""Paid video APIs behind one template (`base.RemoteBackend`): Runway, fal (Pika and any fal model),
Synthesia, HeyGen, Veo. Importing this package imports httpx but no vendor SDK."""
from __future__ import annotations

from vbench_suite.backends.remote.base import HttpCall, JobStatus, RemoteBackend, TERMINAL_PHASES

__all__ = ["HttpCall", "JobStatus", "RemoteBackend", "TERMINAL_PHASES"]
