"""Stand-in for `torchrun --nproc_per_node N --standalone SCRIPT ARGS...`: starts N copies of SCRIPT with this
interpreter, each with RANK / LOCAL_RANK / WORLD_SIZE set as torchrun sets them, waits for all, and exits with the
first non-zero status. Used by the `opensora` backend's tests as `opensora.torchrun="PYTHON .../torchrun.py"`."""
from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    nproc = 1
    while argv and argv[0].startswith("--"):
        flag = argv.pop(0)
        if flag == "--nproc_per_node":
            nproc = int(argv.pop(0))
        elif flag.startswith("--nproc_per_node="):
            nproc = int(flag.split("=", 1)[1])
    script, args = argv[0], argv[1:]
    workers = [subprocess.Popen([sys.executable, script, *args],
                                env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(nproc)})
               for r in range(nproc)]
    codes = [w.wait() for w in workers]
    return next((c for c in codes if c), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
