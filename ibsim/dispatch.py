"""The table from message id to handler; handler modules register themselves here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ibsim.requests import FieldReader
    from ibsim.session import ClientSession

Handler = Callable[["ClientSession", "FieldReader"], Awaitable[None] | None]
HANDLERS: dict[int, Handler] = {}


def handles(*msg_ids: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for msg_id in msg_ids:
            HANDLERS[msg_id] = fn
        return fn

    return register
