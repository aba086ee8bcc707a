"""A local HTTP receiver standing in for an alert channel: apprise's `json://` posts land here,
on 127.0.0.1, and nothing leaves the machine. Tests wait for the k-th body, never for time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.kit.waiting import WAIT, poll_until


class Receiver:
    """The JSON bodies posted to it, in order; `status` is what it answers (500: a failing
    channel)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.status = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.bodies.append(body)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass  # the test's output is not the place for an access log

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.server.server_address[1]}/"

    def messages(self) -> list[str]:
        """Each body's `title: message`, in order."""
        with self._lock:
            return [f"{b.get('title', '')}: {b.get('message', '')}" for b in self.bodies]

    def wait_for(self, count: int, timeout: float = WAIT) -> list[str]:
        """Until `count` bodies have come; returns the messages."""
        poll_until(lambda: len(self.bodies) >= count, f"{count} alert bodies received", timeout)
        return self.messages()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()
    found.thread.join(timeout=WAIT)
