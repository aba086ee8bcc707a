"""The journal's doorbell: a writer rings it after committing, so the live service sends at once.

The CLI, scripts and notebooks write intents into the journal from their own processes, and the
service polls it (every 10 ms). A poll costs half its interval on average, which is most of an
order's round trip on a quiet gateway; the doorbell takes that away. It is one datagram on a
Unix socket in Linux's abstract namespace, named after the home: nothing on disk, gone with the
service (even after kill -9), never blocking the writer. It only wakes the service: a lost ring
(no service, another platform, a full buffer) costs the poll's delay and nothing else, because
the journal, not the datagram, says what to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import sys
from pathlib import Path


def address(home: Path) -> str | None:
    """The doorbell's abstract socket name for `home`, or None where there are none (not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    digest = hashlib.sha1(str(Path(home).resolve()).encode()).hexdigest()[:16]
    return f"\0ibw-journal-{digest}"


def ring(home: Path) -> None:
    """Wake the live service of `home`, if one listens; never raises, never waits."""
    name = address(home)
    if name is None:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # nobody listens, or the service is busy: it polls
            sock.sendto(b"!", name)


class Doorbell:
    """The service's end: `rung` is set whenever a writer rang since it was last cleared."""

    def __init__(self, home: Path) -> None:
        self.rung = asyncio.Event()
        self._sock: socket.socket | None = None
        self._name = address(home)

    def open(self) -> None:
        """Listen on the running loop (the home's lock makes this service the only listener)."""
        if self._name is None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self._name)
        except OSError:  # taken (a service of an older version?) : the poll still works
            sock.close()
            return
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._drain)
        self._sock = sock

    def _drain(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(BlockingIOError):
            while self._sock.recv(64):
                pass
        self.rung.set()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
