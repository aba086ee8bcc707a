"""Account-side requests. For now the answers every connect waits for: empty lists and their END.

Positions, account values, orders and executions arrive with the accounts issue; until then
each request is answered with its END so that clients never wait on a missing reply.
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
    session.send(15, 1, ",".join(session.gateway.config.accounts))


@handles(8)
def next_ids(session: ClientSession, msg: FieldReader) -> None:
    session.send(9, 1, session.gateway.next_order_id)


@handles(61)
def positions(session: ClientSession, msg: FieldReader) -> None:
    session.send(62, 1)


@handles(5, 16)
def open_orders(session: ClientSession, msg: FieldReader) -> None:
    session.send(53, 1)


@handles(99)
def completed_orders(session: ClientSession, msg: FieldReader) -> None:
    session.send(102)


@handles(6)
def account_updates(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    subscribe, account = msg.bool(), msg.str()
    if subscribe:
        session.send(54, 1, account)


@handles(76)
def account_updates_multi(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(74, 1, msg.request_id())


@handles(74)
def positions_multi(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(72, 1, msg.request_id())


@handles(7)
def executions(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(55, 1, msg.request_id())


@handles(62)
def account_summary(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(64, 1, msg.request_id())


@handles(15, 59, 64, 63, 75, 77, 93, 95, 2, 51)
def acknowledged(session: ClientSession, msg: FieldReader) -> None:
    """Requests with no reply of their own (auto-open-orders, market data type, cancels)."""
