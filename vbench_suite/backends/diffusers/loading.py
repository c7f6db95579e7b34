"""Finding a diffusers model on this machine, and loading it, without ever downloading.

A model is either a local folder written by `save_pretrained` (it holds `model_index.json`) or a Hugging Face repo
id looked up in the local Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`) at the requested revision. Nothing
here contacts the hub: a model that is not on disk is a `ModelNotFound` error saying how to fetch it. Resolving and
reading configs imports only `huggingface_hub` (for a repo id); `load_pipeline` is the one place torch and diffusers
are imported.
"""
from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vbench_suite.backends.diffusers.families import ModelConfigs
from vbench_suite.errors import BackendNotConfigured

MODEL_INDEX = "model_index.json"
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""What a Hugging Face model id looks like ('org/name'); anything else is taken as a folder path."""
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
"""Option value -> torch dtype name."""


class ModelNotFound(BackendNotConfigured):
    """The model is neither a usable local folder nor in the local Hugging Face cache (one line: what, how to fix)."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are. `repo_id` / `commit` are set when it came from the Hugging Face cache."""

    folder: Path
    """Folder holding model_index.json and one sub-folder per component."""
    spec: str
    """What the user gave (`--option diffusers.model=...`)."""
    repo_id: str | None = None
    revision: str | None = None
    """Revision asked for (branch, tag or commit; None means 'main')."""
    commit: str | None = None
    """Commit hash of the cached snapshot (the snapshot folder's name)."""

    @property
    def name(self) -> str:
        """Model id for records: the repo id, else the folder's name."""
        return self.repo_id or self.folder.name


def missing_model_message(repo_id: str, revision: str | None) -> str:
    """The one line a missing hub model gets: the repo id, the command that fetches it, and how to point at a copy.
    Short enough (about 350 characters) that the CLI's one-line limit never cuts it, whatever the cache path."""
    from huggingface_hub import constants

    rev = f" --revision {revision}" if revision else ""
    # huggingface_hub 1.0 replaced the `huggingface-cli` command with `hf`: name the one installed here
    if _hub_major() >= 1:
        fetch = f"`hf download {repo_id}{rev}` (`huggingface-cli download` before huggingface_hub 1.0)"
    else:
        fetch = f"`huggingface-cli download {repo_id}{rev}`"
    cache = str(constants.HF_HUB_CACHE)
    cache = cache if len(cache) <= 60 else "…" + cache[-59:]
    offline = " where the hub is reachable (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    return (f"diffusers model '{repo_id}'{f' at revision {revision}' if revision else ''} is not in the Hugging Face "
            f"cache {cache} and nothing downloads during a run: fetch it with {fetch}{offline}, or point "
            "--option diffusers.model=DIR (or HF_HUB_CACHE) at a local copy")


