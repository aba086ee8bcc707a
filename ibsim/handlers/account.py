"""Connection-level requests: the time, the managed accounts, order ids, and the requests that
have no reply of their own. Accounts are answered in `portfolio`, orders and fills in `trades`,
the FA configuration in `fa`.
"""

from __future__ import annotations

from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader


def current_time(client: Client, msg: FieldReader) -> None:
    client.send(49, 1, int(client.now().timestamp()))


def managed_accounts(client: Client, msg: FieldReader) -> None:
    client.send(15, 1, ",".join(client.state.book.managed))


def next_ids(client: Client, msg: FieldReader) -> None:
    client.send(9, 1, client.state.engine.next_order_id)


def acknowledged(client: Client, msg: FieldReader) -> None:
    """Requests with no reply of their own (auto-open-orders, cancels)."""
