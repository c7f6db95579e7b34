"""Backends that make each video by running a command on this machine: the generic `command` backend (any script,
through a template) and the shared machinery (`script.ScriptBackend`) that the `opensora` backend builds on."""
from __future__ import annotations

from vbench_suite.backends.command.backend import CommandBackend
from vbench_suite.backends.command.script import Invocation, RequestError, ScriptBackend

__all__ = ["CommandBackend", "Invocation", "RequestError", "ScriptBackend"]
