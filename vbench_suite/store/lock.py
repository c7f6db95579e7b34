"""One process at a time per run folder: an OS-level lock (`flock`) on a file inside the folder.

The operating system drops the lock when its holder exits for any reason (SIGKILL included), so a killed run
never leaves the folder stuck. The holder writes its PID into the lock file so a refused process can name it.
Within one process the lock is re-entrant for the thread that holds it (the CLI holds it for the whole command
and `run_benchmark` takes it again); any other thread or process is refused at once, never made to wait.
"""
from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vbench_suite.errors import UserError

LOCK_FILE = ".vbench.lock"
"""Name of the lock file inside a run folder (never deleted while the folder holds anything else)."""


class RunFolderBusy(UserError):
    """Another process (or thread) is working in the run folder."""


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int


_held: dict[Path, _Held] = {}
_registry_lock = threading.Lock()


def _holder_pid(lock_path: Path) -> str:
    try:
        text = lock_path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


def _busy(folder: Path, pid: str) -> RunFolderBusy:
    who = f"process {pid}" if pid else "another process"
    return RunFolderBusy(f"run folder {folder} is in use by {who} (another `vbench-suite run` into it); wait for it "
                         "to finish, or give a different --out folder")


def _open_locked(folder: Path) -> int:
    """Open the lock file and take the lock without waiting; raises RunFolderBusy. Retries when the file was
    replaced between open and lock (then the lock taken is on a file nobody else will open)."""
    lock_path = folder / LOCK_FILE
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(folder, _holder_pid(lock_path)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


@contextmanager
def hold_run_folder(path: str | Path) -> Iterator[None]:
    """Own the run folder `path` (created if missing) for the duration of the block.

    Raises RunFolderBusy (a UserError: one line, exit 2) naming the holder's PID when another process or thread
    owns it. A folder this call created and that holds nothing but the lock file afterwards (the command failed
    before writing anything) is removed again.
    """
    folder = Path(path)
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            raise UserError(f"run folder {folder}: {p} is a file, not a folder; give a new folder path (or an "
                            "earlier run folder to resume it)")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"run folder {folder} cannot be created ({exc.strerror}); give a writable folder path")
    real = folder.resolve()
    me = threading.get_ident()
    with _registry_lock:
        held = _held.get(real)
        if held is not None:
            if held.thread != me:
                raise _busy(folder, str(os.getpid()))
            held.depth += 1
        else:
            _held[real] = _Held(_open_locked(folder), me, 1)
    try:
        yield
    finally:
        with _registry_lock:
            held = _held[real]
            held.depth -= 1
            if held.depth == 0:
                del _held[real]
                _release(folder, held.fd, remove_folder=created)


def _release(folder: Path, fd: int, *, remove_folder: bool) -> None:
    try:
        os.ftruncate(fd, 0)
        if remove_folder and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            # Safe while still locked: a process that opened the old file re-checks the inode after locking.
            (folder / LOCK_FILE).unlink()
            folder.rmdir()
    except OSError:
        pass  # leaving an empty folder or lock file behind is harmless
    finally:
        os.close(fd)  # releases the flock
