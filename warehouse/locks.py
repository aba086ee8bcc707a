"""Advisory locks under `$IBW_HOME/locks/` (or at a file of the caller's): one holder at a time.

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
    with try_lock_file(
        home / "locks" / (hashlib.sha1(name.encode()).hexdigest()[:20] + ".lock")
    ) as held:
        yield held


@contextmanager
def try_lock_file(path: Path) -> Iterator[bool]:
    """Hold the lock on the file at `path` (created if need be) if nobody else does."""
    path.parent.mkdir(parents=True, exist_ok=True)
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
