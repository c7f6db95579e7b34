"""Backend registry: name -> 'module:Class', imported only when used (so `--help` never imports torch)."""
from __future__ import annotations

import importlib
from typing import Any

from vbench_suite.backends.base import Backend, GenerationContext
from vbench_suite.errors import UnknownNameError

__all__ = ["Backend", "GenerationContext", "BACKENDS", "create_backend", "backend_class", "available_backends"]

BACKENDS: dict[str, str] = {
    "reference-shapes": "vbench_suite.backends.reference_shapes:ReferenceShapesBackend",
}


def available_backends() -> list[str]:
    return sorted(BACKENDS)


def backend_class(name: str) -> type[Backend]:
    """Import and return the class registered under `name`; unknown names raise `UnknownNameError`."""
    if name not in BACKENDS:
        raise UnknownNameError("backend", name, BACKENDS)
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_backend(name: str, **options: Any) -> Backend:
    """Instantiate a backend by registered name with backend-specific options."""
    return backend_class(name)(**options)
