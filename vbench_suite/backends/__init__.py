"""Backend registry: name -> 'module:Class', imported only when used (so `--help` never imports torch)."""
from __future__ import annotations

import importlib
import importlib.metadata
import os
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.errors import ConfigError, UnknownNameError

__all__ = ["Backend", "GenerationContext", "BACKENDS", "create_backend", "backend_class", "available_backends"]

BACKENDS: dict[str, str] = {
    "reference-shapes": "vbench_suite.backends.reference_shapes:ReferenceShapesBackend",
    "dit-local": "vbench_suite.backends.dit_local:DiTLocalBackend",
    "runway": "vbench_suite.backends.remote.runway:RunwayBackend",
    "pika": "vbench_suite.backends.remote.fal:PikaBackend",
    "fal": "vbench_suite.backends.remote.fal:FalQueueBackend",
    "synthesia": "vbench_suite.backends.remote.synthesia:SynthesiaBackend",
    "heygen": "vbench_suite.backends.remote.heygen:HeyGenBackend",
    "veo": "vbench_suite.backends.remote.veo:VeoBackend",
    "diffusers": "vbench_suite.backends.diffusers.backend:DiffusersBackend",
    "command": "vbench_suite.backends.command:CommandBackend",
    "opensora": "vbench_suite.backends.opensora:OpenSoraBackend",
}


PLUGIN_ENV = "VBENCH_EXTRA_BACKENDS"
"""Extra backends without packaging: 'name=module:Class,other=module:Class' (the module must be importable)."""
ENTRY_POINT_GROUP = "vbench_suite.backends"
"""Packaged plugins register backends under this entry-point group."""


def _registry() -> dict[str, str]:
    registry = dict(BACKENDS)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        registry.setdefault(ep.name, ep.value)
    for entry in filter(None, (e.strip() for e in os.environ.get(PLUGIN_ENV, "").split(","))):
        name, sep, target = entry.partition("=")
        if not sep or ":" not in target:
            raise ConfigError(f"{PLUGIN_ENV} entry {entry!r} is not NAME=module:Class")
        registry[name.strip()] = target.strip()
    return registry


def available_backends() -> list[str]:
    return sorted(_registry())


def backend_class(name: str) -> type[Backend]:
    """Import and return the class registered under `name`; unknown names raise `UnknownNameError`."""
    registry = _registry()
    if name not in registry:
        raise UnknownNameError("backend", name, registry)
    module_name, class_name = registry[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate a backend by registered name with backend-specific options."""
    return backend_class(name)(**options)
