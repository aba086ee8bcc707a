"""Orders and fills: open and completed orders, executions and their commission reports.

For now each request is answered with its END only (what ib_async's connect waits for).
"""

from __future__ import annotations

from ibsim.dispatch import handles
from ibsim.requests import FieldReader
from ibsim.session import ClientSession


@handles(5, 16)
def open_orders(session: ClientSession, msg: FieldReader) -> None:
    session.send(53, 1)


@handles(99)
def completed_orders(session: ClientSession, msg: FieldReader) -> None:
    session.send(102)


@handles(7)
def executions(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(55, 1, msg.request_id())
