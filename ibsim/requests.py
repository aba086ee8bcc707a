"""Reading request fields the way clients spell them, including their 'unset' spellings."""

from __future__ import annotations

from dataclasses import dataclass

from ibsim import wire


class RequestError(ValueError):
    """A request whose fields do not fit its message layout."""


@dataclass(frozen=True)
class ContractQuery:
    """The 12-field contract block of a request (as the clients encode it)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""
    strike: float = 0.0
    right: str = ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""
    include_expired: bool = False


class FieldReader:
    """Sequential access to one message's fields; running off the end is a RequestError."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.pos = 1  # fields[0] is the message id
        self.req_id = -1  # known once the handler has read it; errors go to this id

    @property
    def msg_id(self) -> int:
        return int(self.fields[0])

    def str(self) -> str:
        if self.pos >= len(self.fields):
            raise RequestError(f"message {self.fields[0]} is missing field {self.pos}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        raw = self.str()
        try:
            return wire.as_int(raw, default)
        except ValueError as exc:
            raise RequestError(f"field {self.pos - 1} ({raw!r}) is not an integer") from exc

    def float(self) -> float:
        raw = self.str()
        try:
            return wire.as_float(raw)
        except ValueError as exc:
            raise RequestError(f"field {self.pos - 1} ({raw!r}) is not a number") from exc

    def bool(self) -> bool:
        return wire.as_bool(self.str())

    def request_id(self) -> int:
        self.req_id = self.int()
        return self.req_id

    def skip(self, count: int = 1) -> None:
        for _ in range(count):
            self.str()

    def contract(self) -> ContractQuery:
        return ContractQuery(
            con_id=self.int(),
            symbol=self.str().strip().upper(),
            sec_type=self.str().strip().upper(),
            last_trade_date=self.str().strip(),
            strike=self.float(),
            right=self.str().strip().upper(),
            multiplier=self.str().strip(),
            exchange=self.str().strip().upper(),
            primary_exchange=self.str().strip().upper(),
            currency=self.str().strip().upper(),
            local_symbol=self.str().strip(),
            trading_class=self.str().strip(),
        )
