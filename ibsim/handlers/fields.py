"""Fields as the clients spell them: reading a request field by field (with every client's
spelling of "unset"), spelling an answer's values, and the longest message a client reads."""

from __future__ import annotations

from ibsim.market.catalog import ContractQuery

MAX_FRAME = 0xFFFFFF  # ibapi refuses longer frames (its error 507)
UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INT = "2147483647"
_UNSET_VALUES = {
    "",
    UNSET_INT,
    "1.7976931348623157e+308",
    UNSET_DOUBLE,
    "9223372036854775807",
    "170141183460469231731687303715884105727",
}


class RequestError(ValueError):
    """A request whose fields do not fit its message layout."""


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
            return as_int(raw, default)
        except ValueError as exc:
            raise RequestError(f"field {self.pos - 1} ({raw!r}) is not an integer") from exc

    def float(self) -> float:
        raw = self.str()
        try:
            return as_float(raw)
        except ValueError as exc:
            raise RequestError(f"field {self.pos - 1} ({raw!r}) is not a number") from exc

    def bool(self) -> bool:
        return as_bool(self.str())

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


def field(value: object) -> str:
    """Spell one outgoing value the way both clients parse it (bools as 0/1)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def is_unset(value: str) -> bool:
    return value in _UNSET_VALUES or value in ("Infinite", "Infinity")


def as_int(value: str, default: int = 0) -> int:
    """Parse an int field, reading the clients' spellings of 'unset' as `default`.

    Raises ValueError for anything else that is not a finite integer."""
    if is_unset(value):
        return default
    try:
        return int(float(value)) if "." in value or "e" in value.lower() else int(value)
    except OverflowError as exc:
        raise ValueError(f"{value[:20]!r} is not a finite integer") from exc


def as_float(value: str, default: float = 0.0) -> float:
    return default if is_unset(value) else float(value)


def as_bool(value: str) -> bool:
    return not is_unset(value) and value not in ("0", "false", "False") and bool(value)