def _hub_major() -> int:
    import importlib.metadata

    try:
        return int(importlib.metadata.version("huggingface_hub").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return 0


def resolve_model(spec: str, revision: str | None = None) -> ModelSource:
    """A `ModelSource` for a folder path or a cached repo id; `ModelNotFound` (exit 2) when neither is on disk."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / MODEL_INDEX).is_file():
            raise ModelNotFound(f"diffusers model folder {path} has no {MODEL_INDEX}: give a folder written by "
                                "`pipeline.save_pretrained(FOLDER)`, or a Hugging Face repo id such as "
                                "Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
        return ModelSource(folder=path.resolve(), spec=spec)
    if not REPO_ID.fullmatch(spec) or spec.startswith((".", "/", "~")):
        raise ModelNotFound(f"diffusers model folder {path} does not exist: give a folder written by "
                            "`pipeline.save_pretrained(FOLDER)`, or a Hugging Face repo id (org/name) that is in the "
                            "local Hugging Face cache")
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec, MODEL_INDEX, revision=revision)
    if not isinstance(found, str):  # None (never cached) or the marker of a file known to be absent
        raise ModelNotFound(missing_model_message(spec, revision))
    folder = Path(found).parent
    return ModelSource(folder=folder, spec=spec, repo_id=spec, revision=revision, commit=folder.name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot read {path}: {exc}; the model folder is damaged (fetch or save it again)"
                            ) from None
    if not isinstance(data, dict):
        raise ModelNotFound(f"{path} is not a JSON object; the model folder is damaged (fetch or save it again)")
    return data


def read_configs(folder: Path) -> ModelConfigs:
    """model_index.json and the denoiser's and VAE's config.json (empty where a component is absent)."""
    index = _read_json(folder / MODEL_INDEX)
    if not index.get("_class_name"):
        raise ModelNotFound(f"{folder / MODEL_INDEX} names no pipeline class (_class_name); save the pipeline with "
                            "`save_pretrained` again")
    denoiser = next((n for n in ("transformer", "unet", "transformer_2") if isinstance(index.get(n), list)
                     and index[n][0] is not None), "transformer")
    return ModelConfigs(model_index=index, transformer=_read_json(folder / denoiser / "config.json"),
                        vae=_read_json(folder / "vae" / "config.json"))


_quiet_lock = threading.Lock()
_quiet_users = 0
_quiet_saved: list[tuple[Any, int, bool]] = []


def quiet_acquire() -> None:
    """From the first holder on, diffusers and transformers print no progress bars and log only errors (a library
    never prints; their warnings about a model's own layout are not the user's to act on). Counted: the settings
    are put back as they were when the last holder calls `quiet_release` (changing a logging level clears every
    logger's cache, too slow to do around each generation)."""
    global _quiet_users
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    with _quiet_lock:
        if _quiet_users == 0:
            _quiet_saved[:] = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in (dlog, tlog)]
            for lib, _, _ in _quiet_saved:
                lib.disable_progress_bar()
                lib.set_verbosity_error()
        _quiet_users += 1


def quiet_release() -> None:
    """Undo one `quiet_acquire`; the last one restores the libraries' settings."""
    global _quiet_users
    with _quiet_lock:
        if _quiet_users == 0:
            return
        _quiet_users -= 1
        if _quiet_users == 0:
            for lib, verbosity, bars in _quiet_saved:
                lib.set_verbosity(verbosity)
                if bars:
                    lib.enable_progress_bar()


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """`quiet_acquire` for the duration of a block."""
    quiet_acquire()
    try:
        yield
    finally:
        quiet_release()


def _dtype_keyword() -> str:
    """'dtype' where the installed diffusers takes it, else the older 'torch_dtype' (deprecated where 'dtype' exists)."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return "torch_dtype"
    return "dtype"


def load_pipeline(source: ModelSource, dtype: str, device: str, cpu_offload: bool, vae_tiling: bool) -> Any:
    """Load the saved pipeline from `source.folder` only (`local_files_only`), in `dtype` (a `DTYPES` key), placed on
    `device` (or with model CPU offload onto it), VAE tiling on when asked. Failures raise `ModelNotFound`."""
    import torch
    from diffusers import DiffusionPipeline

    try:
        with quiet_libraries():
            pipe = DiffusionPipeline.from_pretrained(str(source.folder), local_files_only=True,
                                                     **{_dtype_keyword(): getattr(torch, DTYPES[dtype])})
        return place(pipe, device, cpu_offload, vae_tiling)
    except ModelNotFound:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a library raises while loading is reported as one line
        hint = ("; the GPU is too small for it at this dtype: try --option diffusers.cpu_offload=true"
                if "out of memory" in str(exc).lower() and not cpu_offload else "")
        raise ModelNotFound(f"cannot load diffusers model {source.spec} from {source.folder}: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{hint}") from None


def place(pipe: Any, device: str, cpu_offload: bool, vae_tiling: bool) -> Any:
    """Put a pipeline on its device (or offload it onto that device), progress bar off, VAE tiling as asked."""
    pipe.set_progress_bar_config(disable=True)
    if vae_tiling:
        vae = getattr(pipe, "vae", None)
        if vae is None or not hasattr(vae, "enable_tiling"):
            raise ModelNotFound(f"vae_tiling=true, but {type(pipe).__name__}'s VAE has no tiling; drop the option")
        vae.enable_tiling()
    if cpu_offload:
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    return pipe


def derive_pipeline(pipe: Any, class_name: str, dtype: str, device: str, cpu_offload: bool) -> Any:
    """A pipeline of class `class_name` sharing `pipe`'s loaded components (no second copy of the weights)."""
    import diffusers
    import torch

    if type(pipe).__name__ == class_name:
        return pipe
    cls = getattr(diffusers, class_name)
    # from_pipe casts the shared modules to its dtype (float32 when none is given): pass the loaded one.
    with quiet_libraries():
        derived = cls.from_pipe(pipe, **{_dtype_keyword(): getattr(torch, DTYPES[dtype])})
    derived.set_progress_bar_config(disable=True)
    if cpu_offload:
        derived.enable_model_cpu_offload(device=device)
    return derived
