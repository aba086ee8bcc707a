"""What a universe file asks for: symbols, patterns, futures roots, FX pairs, indices, options.

Parsing is strict and every mistake names the entry and the fix, because a typo in a universe
must not silently shrink it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("symbol", "pattern", "future", "fx", "index")
_DEFAULTS = {
    "symbol": {"sec_type": "STK", "exchange": "SMART", "currency": "USD"},
    "pattern": {"sec_type": "STK", "exchange": "SMART", "currency": "USD"},
    "future": {"sec_type": "FUT", "exchange": "CME", "currency": "USD"},
    "fx": {"sec_type": "CASH", "exchange": "IDEALPRO", "currency": ""},
    "index": {"sec_type": "IND", "exchange": "CBOE", "currency": "USD"},
}
_OPTIONAL = {"sec_type", "exchange", "currency", "primary_exchange", "expired_years"}


class UniverseError(ValueError):
    """A universe file that cannot be read; the message names the entry and the fix."""


@dataclass(frozen=True)
class UniverseEntry:
    kind: str  # one of KINDS
    value: str  # the symbol, pattern, futures root, FX pair (EUR.USD) or index
    sec_type: str
    exchange: str
    currency: str
    primary_exchange: str = ""
    expired_years: int = 0  # futures: also expired contracts up to this many years back

    @property
    def name(self) -> str:
        """How reports and asset checks refer to the entry."""
        return f"{self.kind} {self.value} ({self.sec_type} {self.exchange})"


@dataclass(frozen=True)
class OptionWindow:
    """Which options of an underlying to snapshot: never every strike of every expiry."""

    underlying: str
    max_days_to_expiry: int = 45
    min_moneyness: float = 0.9  # strike / underlying price
    max_moneyness: float = 1.1
    exchange: str = "SMART"

    def contains(self, days_to_expiry: int, moneyness: float) -> bool:
        return (
            0 <= days_to_expiry <= self.max_days_to_expiry
            and self.min_moneyness <= moneyness <= self.max_moneyness
        )


@dataclass(frozen=True)
class Universe:
    entries: tuple[UniverseEntry, ...]
    options: tuple[OptionWindow, ...] = field(default=())


def parse_universe(data: Mapping[str, Any], source: str = "universe") -> Universe:
    """Build a Universe from the mapping a YAML universe file holds."""
    if not isinstance(data, Mapping):
        raise UniverseError(f"{source}: expected a mapping with 'entries' and 'options'.")
    unknown = set(data) - {"entries", "options"}
    if unknown:
        raise UniverseError(
            f"{source}: unknown section {sorted(unknown)[0]!r}; use 'entries' and 'options'."
        )
    entries = tuple(
        _entry(item, f"{source} entry {i + 1}") for i, item in enumerate(data.get("entries") or [])
    )
    options = tuple(
        _option(item, f"{source} option {i + 1}")
        for i, item in enumerate(data.get("options") or [])
    )
    if not entries and not options:
        raise UniverseError(f"{source}: no entries; list at least one under 'entries'.")
    return Universe(entries, options)


def _entry(item: Any, where: str) -> UniverseEntry:
    if not isinstance(item, Mapping):
        raise UniverseError(f"{where}: expected a mapping such as {{symbol: AAPL}}.")
    kinds = [k for k in KINDS if k in item]
    if len(kinds) != 1:
        raise UniverseError(f"{where}: give exactly one of {', '.join(KINDS)}.")
    kind = kinds[0]
    unknown = set(item) - {kind} - _OPTIONAL
    if unknown:
        raise UniverseError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {kind}, "
            f"{', '.join(sorted(_OPTIONAL))}."
        )
    value = str(item[kind]).strip().upper()
    if not value:
        raise UniverseError(f"{where}: {kind} is empty.")
    settings = {**_DEFAULTS[kind], **{k: item[k] for k in _OPTIONAL if k in item}}
    try:
        expired_years = int(settings.get("expired_years", 0))
    except (TypeError, ValueError) as exc:
        raise UniverseError(f"{where}: expired_years must be a whole number of years.") from exc
    if kind == "fx" and "." not in value:
        raise UniverseError(f"{where}: write FX pairs as BASE.QUOTE, e.g. EUR.USD.")
    return UniverseEntry(
        kind=kind,
        value=value,
        sec_type=str(settings["sec_type"]).upper(),
        exchange=str(settings["exchange"]).upper(),
        currency=str(settings["currency"]).upper(),
        primary_exchange=str(settings.get("primary_exchange", "")).upper(),
        expired_years=max(expired_years, 0),
    )


def _option(item: Any, where: str) -> OptionWindow:
    if not isinstance(item, Mapping) or "underlying" not in item:
        raise UniverseError(
            f"{where}: expected a mapping with 'underlying', e.g. {{underlying: SPY}}."
        )
    allowed = {"underlying", "max_days_to_expiry", "moneyness", "exchange"}
    unknown = set(item) - allowed
    if unknown:
        raise UniverseError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {sorted(allowed)}."
        )
    low, high = item.get("moneyness", (0.9, 1.1))
    try:
        window = OptionWindow(
            underlying=str(item["underlying"]).strip().upper(),
            max_days_to_expiry=int(item.get("max_days_to_expiry", 45)),
            min_moneyness=float(low),
            max_moneyness=float(high),
            exchange=str(item.get("exchange", "SMART")).upper(),
        )
    except (TypeError, ValueError) as exc:
        raise UniverseError(
            f"{where}: max_days_to_expiry is a whole number and moneyness two numbers [low, high]."
        ) from exc
    if not 0 < window.min_moneyness < window.max_moneyness:
        raise UniverseError(f"{where}: moneyness must be [low, high] with 0 < low < high.")
    return window
