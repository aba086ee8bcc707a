"""The live service's configuration file, and its streams resolved to contracts.

Owns `LiveConfig` (which contracts stream ticks and 5-s bars, how often buffers are flushed,
when a silent stream counts as stale, the default account, the order limits, the accounts'
risk limits and how long a fault lasts before it is alerted), read strictly
from YAML: an unknown key or a bad value is refused with one sentence naming the key and the
fix, because a typo in a long-running service's config would otherwise stream the wrong thing
for days. `resolve_streams` turns each entry into a `ResolvedStream` from the current version of
the security master (`ibw universe` or the `contracts` asset writes it), so the service never
guesses a conId.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml
from ib_async import Contract

from ibfacts.venues import Venue
from ibkr.exceptions import IBWError
from ibkr.sessions import hours_for
from live.risk import LIMIT_NAMES, RiskLimits
from live.safety import OrderLimits
from warehouse.columns import SEC_TYPES
from warehouse.parquet import read_dataset

DEFAULT_CONFIG = Path(__file__).resolve().parent / "live.yml"
MIDPOINT_SEC_TYPES = frozenset({"CASH", "IND"})  # no trades: their bars are built from quotes
MIN_STALE_AFTER = 10.0  # two 5-s bars: anything shorter resubscribes healthy streams
_TOP = ("streams", "flush_every", "stale_after", "account", "limits", "risk", "alerts")
_STREAM = ("symbol", "con_id", "sec_type", "ticks", "bars")
_LIMITS = ("max_quantity", "max_notional", "max_price_deviation")
_RISK = (*LIMIT_NAMES, "hard")
_RISK_EXAMPLES = dict(zip(LIMIT_NAMES, (5_000, 1_000, 500_000, 250_000), strict=True))
_ALERTS = ("link_lost_after", "farm_broken_after", "reconnect_deadline")


class LiveConfigError(IBWError):
    """The live config cannot be used as written; the sentence names the key and the fix."""

    default_cause = "the live configuration is invalid"
    default_fix = "correct live/live.yml"


@dataclass(frozen=True)
class StreamSpec:
    """One entry of `streams`: a contract by symbol (optionally narrowed by sec_type) or conId."""

    symbol: str | None = None
    con_id: int | None = None
    sec_type: str | None = None
    ticks: bool = False
    bars: bool = False

    @property
    def name(self) -> str:
        return self.symbol or f"conId {self.con_id}"


@dataclass(frozen=True)
class AlertThresholds:
    """Seconds a fault lasts before the service alerts (live.alerting): IB's link lost (1100), a
    data farm broken in session, the service disconnected. Stale streams use `stale_after`."""

    link_lost_after: float = 60.0
    farm_broken_after: float = 60.0
    reconnect_deadline: float = 900.0  # IB Gateway's daily restart takes a few minutes


@dataclass(frozen=True)
class LiveConfig:
    streams: tuple[StreamSpec, ...]
    flush_every: float = 1.0
    stale_after: float = 30.0
    account: str = ""
    limits: OrderLimits = field(default_factory=OrderLimits)
    risk: RiskLimits = field(default_factory=RiskLimits)
    alerts: AlertThresholds = field(default_factory=AlertThresholds)

    @classmethod
    def load(cls, path: Path) -> LiveConfig:
        """Read and check a config file."""
        path = Path(path)
        if not path.is_file():
            raise LiveConfigError(
                f"no live config at {path}", "create it (see live/live.yml) or pass --config"
            )
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise LiveConfigError(
                f"{path.name} is not valid YAML{where}", "fix its syntax"
            ) from exc
        return cls.parse(data, path.name)

    @classmethod
    def parse(cls, data: object, source: str = "live.yml") -> LiveConfig:
        """Check a config already read from YAML (a mapping)."""
        if not isinstance(data, Mapping):
            raise LiveConfigError(
                "expected a mapping with a 'streams' list",
                subject=source,
                fix="start from live/live.yml",
            )
        _known(data, _TOP, source)
        items = data.get("streams")
        if not isinstance(items, list) or not items:
            raise LiveConfigError(
                "'streams' must be a non-empty list",
                subject=source,
                fix="list at least one contract, e.g. - {symbol: AAPL, bars: true}",
            )
        streams = tuple(_stream(item, f"{source} streams[{i}]") for i, item in enumerate(items))
        seen: set[tuple] = set()
        for spec in streams:
            key = (spec.symbol, spec.con_id, spec.sec_type)
            if key in seen:
                raise LiveConfigError(
                    f"{spec.name} is listed twice",
                    "merge the two entries",
                    subject=f"{source} streams",
                )
            seen.add(key)
        stale = _number(data, "stale_after", 30.0, source)
        if stale < MIN_STALE_AFTER:
            raise LiveConfigError(
                f"stale_after is {stale:g} s, shorter than two 5-second bars",
                f"set it to {MIN_STALE_AFTER:g} or more",
                subject=source,
            )
        account = data.get("account", "")
        if not isinstance(account, str):
            raise LiveConfigError(
                "account must be text", 'quote it, e.g. account: "DU123456"', subject=source
            )
        return cls(
            streams,
            flush_every=_number(data, "flush_every", 1.0, source),
            stale_after=stale,
            account=account.strip(),
            limits=_limits(data.get("limits", {}), f"{source} limits"),
            risk=_risk(data.get("risk", {}), f"{source} risk"),
            alerts=_alerts(data.get("alerts", {}), f"{source} alerts"),
        )


def _known(item: Mapping, allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise LiveConfigError(
            f"unknown key {unknown[0]!r}", f"use only {', '.join(allowed)}", subject=where
        )


def _section(
    item: object, allowed: tuple[str, ...], example: str, what: str, where: str
) -> Mapping:
    """A mapping of known keys (`example` shows one, `what` names it in the fix), or one
    sentence saying which it is not."""
    if not isinstance(item, Mapping):
        raise LiveConfigError(
            f"expected a mapping such as {example}", f"write {what} as a mapping", subject=where
        )
    _known(item, allowed, where)
    return item


def _number(
    item: Mapping, key: str, default: float, where: str, what: str = "a number of seconds"
) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LiveConfigError(
            f"{key} must be {what} (got {value!r})",
            f"write e.g. {key}: {default:g}",
            subject=where,
        )
    if value <= 0:
        raise LiveConfigError(
            f"{key} must be positive (got {value!r})",
            f"write e.g. {key}: {default:g}",
            subject=where,
        )
    return float(value)


def _flag(item: Mapping, key: str, where: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise LiveConfigError(
            f"{key} must be true or false (got {value!r})",
            f"write {key}: true or leave it out",
            subject=where,
        )
    return value


def _stream(item: object, where: str) -> StreamSpec:
    item = _section(item, _STREAM, "{symbol: AAPL, bars: true}", "each stream", where)
    if ("symbol" in item) == ("con_id" in item):
        raise LiveConfigError(
            "give exactly one of symbol and con_id",
            "name the contract by symbol or by con_id",
            subject=where,
        )
    symbol, con_id = item.get("symbol"), item.get("con_id")
    if symbol is not None and (not isinstance(symbol, str) or not symbol.strip()):
        raise LiveConfigError(
            f"symbol must be text (got {symbol!r})", "write e.g. symbol: AAPL", subject=where
        )
    if con_id is not None and (
        isinstance(con_id, bool) or not isinstance(con_id, int) or con_id <= 0
    ):
        raise LiveConfigError(
            f"con_id must be a positive integer (got {con_id!r})",
            "write IB's conId, e.g. con_id: 265598",
            subject=where,
        )
    sec_type = item.get("sec_type")
    if sec_type is not None and str(sec_type).upper() not in SEC_TYPES:
        raise LiveConfigError(
            f"sec_type {sec_type!r} is not an IB security type",
            f"use one of {', '.join(SEC_TYPES)}",
            subject=where,
        )
    spec = StreamSpec(
        symbol.strip().upper() if symbol else None,
        con_id,
        str(sec_type).upper() if sec_type else None,
        _flag(item, "ticks", where),
        _flag(item, "bars", where),
    )
    if not (spec.ticks or spec.bars):
        raise LiveConfigError(
            f"{spec.name} asks for neither ticks nor bars",
            "add ticks: true and/or bars: true",
            subject=where,
        )
    return spec


def _limits(item: object, where: str) -> OrderLimits:
    item = _section(item, _LIMITS, "{max_quantity: 10000}", "limits", where)
    defaults = OrderLimits.from_env()  # IBW_MAX_QUANTITY / IBW_MAX_NOTIONAL, else built in
    values = {}
    for key in _LIMITS:
        value = item.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise LiveConfigError(
                f"{key} must be a positive number (got {value!r})",
                f"write e.g. {key}: {getattr(defaults, key):g}",
                subject=where,
            )
        values[key] = float(value)
    return OrderLimits(**values)


def _risk(item: object, where: str) -> RiskLimits:
    """The top-level risk limits, each entry of `accounts` merged over them (null: no limit)."""
    item = _section(item, (*_RISK, "accounts"), "{daily_loss: 5000}", "risk", where)
    top = _risk_values(item, where)
    accounts = item.get("accounts", {})
    if not isinstance(accounts, Mapping) or not all(isinstance(a, str) for a in accounts):
        raise LiveConfigError(
            "accounts must map account ids to their limits",
            'write e.g. accounts: {"DU123456": {max_position: 500}}',
            subject=where,
        )
    overrides = {}
    for account, entry in accounts.items():
        inner = f"{where} accounts {account}"
        entry = _section(entry, _RISK, "{max_position: 500}", "the account's limits", inner)
        overrides[account.strip()] = RiskLimits(**{**top, **_risk_values(entry, inner)})
    return RiskLimits(**top, accounts=overrides)


def _risk_values(item: Mapping, where: str) -> dict:
    """The risk keys the mapping gives, checked: positive numbers or null, and `hard` a list."""
    values: dict = {}
    for key in LIMIT_NAMES:
        if key in item:
            example = _RISK_EXAMPLES[key]
            given = item[key] is not None
            values[key] = _number(item, key, example, where, "a positive amount") if given else None
    if "hard" in item:
        hard = item["hard"]
        if not isinstance(hard, list) or not all(h in LIMIT_NAMES for h in hard):
            raise LiveConfigError(
                f"hard must list limits among {', '.join(LIMIT_NAMES)} (got {hard!r})",
                "write e.g. hard: [daily_loss], or hard: [] for none",
                subject=where,
            )
        values["hard"] = frozenset(hard)
    return values


def _alerts(item: object, where: str) -> AlertThresholds:
    item = _section(item, _ALERTS, "{link_lost_after: 60}", "alerts", where)
    defaults = AlertThresholds()
    return AlertThresholds(**{k: _number(item, k, getattr(defaults, k), where) for k in _ALERTS})


# ----------------------------------------------------------------------- resolution
@dataclass(frozen=True)
class ResolvedStream:
    """A configured stream with its contract as the security master holds it."""

    con_id: int
    symbol: str  # for people: the local symbol (AAPL, EUR.USD, ESU4)
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    time_zone_id: str
    trading_hours: str
    liquid_hours: str
    ticks: bool
    bars: bool

    @property
    def what_to_show(self) -> str:
        """What its 5-s bars are built from, in real time and when refilled from history."""
        return "MIDPOINT" if self.sec_type in MIDPOINT_SEC_TYPES else "TRADES"

    @property
    def hours(self) -> Venue:
        return hours_for(self.sec_type, self.exchange, self.primary_exchange)

    def contract(self) -> Contract:
        return Contract(
            conId=self.con_id,
            secType=self.sec_type,
            exchange=self.exchange,
            currency=self.currency,
            localSymbol=self.symbol,
        )


def resolve_streams(home: Path, config: LiveConfig) -> list[ResolvedStream]:
    """Every configured stream's contract from the current security master, in config order."""
    master = read_dataset(home, "security_master")
    if master.is_empty():
        raise LiveConfigError(
            f"the warehouse at {home} has no security master yet",
            "run `ibw universe` (or `ibw demo`) first to resolve the universe file into it",
        )
    current = master.filter(pl.col("valid_to").is_null())
    return [_resolve(current, spec, home) for spec in config.streams]


