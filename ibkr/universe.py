"""What a universe file asks for: symbols, patterns, futures roots, FX pairs, indices, CFDs,
bonds (by CUSIP), mutual funds, crypto, options, and the bar series to backfill for them.

Parsing is strict and every mistake names the entry and the fix, because a typo in a universe
must not silently shrink it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ibfacts.bars import BAR_SECONDS
from ibfacts.history import VOLATILITY_WHAT, WHAT_TO_SHOW, WHAT_TO_SHOW_FOR
from ibkr.exceptions import InvalidRequest

KINDS = ("symbol", "pattern", "future", "fx", "index", "cfd", "bond", "fund", "crypto")
_DEFAULTS = {
    "symbol": {"sec_type": "STK", "exchange": "SMART", "currency": "USD"},
    "pattern": {"sec_type": "STK", "exchange": "SMART", "currency": "USD"},
    "future": {"sec_type": "FUT", "exchange": "CME", "currency": "USD"},
    "fx": {"sec_type": "CASH", "exchange": "IDEALPRO", "currency": ""},
    "index": {"sec_type": "IND", "exchange": "CBOE", "currency": "USD"},
    "cfd": {"sec_type": "CFD", "exchange": "SMART", "currency": "USD"},
    "bond": {"sec_type": "BOND", "exchange": "SMART", "currency": "USD"},  # the CUSIP as symbol
    "fund": {"sec_type": "FUND", "exchange": "FUNDSERV", "currency": "USD"},
    "crypto": {"sec_type": "CRYPTO", "exchange": "PAXOS", "currency": "USD"},
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

    underlying: str  # a stock or index (OPT), or a futures root (FOP: its front future's)
    max_days_to_expiry: int = 45
    min_moneyness: float = 0.9  # strike / underlying price
    max_moneyness: float = 1.1
    exchange: str = "SMART"
    iv_history_days: int = 366  # the underlying's daily implied and historical vol (0: none)
    sec_type: str = "OPT"  # or FOP: options on the root's front future

    def contains(self, days_to_expiry: int, moneyness: float) -> bool:
        return (
            0 <= days_to_expiry <= self.max_days_to_expiry
            and self.min_moneyness <= moneyness <= self.max_moneyness
        )


DERIVED_SIZES = ("1 week", "1 month")  # kept as daily bars; IB's weeks and months are derived
# The types a bar series covers unless it names its own. Named only: options (OPT: those inside
# the option windows, while they live), since a chain holds hundreds of contracts, and CFDs,
# whose prices are their stock's (IB quotes a CFD at its underlying's market).
BAR_SEC_TYPES = ("STK", "IND", "FUT", "CONTFUT", "CASH", "BOND", "FUND", "CRYPTO")
BAR_SEC_TYPES_NAMED = (*BAR_SEC_TYPES, "CFD", "OPT")
# What a series shows when it names nothing: trades where IB has them; otherwise the prices IB
# keeps for the type (no trades for FX, CFDs or a fund's NAV; crypto's trades are IB's
# AGGTRADES; bonds trade over the counter, so their quotes).
DEFAULT_WHAT_TO_SHOW = {
    "CASH": "MIDPOINT",
    "CFD": "MIDPOINT",
    "FUND": "MIDPOINT",
    "CRYPTO": "AGGTRADES",
    "BOND": "BID_ASK",
}
_HISTORY = re.compile(r"^(\d+)\s*([dwmy])$")
_HISTORY_DAYS = {"d": 1, "w": 7, "m": 31, "y": 366}  # generous: a plan never starts short
MAX_HISTORY_YEARS = 100  # longer than any history IB keeps; bounds the dates a plan computes

_SEC_TYPE_NAMES = {
    "STK": "stocks", "FUT": "futures", "CONTFUT": "continuous futures", "OPT": "options",
    "CASH": "forex pairs", "IND": "indices", "CFD": "CFDs", "BOND": "bonds",
    "FUND": "mutual funds", "CRYPTO": "crypto", "FOP": "futures options",
}  # fmt: skip


def serves(sec_type: str, what_to_show: str) -> bool:
    """Whether IB serves `what_to_show` history for `sec_type` (types it leaves to IB: True)."""
    return what_to_show in WHAT_TO_SHOW_FOR.get(sec_type, (what_to_show,))


def check_what_to_show(sec_type: str, what_to_show: str, subject: str = "") -> None:
    """Raise InvalidRequest, before anything is sent, for a pair IB would refuse with 321."""
    if serves(sec_type, what_to_show):
        return
    allowed = WHAT_TO_SHOW_FOR[sec_type]
    raise InvalidRequest(
        f"IB serves no {what_to_show} history for {_SEC_TYPE_NAMES[sec_type]} ({sec_type})",
        f"use {', '.join(allowed)} as what-to-show",
        subject=subject,
    )


@dataclass(frozen=True)
class BarSpec:
    """One bar series to keep for every matching contract: bar size, prices, hours, history."""

    bar_size: str
    history_days: int  # how far back from today the series should reach
    what_to_show: str = ""  # empty: TRADES, or the type's DEFAULT_WHAT_TO_SHOW
    use_rth: bool = True
    sec_types: tuple[str, ...] = BAR_SEC_TYPES
    symbols: tuple[str, ...] = ()  # empty: every contract of those types
    in_sessions: bool = False  # history given in days counts trading sessions ('5d': five)

    @property
    def key(self) -> str:
        """The spec's name in Dagster partitions and reports, e.g. `1 min TRADES rth`."""
        hours = "rth" if self.use_rth else "all"
        return f"{self.bar_size} {self.what_to_show or 'auto'} {hours}"

    def what_for(self, sec_type: str) -> str:
        return self.what_to_show or DEFAULT_WHAT_TO_SHOW.get(sec_type, "TRADES")

    def applies_to(self, sec_type: str, symbol: str) -> bool:
        if sec_type not in self.sec_types or not serves(sec_type, self.what_for(sec_type)):
            return False  # e.g. no TRADES for FX: a spec over every type skips FX pairs
        return not self.symbols or symbol.upper() in self.symbols

    def first_day(self, today: date) -> date:
        return today - timedelta(days=self.history_days)


@dataclass(frozen=True)
class Universe:
    entries: tuple[UniverseEntry, ...]
    options: tuple[OptionWindow, ...] = field(default=())
    bars: tuple[BarSpec, ...] = field(default=())


def parse_universe(data: Mapping[str, Any], source: str = "universe") -> Universe:
    """Build a Universe from the mapping a YAML universe file holds."""
    if not isinstance(data, Mapping):
        raise UniverseError(f"{source}: expected a mapping with 'entries' and 'options'.")
    unknown = set(data) - {"entries", "options", "bars"}
    if unknown:
        raise UniverseError(
            f"{source}: unknown section {sorted(unknown)[0]!r}; use 'entries', 'options' and "
            "'bars'."
        )
    entries = tuple(
        _entry(item, f"{source} entry {i + 1}") for i, item in enumerate(data.get("entries") or [])
    )
    options = tuple(
        _option(item, f"{source} option {i + 1}")
        for i, item in enumerate(data.get("options") or [])
    )
    items = data.get("bars") or []
    bars = tuple(parse_bar_spec(item, f"{source} bars {i + 1}") for i, item in enumerate(items))
    if not entries and not options:
        raise UniverseError(f"{source}: no entries; list at least one under 'entries'.")
    keys = [spec.key for spec in bars]
    if len(set(keys)) != len(keys):
        raise UniverseError(f"{source}: two bars entries ask for the same series; merge them.")
    return Universe(entries, options, bars + volatility_specs(options, set(keys)))


