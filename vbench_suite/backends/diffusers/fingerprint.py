"""The identity of a diffusers model on disk: a content digest of its files, cheap after the first time.

Every file of the pipeline folder counts (configs, tokenizer files, weights), except documentation and media
(`SKIPPED_SUFFIXES`) and hidden paths (e.g. the `.cache/` that `huggingface-cli download --local-dir` writes).
A file's digest is:
- in the Hugging Face cache, the name of the blob its snapshot link points to: the hub names a large (LFS) file's
  blob by its sha256 and a small file's by its git hash, so a cached repo costs no reading at all;
- elsewhere (a `save_pretrained` folder), the sha256 of its bytes, kept in a small table under the user cache
  directory keyed by (real path, size, mtime, inode), so weights are read once and then only `stat`ed.
Weights are hashed in full, not sampled: a safetensors file without an index changes nowhere else when its values
change, and a fingerprint that misses changed weights would let cached videos of the old model be reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from vbench_suite.keys import file_sha256

SKIPPED_SUFFIXES = frozenset({".md", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4", ".lock"})
"""Files that cannot change what the pipeline generates."""
HUB_BLOB = re.compile(r"[0-9a-f]{64}|[0-9a-f]{40}")
"""A blob name in the Hugging Face cache: sha256 (LFS files) or git blob sha1 (small files)."""
SMALL_FILE_BYTES = 1 << 20
"""Files up to this size are simply read (cheaper than keeping them in the table)."""
HASH_TABLE = "diffusers-file-sha256.json"
"""Name of the (path, size, mtime, inode) -> sha256 table in the user cache directory."""


def model_files(folder: Path) -> list[Path]:
    """Files under `folder` that make up the model, as sorted paths relative to it."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(root) / name
            if not name.startswith(".") and path.suffix.lower() not in SKIPPED_SUFFIXES:
                out.append(path.relative_to(folder))
    return sorted(out)


def _hub_blob(path: Path) -> str | None:
    """The blob name a Hugging Face cache snapshot link points to, or None for a plain file."""
    if not path.is_symlink():
        return None
    target = Path(os.readlink(path))
    return target.name if HUB_BLOB.fullmatch(target.name) and target.parent.name == "blobs" else None


class _HashTable:
    """sha256 of large files by (real path, size, mtime_ns, inode), persisted as JSON in the user cache dir."""

    def __init__(self) -> None:
        from vbench_suite.paths import cache_dir

        self.path = cache_dir() / HASH_TABLE
        try:
            self.table: dict[str, str] = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.table = {}
        self.changed = False

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}"
        if key not in self.table:
            self.table[key] = file_sha256(path)
            self.changed = True
        return self.table[key]

    def save(self) -> None:
        if not self.changed:
            return
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.table, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


def model_digest(folder: Path) -> str:
    """sha256 (hex) over (relative path, file digest) of every file `model_files` lists."""
    table: _HashTable | None = None
    h = hashlib.sha256()
    for rel in model_files(folder):
        path = folder / rel
        digest = _hub_blob(path)
        if digest is None:
            if path.stat().st_size <= SMALL_FILE_BYTES:
                digest = file_sha256(path)
            else:
                table = table or _HashTable()
                digest = table.sha256(path)
        h.update(f"{rel.as_posix()}\x1f{digest}\n".encode())
    if table is not None:
        table.save()
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose code computes the video (read from package metadata, no import)."""
    import importlib.metadata

    out = {}
    for dist in ("diffusers", "torch", "transformers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out
