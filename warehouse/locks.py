"""Advisory locks under `$IBW_HOME/locks/`: one writer per series across processes.

`flock` locks belong to the open file, so the kernel frees them when their process dies, even by
`kill -9`; a stale lock file is harmless.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def try_lock(home: Path, name: str) -> Iterator[bool]:
    """Hold the lock called `name` if nobody else does; yields whether it is held."""
    folder = home / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(name.encode()).hexdigest()[:20] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock
