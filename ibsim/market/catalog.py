"""Finding instruments for a contract query, as reqContractDetails and friends do."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache

from ibsim.clock import Clock
from ibsim.market import instruments as ref
from ibsim.market import options
from ibsim.market.instruments import Instrument

FIXED: tuple[Instrument, ...] = (
    ref.STOCKS + ref.INDICES + ref.FOREX + ref.CFDS + ref.FUNDS + ref.CRYPTO + ref.TREASURIES
)
_RIGHTS = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


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
    sec_id_type: str = ""  # CUSIP, ISIN, ... (reqContractDetails): the instrument it names
    sec_id: str = ""


@lru_cache(maxsize=4)
def _option_chain(day: str) -> dict[int, Instrument]:
    """Every option listed on `day` (yyyymmdd), by conId."""
    return {opt.con_id: opt for opt in options.chain(datetime.strptime(day, "%Y%m%d"))}


class Catalog:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._by_con_id = {i.con_id: i for i in FIXED + ref.futures()}
        self._served_options: dict[int, Instrument] = {}  # still known after they expire
        self._added: list[Instrument] = []

    def add(self, instrument: Instrument) -> None:
        """List one more instrument, or replace the one with its conId (a rename), e.g. for a
        fault scenario or a corporate action."""
        self._added = [i for i in self._added if i.con_id != instrument.con_id] + [instrument]
        self._by_con_id[instrument.con_id] = instrument

    def now(self) -> datetime:
        return self.clock.now()

    def options(self) -> dict[int, Instrument]:
        return _option_chain(f"{self.now():%Y%m%d}")

    def underlying(self, symbol: str) -> Instrument | None:
        return next((i for i in FIXED if i.symbol == symbol and i.sec_type == "STK"), None)

    def by_con_id(self, con_id: int) -> Instrument | None:
        found = self._by_con_id.get(con_id) or self.options().get(con_id)
        return found or self._served_options.get(con_id)

    def find(self, query: ContractQuery) -> list[Instrument]:
        """Every instrument the query describes; more than one means it is ambiguous."""
        if query.con_id:
            found = self.by_con_id(query.con_id)
            return [self._as_requested(found, query)] if found else []
        now = self.now()
        matches = [
            self._as_requested(i, query)
            for i in self._candidates(query)
            if _matches(i, query) and (query.include_expired or not i.expired(now))
        ]
        self._served_options.update(
            (i.con_id, i) for i in matches if i.sec_type in options.OPTION_TYPES
        )
        return sorted(matches, key=lambda i: (i.sec_type, i.last_trade_date, i.strike, i.right))

    def _candidates(self, query: ContractQuery) -> list[Instrument]:
        now = self.now()
        if query.sec_type == "CONTFUT":
            front = ref.continuous(query.symbol, now)
            return [front] if front else []
        pool = [*FIXED, *ref.futures(), *self._added]
        if query.sec_type in options.OPTION_TYPES:
            pool += self.options().values()
        return pool

    def _as_requested(self, inst: Instrument, query: ContractQuery) -> Instrument:
        """The instrument as IB echoes it: with the exchange the request named."""
        if query.exchange and query.exchange != inst.exchange:
            return replace(inst, exchange=query.exchange)
        return inst


def _matches(inst: Instrument, q: ContractQuery) -> bool:
    if q.symbol and q.symbol not in (inst.symbol, _cusip(inst)):  # IB takes a bond's CUSIP
        return False
    if q.local_symbol and " ".join(q.local_symbol.split()) != " ".join(inst.local_symbol.split()):
        return False
    if q.sec_id and q.sec_id.upper() != _sec_ids(inst).get(q.sec_id_type.upper()):
        return False
    if not q.symbol and not q.local_symbol and not q.sec_id:
        return False
    if q.sec_type and q.sec_type != inst.sec_type:
        return False
    if q.exchange and q.exchange not in _exchanges(inst):
        return False
    if q.primary_exchange and inst.primary_exchange and q.primary_exchange != inst.primary_exchange:
        return False
    if q.currency and q.currency != inst.currency:
        return False
    if q.last_trade_date and not (
        inst.last_trade_date.startswith(q.last_trade_date)
        or inst.contract_month.startswith(q.last_trade_date)
    ):
        return False
    if q.strike and abs(q.strike - inst.strike) > 1e-6:
        return False
    if q.right and q.right != "?" and _RIGHTS.get(q.right) != inst.right:
        return False
    if q.multiplier and inst.multiplier and not _same_number(q.multiplier, inst.multiplier):
        return False
    return not (q.trading_class and q.trading_class != inst.trading_class)


def _cusip(inst: Instrument) -> str:
    return inst.bond.cusip if inst.bond else ""


def _sec_ids(inst: Instrument) -> dict[str, str]:
    """The security ids a request may name the instrument by (secIdType -> secId)."""
    return {k: v for k, v in (("ISIN", inst.isin), ("CUSIP", _cusip(inst))) if v}


def _same_number(requested: str, listed: str) -> bool:
    try:
        return float(requested) == float(listed)
    except ValueError:
        return requested == listed


def _exchanges(inst: Instrument) -> set[str]:
    return {inst.exchange, inst.primary_exchange, *inst.valid_exchanges.split(",")} - {""}
