"""Session-level requests: the time, the managed accounts, order ids, and the requests that have
no reply of their own. Accounts are answered in `portfolio`, orders and fills in `trades`, the FA
configuration in `fa`.
"""

from __future__ import annotations

from ibsim.dispatch import handles
from ibsim.requests import FieldReader
from ibsim.session import ClientSession


@handles(49)
def current_time(session: ClientSession, msg: FieldReader) -> None:
    session.send(49, 1, int(session.now().timestamp()))


@handles(17)
def managed_accounts(session: ClientSession, msg: FieldReader) -> None:
    session.send(15, 1, ",".join(session.gateway.book.managed))


@handles(8)
def next_ids(session: ClientSession, msg: FieldReader) -> None:
    session.send(9, 1, session.gateway.next_order_id)


@handles(15, 59, 64, 75, 77, 93, 95, 2, 51)
def acknowledged(session: ClientSession, msg: FieldReader) -> None:
    """Requests with no reply of their own (auto-open-orders, market data type, cancels)."""