def _resolve(current: pl.DataFrame, spec: StreamSpec, home: Path) -> ResolvedStream:
    if spec.con_id is not None:
        rows = current.filter(pl.col("con_id") == spec.con_id)
    else:
        named = (pl.col("symbol").str.to_uppercase() == spec.symbol) | (
            pl.col("local_symbol").str.to_uppercase() == spec.symbol
        )
        rows = current.filter(named)
    if spec.sec_type:
        rows = rows.filter(pl.col("sec_type") == spec.sec_type)
    elif rows.height > 1 and (rows["sec_type"] == "STK").sum() == 1:
        rows = rows.filter(pl.col("sec_type") == "STK")  # AAPL is the stock, not its CFD
    if rows.is_empty():
        raise LiveConfigError(
            f"{spec.name} is not in the security master at {home}",
            "add it to the universe, then run the contracts asset (or `ibw demo`) first",
            subject="live streams",
        )
    if rows.height > 1:
        found = ", ".join(
            f"{r['local_symbol']} {r['sec_type']} ({r['con_id']})"
            for r in rows.head(5).iter_rows(named=True)
        )
        raise LiveConfigError(
            f"{spec.name} matches {rows.height} contracts: {found}",
            "give its sec_type, its local symbol or its con_id",
            subject="live streams",
        )
    row = rows.row(0, named=True)
    return ResolvedStream(
        row["con_id"],
        row["local_symbol"] or row["symbol"],
        row["sec_type"],
        row["exchange"],
        row["primary_exchange"] or "",
        row["currency"],
        row["time_zone_id"],
        row["trading_hours"],
        row["liquid_hours"],
        spec.ticks,
        spec.bars,
    )
