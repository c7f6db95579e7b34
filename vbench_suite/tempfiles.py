"""The one naming rule for temporary files the harness writes beside their final name (then renames into place).

Every such file is hidden and starts with `TEMP_PREFIX`, so a resumed run can find and remove what a killed process
left behind (`remove_temp_files`) without touching anything else. Names written by earlier releases, before this
rule, are recognised too (`LEGACY_PATTERNS`).
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import tempfile
from pathlib import Path

TEMP_PREFIX = ".vbench-tmp-"
"""Start of every temporary file name the harness creates in a run folder (videos, downloads, copies, run.json)."""
LEGACY_PATTERNS = (".download-*.partial", ".*.copy", ".run.json.*")
"""Temporary names of earlier releases: downloads, copies of reused videos, run.json rewrites."""
LEGACY_VIDEO_TEMP = re.compile(r"^\.[0-9a-f]{24}\.[A-Za-z0-9_]+\.[a-z0-9]+$")
"""Earlier releases' video temp name: "." + the video's file stem (24 hex digits of its key) + random + suffix."""


def make_temp(dest_dir: Path, label: str, suffix: str = "") -> tuple[int, Path]:
    """Create an empty temporary file in `dest_dir` (same file system as the final name, so `os.replace` is atomic).

    Returns (open descriptor, path); the name is `TEMP_PREFIX + label + "." + random + suffix`. The caller closes
    the descriptor and renames or removes the file.
    """
    fd, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{label}.", suffix=suffix, dir=dest_dir)
    return fd, Path(name)


def make_temp_dir(dest_dir: Path, label: str) -> Path:
    """Create an empty temporary folder in `dest_dir`, named `TEMP_PREFIX + label + "." + random`, for a tool that
    writes several files of its own (a generation script run as a subprocess). Renaming a file out of it into
    `dest_dir` is atomic; `remove_temp_files` removes the folder with everything in it."""
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{label}.", dir=dest_dir))


def is_temp_name(name: str, *, in_videos: bool = False) -> bool:
    """Whether a file name is one of the harness's temporary names (current or legacy). `in_videos`: the file lies
    in a run folder's videos/ tree, where earlier releases' video temp names (`LEGACY_VIDEO_TEMP`) count too."""
    return (name.startswith(TEMP_PREFIX) or any(fnmatch.fnmatchcase(name, p) for p in LEGACY_PATTERNS)
            or (in_videos and LEGACY_VIDEO_TEMP.match(name) is not None))


def remove_temp_files(root: Path, *, in_videos: bool = False) -> list[Path]:
    """Delete the harness's temporary files under `root` (recursively), and temporary folders (`make_temp_dir`)
    whole; returns what was removed.

    Only call this while owning `root` (the run-folder lock): another process's file in flight would go too.
    `in_videos`: `root` is a run folder's videos/ tree (see `is_temp_name`).
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for dirpath, dirs, files in os.walk(root):
        for name in [d for d in dirs if d.startswith(TEMP_PREFIX)]:
            dirs.remove(name)  # removed whole below, not walked into
            path = Path(dirpath) / name
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        for name in files:
            path = Path(dirpath) / name
            if is_temp_name(name, in_videos=in_videos):
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path)
    return removed
