"""Account data: positions, account values and summary, portfolio, P&L and family codes.

For now each request is answered with its END only (what ib_async's connect waits for).
"""

from __future__ import annotations

from ibsim.dispatch import handles
from ibsim.requests import FieldReader
from ibsim.session import ClientSession


@handles(61)
def positions(session: ClientSession, msg: FieldReader) -> None:
    session.send(62, 1)


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


@handles(62)
def account_summary(session: ClientSession, msg: FieldReader) -> None:
    msg.skip()
    session.send(64, 1, msg.request_id())
