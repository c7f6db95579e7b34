"""Running a generation command: an argv list, no shell, its own process group, a deadline, no secrets.

- The command starts in a new session (its own process group), so a timeout or an interrupted harness ends the
  command *and everything it started* (torchrun's workers, a data-loader pool): SIGTERM to the group, then SIGKILL
  after `KILL_GRACE_S`. When the command exits, whatever it left running in its group is killed too, so no stray
  process writes after its result was taken.
- Its environment is this process's minus every variable whose name looks like a credential (`SECRET_NAME`),
  except those the user lists; secrets never go into argv (the harness builds argv from a template and a request,
  neither of which holds them).
- On Linux the command is also asked to receive SIGKILL when the harness dies (`PR_SET_PDEATHSIG`), so a harness
  killed with SIGKILL (no chance to end the group) does not leave a model running and writing beside the resumed
  run. That covers the command itself; processes it starts in turn should exit when it does (torchrun's do).
- stdout and stderr go to files (no pipe can fill up and stall the command); the end of stderr is kept for the
  error message, bounded, with the value of every credential-like variable replaced by `***`.
- CPU time is the command's own and that of the descendants it waited for (`os.wait4`), so other work of this
  process is not charged to it.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vbench_suite.errors import one_line

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)
"""Environment variable names treated as credentials: not passed to a command unless listed, and redacted."""
MIN_SECRET_CHARS = 4
"""Shorter values are not redacted (replacing every '1' in a log would help no one)."""
KILL_GRACE_S = 5.0
"""Seconds between SIGTERM and SIGKILL when a command's process group is ended."""
TAIL_BYTES = 8192
"""How much of the end of stderr (or stdout) is read for an error message."""
TAIL_CHARS = 600
"""How many characters of that end go into the message."""
GROUP_EXIT_WAIT_S = 2.0
"""Longest wait for the processes of a SIGKILLed group to be gone."""
_POLL_S = (0.01, 0.25)
"""First and longest interval between checks on a running command."""


def is_secret_name(name: str) -> bool:
    return SECRET_NAME.search(name) is not None


def child_env(pass_env: Iterable[str] = (), extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without credential-like variables, except those named in `pass_env`
    (passed through the environment only, never on the command line), plus `extra`."""
    allowed = set(pass_env)
    env = {k: v for k, v in os.environ.items() if k in allowed or not is_secret_name(k)}
    env.update(extra or {})
    return env


def secrets_in(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of credential-like environment variables whose value appears in `text` (never the values)."""
    environ = os.environ if environ is None else environ
    return sorted(name for name, value in environ.items()
                  if is_secret_name(name) and len(value) >= MIN_SECRET_CHARS and value in text)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with the value of every credential-like environment variable replaced by '***'."""
    environ = os.environ if environ is None else environ
    for name, value in environ.items():
        if is_secret_name(name) and len(value) >= MIN_SECRET_CHARS and value in text:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class ProcessOutcome:
    """How a command ended."""

    returncode: int | None
    """Exit status (negative: killed by that signal); None when it was killed at the deadline."""
    timed_out: bool
    wall_s: float
    """Seconds from start to exit (or to the kill)."""
    cpu_s: float
    """User + system CPU seconds of the command and the descendants it waited for."""
    peak_rss_mb: float
    """Largest resident set of the command or one of those descendants, in MiB (0 when it was killed)."""
    stderr_tail: str
    """End of stderr (of stdout when stderr is empty), redacted, one line, at most `TAIL_CHARS` characters."""


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL me when the thread that started me exits (Linux).
    Only a direct system call through an already-loaded function: nothing here may take a lock."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _load_prctl():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PR_SET_PDEATHSIG = 1
_PRCTL = _load_prctl()


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float,
                log_dir: Path) -> ProcessOutcome:
    """Run `argv` in `cwd` until it exits or `timeout_s` passes; its output goes to files in `log_dir`.

    Raises OSError when the program cannot be started (not found, not executable)."""
    out_path, err_path = log_dir / ".vbench-stdout.log", log_dir / ".vbench-stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True,
                                preexec_fn=_die_with_parent if _PRCTL is not None else None)
    try:
        status, cpu_s, rss = _wait(proc, start + timeout_s)
    except BaseException:
        _end_group(proc)  # interrupted harness: take the command down with it
        raise
    wall = time.perf_counter() - start
    timed_out = status is None
    if timed_out:
        status, cpu_s, rss = _end_group(proc)
        returncode = None
    else:
        _kill_group(proc.pid, signal.SIGKILL)  # stragglers it left in its group
        returncode = status
    tail = _tail(err_path) or _tail(out_path)
    return ProcessOutcome(returncode, timed_out, wall, cpu_s, rss, tail)


def _wait(proc: subprocess.Popen, deadline: float) -> tuple[int | None, float, float]:
    """(exit status, CPU seconds, peak RSS in MiB) once `proc` exits, or (None, 0, 0) at `deadline`."""
    pause = _POLL_S[0]
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it has been reaped
            return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
        now = time.perf_counter()
        if now >= deadline:
            return None, 0.0, 0.0
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, _POLL_S[1])


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return  # the group is gone already
    if sig == signal.SIGKILL:
        _wait_group_gone(pgid)


def _live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that still run (zombies waiting for their reaper do not); [] without /proc."""
    members = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout_s: float = GROUP_EXIT_WAIT_S) -> None:
    """Give a SIGKILLed group a moment to die, so that nothing of it writes after the result is taken."""
    deadline = time.perf_counter() + timeout_s
    while _live_members(pgid) and time.perf_counter() < deadline:
        time.sleep(0.01)


def _end_group(proc: subprocess.Popen) -> tuple[int | None, float, float]:
    """SIGTERM the command's process group, SIGKILL it after `KILL_GRACE_S`; reap the command. Returns what
    `_wait` returns."""
    if proc.returncode is not None:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.returncode, 0.0, 0.0
    _kill_group(proc.pid, signal.SIGTERM)
    status, cpu_s, rss = _wait(proc, time.perf_counter() + KILL_GRACE_S)
    _kill_group(proc.pid, signal.SIGKILL)
    if status is None:
        _pid, raw, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(raw)
        status, cpu_s, rss = proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0
    return status, cpu_s, rss


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]  # cut mid-line: drop it, so no half of a secret escapes redaction
    text = " | ".join(line.strip() for line in lines if line.strip())
    text = redact(text)
    return one_line(text[-TAIL_CHARS:] if len(text) > TAIL_CHARS else text, TAIL_CHARS + 10)