def volatility_specs(windows: tuple[OptionWindow, ...], taken: set[str]) -> tuple[BarSpec, ...]:
    """The daily implied and historical volatility of every option window's underlying, kept
    as bar series (IB's OPTION_IMPLIED_VOLATILITY and HISTORICAL_VOLATILITY), as far back as the
    longest window asks; a series the `bars:` section already names is left to it."""
    wanted = [w for w in windows if w.iv_history_days > 0 and w.sec_type == "OPT"]
    if not wanted:
        return ()
    days = max(w.iv_history_days for w in wanted)
    symbols = tuple(sorted({w.underlying for w in wanted}))
    specs = (
        BarSpec("1 day", days, what, sec_types=("STK", "IND"), symbols=symbols)
        for what in VOLATILITY_WHAT
    )
    return tuple(spec for spec in specs if spec.key not in taken)


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
    allowed = {
        "underlying", "max_days_to_expiry", "moneyness", "exchange", "iv_history", "sec_type",
    }  # fmt: skip
    sec_type = str(item.get("sec_type", "OPT")).upper()
    if sec_type not in ("OPT", "FOP"):
        raise UniverseError(f"{where}: sec_type is OPT (the default) or FOP (futures options).")
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
            exchange=str(item.get("exchange", "CME" if sec_type == "FOP" else "SMART")).upper(),
            sec_type=sec_type,
            iv_history_days=(
                _history_days(str(item.get("iv_history", "1y")), f"{where} iv_history")
                if item.get("iv_history", "1y") not in (False, None, "none")
                else 0
            ),
        )
    except (TypeError, ValueError) as exc:
        raise UniverseError(
            f"{where}: max_days_to_expiry is a whole number and moneyness two numbers [low, high]."
        ) from exc
    if not 0 < window.min_moneyness < window.max_moneyness:
        raise UniverseError(f"{where}: moneyness must be [low, high] with 0 < low < high.")
    return window


def parse_bar_spec(item: Any, where: str, flags: Mapping[str, str] | None = None) -> BarSpec:
    """One entry of the `bars:` section (also `ibw backfill --bar-size ...`); `flags` names the
    command-line option each key came from, so an error names the option the user typed."""

    def at(key: str) -> str:
        return (flags or {}).get(key, where)

    allowed = {"bar_size", "history", "what_to_show", "use_rth", "sec_types", "symbols"}
    if not isinstance(item, Mapping) or "bar_size" not in item or "history" not in item:
        raise UniverseError(
            f"{where}: expected a mapping with 'bar_size' and 'history', e.g. "
            "{bar_size: 1 min, history: 30d}."
        )
    unknown = set(item) - allowed
    if unknown:
        raise UniverseError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; allowed: {sorted(allowed)}."
        )
    bar_size = str(item["bar_size"]).strip()
    if bar_size not in BAR_SECONDS:
        sizes = ", ".join(b for b in BAR_SECONDS if b not in DERIVED_SIZES)
        raise UniverseError(
            f"{at('bar_size')}: {bar_size!r} is not an IB bar size; use one of {sizes}."
        )
    if bar_size in DERIVED_SIZES:
        raise UniverseError(
            f"{at('bar_size')}: keep daily bars and derive {bar_size} bars from them."
        )
    history_days = _history_days(str(item["history"]), at("history"))
    what = str(item.get("what_to_show", "")).strip().upper()
    if what and what not in WHAT_TO_SHOW:
        raise UniverseError(
            f"{at('what_to_show')}: what_to_show must be one of {', '.join(WHAT_TO_SHOW)}."
        )
    use_rth = item.get("use_rth", True)
    if not isinstance(use_rth, bool):
        raise UniverseError(f"{where}: use_rth is true (regular hours) or false (all hours).")
    sec_types = tuple(str(t).upper() for t in item.get("sec_types", BAR_SEC_TYPES))
    if not sec_types or not set(sec_types) <= set(BAR_SEC_TYPES_NAMED):
        raise UniverseError(f"{where}: sec_types must be among {', '.join(BAR_SEC_TYPES_NAMED)}.")
    if what and "sec_types" in item:
        for sec_type in sec_types:
            try:
                check_what_to_show(sec_type, what)
            except InvalidRequest as exc:
                raise UniverseError(f"{where}: {exc.sentence}") from None
    return BarSpec(
        bar_size=bar_size,
        history_days=history_days,
        what_to_show=what,
        use_rth=use_rth,
        sec_types=sec_types,
        symbols=tuple(str(s).upper() for s in item.get("symbols", ())),
        in_sessions=str(item["history"]).strip().lower().endswith("d"),
    )


def _history_days(text: str, where: str) -> int:
    """A history such as 30d or 20y in days, bounded by MAX_HISTORY_YEARS."""
    match = _HISTORY.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UniverseError(f"{where}: history is a count and a unit, e.g. 30d, 26w, 6m or 20y.")
    days = int(match.group(1)) * _HISTORY_DAYS[match.group(2)]
    if days > MAX_HISTORY_YEARS * _HISTORY_DAYS["y"]:
        raise UniverseError(
            f"{where}: {text.strip()} reaches further back than any history IB keeps; ask for "
            f"at most {MAX_HISTORY_YEARS}y."
        )
    return days
