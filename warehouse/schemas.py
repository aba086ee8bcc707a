"""One pandera model per batch dataset (the columns, their types and the checks every row must
pass) and the registry `SCHEMAS` of every dataset, the live ones (`live_schemas`) included, with
`polars_schema`, a dataset's columns as stored. Shared column types live in `columns`.

`coerce = True` lets a producer hand in near-miss types (Int32 for Int64, naive datetimes taken as
UTC); `strict = True` refuses columns nobody declared, so a typo never becomes a new column.
"""

from __future__ import annotations

from typing import ClassVar

import pandera.polars as pa
import polars as pl

from warehouse.columns import LINEAGE, SEC_TYPES, Lineage, UtcDatetime
from warehouse.live_schemas import ALERT_SCHEMAS, LIVE_SCHEMAS

# Tolerance for moneyness == strike / underlying_price: both are stored as given, in float64.
MONEYNESS_RTOL = 1e-9


class SecurityMaster(Lineage):
    """One row per version of a contract; `valid_to` null marks the current version."""

    con_id: pl.Int64 = pa.Field(gt=0)
    symbol: str = pa.Field(str_length={"min_value": 1})
    local_symbol: str
    sec_type: str = pa.Field(isin=SEC_TYPES)
    exchange: str
    primary_exchange: str = pa.Field(nullable=True)
    currency: str = pa.Field(str_matches=r"^[A-Z]{3}$")
    multiplier: str = pa.Field(nullable=True)
    expiry: pl.Date = pa.Field(nullable=True)
    trading_class: str
    min_tick: pl.Float64 = pa.Field(gt=0)
    time_zone_id: str
    trading_hours: str
    liquid_hours: str
    long_name: str
    universe_entry: str
    valid_from: UtcDatetime
    valid_to: UtcDatetime = pa.Field(nullable=True)
    first_seen: UtcDatetime
    last_seen: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["con_id", "valid_from"]

    @pa.dataframe_check(name="valid_to must be after valid_from")
    def _valid_range(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("valid_from"))
        )

    @pa.dataframe_check(name="first_seen <= valid_from and valid_from <= last_seen")
    def _seen_order(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("first_seen") <= pl.col("valid_from"))
            & (pl.col("valid_from") <= pl.col("last_seen"))
        )


class OptionOfTheDay(Lineage):
    """An option contract as a day's chain and quotes name it (partitioned by snapshot_date)."""

    snapshot_date: pl.Date
    underlying_con_id: pl.Int64 = pa.Field(gt=0)
    underlying_symbol: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(gt=0)
    sec_type: str = pa.Field(isin=["OPT", "FOP"])
    local_symbol: str
    expiry: pl.Date
    strike: pl.Float64 = pa.Field(gt=0)
    right: str = pa.Field(isin=["C", "P"])


class OptionChain(OptionOfTheDay):
    """The qualified option contracts of one daily snapshot (partitioned by snapshot_date)."""

    exchange: str
    multiplier: str
    trading_class: str
    underlying_price: pl.Float64 = pa.Field(gt=0)
    days_to_expiry: pl.Int32 = pa.Field(ge=0)
    moneyness: pl.Float64 = pa.Field(gt=0)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "con_id"]

    @pa.dataframe_check(name="moneyness must equal strike / underlying_price")
    def _moneyness(cls, data: pa.PolarsData) -> pl.LazyFrame:
        expected = pl.col("strike") / pl.col("underlying_price")
        return data.lazyframe.select(
            (pl.col("moneyness") - expected).abs() <= MONEYNESS_RTOL * expected.abs()
        )

    @pa.dataframe_check(name="days_to_expiry must equal expiry - snapshot_date")
    def _days_to_expiry(cls, data: pa.PolarsData) -> pl.LazyFrame:
        days = (pl.col("expiry") - pl.col("snapshot_date")).dt.total_days()
        return data.lazyframe.select(pl.col("days_to_expiry") == days)


class OptionQuote(OptionOfTheDay):
    """One picture of each option of a day's chain (partitioned by snapshot_date): its market,
    and IB's model computation (implied vol and greeks: delta, gamma, vega per vol point, theta
    per day). What IB did not send is null; the bounds are those no real quote can break."""

    days_to_expiry: pl.Int32 = pa.Field(ge=0)
    bid: pl.Float64 = pa.Field(ge=0, nullable=True)
    ask: pl.Float64 = pa.Field(ge=0, nullable=True)
    last: pl.Float64 = pa.Field(ge=0, nullable=True)
    bid_size: pl.Float64 = pa.Field(ge=0, nullable=True)
    ask_size: pl.Float64 = pa.Field(ge=0, nullable=True)
    volume: pl.Float64 = pa.Field(ge=0, nullable=True)
    open_interest: pl.Float64 = pa.Field(ge=0, nullable=True)
    implied_vol: pl.Float64 = pa.Field(gt=0, nullable=True)
    delta: pl.Float64 = pa.Field(ge=-1, le=1, nullable=True)
    gamma: pl.Float64 = pa.Field(ge=0, nullable=True)
    vega: pl.Float64 = pa.Field(ge=0, nullable=True)
    theta: pl.Float64 = pa.Field(nullable=True)
    model_price: pl.Float64 = pa.Field(ge=0, nullable=True)
    pv_dividend: pl.Float64 = pa.Field(ge=0, nullable=True)
    underlying_price: pl.Float64 = pa.Field(gt=0, nullable=True)
    bid_iv: pl.Float64 = pa.Field(gt=0, nullable=True)
    ask_iv: pl.Float64 = pa.Field(gt=0, nullable=True)
    taken_at: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "con_id"]


class Quarantine(pa.DataFrameModel):
    """Rows a dataset refused, with the reason, so nothing is dropped silently."""

    dataset: str
    reason: str = pa.Field(str_length={"min_value": 1})
    origin: str
    row: str
    quarantined_at: UtcDatetime

    class Config:
        strict = True
        coerce = True


class Coverage(pa.DataFrameModel):
    """The coverage ledger: one row per (series, session) with what the warehouse holds."""

    con_id: pl.Int64 = pa.Field(gt=0)
    bar_size: str
    what_to_show: str
    use_rth: pl.Boolean
    session_date: pl.Date
    status: str = pa.Field(isin=["complete", "empty", "failed"])
    code: pl.Int32 = pa.Field(nullable=True)
    text: str = pa.Field(nullable=True)
    permanent: pl.Boolean
    attempts: pl.Int32 = pa.Field(ge=0)
    next_retry: UtcDatetime = pa.Field(nullable=True)
    updated_at: UtcDatetime

    class Config:
        strict = True
        coerce = True
        unique: ClassVar[list[str]] = [
            "con_id",
            "bar_size",
            "what_to_show",
            "use_rth",
            "session_date",
        ]

    @pa.dataframe_check(name="only failures carry a code, attempts or a retry")
    def _failure_fields(cls, data: pa.PolarsData) -> pl.LazyFrame:
        failed = pl.col("status") == "failed"
        return data.lazyframe.select(
            failed | (pl.col("code").is_null() & (pl.col("attempts") == 0) & ~pl.col("permanent"))
        )


class Bar(Lineage):
    """One historical bar; `ts` is the bar's start in UTC, `session_date` the session it is in.

    Quote bars (MIDPOINT, BID, ASK, BID_ASK) carry no volume, WAP or count: IB sends -1, stored
    as null. Prices may be negative (oil futures in April 2020).
    """

    con_id: pl.Int64 = pa.Field(gt=0)
    bar_size: str = pa.Field(str_length={"min_value": 1})
    what_to_show: str = pa.Field(str_length={"min_value": 1})
    use_rth: pl.Boolean
    session_date: pl.Date = pa.Field(nullable=True)  # null: the bar is in no expected session
    ts: UtcDatetime
    open: pl.Float64
    high: pl.Float64
    low: pl.Float64
    close: pl.Float64
    volume: pl.Float64 = pa.Field(nullable=True, ge=0)
    wap: pl.Float64 = pa.Field(nullable=True)
    bar_count: pl.Int64 = pa.Field(nullable=True, ge=0)

    class Config:
        unique: ClassVar[list[str]] = ["con_id", "bar_size", "what_to_show", "use_rth", "ts"]

    @pa.dataframe_check(name="the bar must lie inside one of the contract's expected sessions")
    def _in_session(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("session_date").is_not_null())

    @pa.dataframe_check(name="low <= open, close <= high")
    def _ohlc(cls, data: pa.PolarsData) -> pl.LazyFrame:
        low, high = pl.col("low"), pl.col("high")
        inside = [(low <= pl.col(c)) & (pl.col(c) <= high) for c in ("open", "close")]
        return data.lazyframe.select(inside[0] & inside[1])


class Snapshot(Lineage):
    """A row of the nightly account snapshot: the (America/New_York) day it describes."""

    snapshot_date: pl.Date


class Holding(Snapshot):
    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(gt=0)
    symbol: str
    sec_type: str = pa.Field(isin=SEC_TYPES)
    currency: str


class Positions(Holding):
    quantity: pl.Float64
    avg_cost: pl.Float64

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account", "con_id"]


class Portfolio(Holding):
    quantity: pl.Float64
    market_price: pl.Float64 = pa.Field(nullable=True)
    market_value: pl.Float64 = pa.Field(nullable=True)
    avg_cost: pl.Float64 = pa.Field(nullable=True)
    unrealized_pnl: pl.Float64 = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account", "con_id"]


class AccountSummary(Snapshot):
    account: str = pa.Field(str_length={"min_value": 1})
    tag: str = pa.Field(str_length={"min_value": 1})
    value: str
    currency: str = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account", "tag", "currency"]


class AccountValues(Snapshot):
    account: str = pa.Field(str_length={"min_value": 1})
    key: str = pa.Field(str_length={"min_value": 1})
    value: str
    currency: str = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account", "key", "currency"]


class Pnl(Snapshot):
    """Account P&L (con_id null) and each position's (reqPnL, reqPnLSingle)."""

    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(nullable=True, gt=0)
    position: pl.Float64 = pa.Field(nullable=True)
    daily_pnl: pl.Float64 = pa.Field(nullable=True)
    unrealized_pnl: pl.Float64 = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)
    value: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account", "con_id"]


class Executions(Holding):
    """Today's fills, one per execId after corrections; a commission not yet reported is null."""

    exec_id: str = pa.Field(str_length={"min_value": 1})
    side: str = pa.Field(isin=["BOT", "SLD"])
    shares: pl.Float64 = pa.Field(gt=0)
    price: pl.Float64
    time: UtcDatetime
    order_id: pl.Int64
    perm_id: pl.Int64
    client_id: pl.Int64
    order_ref: str = pa.Field(nullable=True)
    exchange: str
    cum_qty: pl.Float64
    avg_price: pl.Float64
    commission: pl.Float64 = pa.Field(nullable=True, ge=0)
    commission_currency: str = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "exec_id"]


class Commissions(Snapshot):
    exec_id: str = pa.Field(str_length={"min_value": 1})
    commission: pl.Float64 = pa.Field(ge=0)
    currency: str
    realized_pnl: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "exec_id"]


class Orders(Snapshot):
    order_id: pl.Int64
    perm_id: pl.Int64
    client_id: pl.Int64
    account: str = pa.Field(nullable=True)  # empty for an FA order allocated to a group
    con_id: pl.Int64 = pa.Field(gt=0)
    symbol: str
    sec_type: str = pa.Field(isin=SEC_TYPES)
    currency: str
    action: str = pa.Field(isin=["BUY", "SELL", "SSHORT"])
    quantity: pl.Float64
    order_type: str
    limit_price: pl.Float64 = pa.Field(nullable=True)
    aux_price: pl.Float64 = pa.Field(nullable=True)
    tif: str
    order_ref: str = pa.Field(nullable=True)
    status: str
    filled: pl.Float64 = pa.Field(nullable=True)
    fa_group: str = pa.Field(nullable=True)
    fa_method: str = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "perm_id"]


class OpenOrders(Orders):
    avg_fill_price: pl.Float64 = pa.Field(nullable=True)


class FaGroups(Snapshot):
    group_name: str = pa.Field(str_length={"min_value": 1})
    method: str
    account: str = pa.Field(str_length={"min_value": 1})
    amount: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "group_name", "account"]


class FaProfiles(Snapshot):
    profile: str = pa.Field(str_length={"min_value": 1})
    type: pl.Int64
    account: str = pa.Field(str_length={"min_value": 1})
    amount: pl.Float64

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "profile", "account"]


class FaAliases(Snapshot):
    account: str = pa.Field(str_length={"min_value": 1})
    alias: str

    class Config:
        unique: ClassVar[list[str]] = ["snapshot_date", "account"]


SNAPSHOT_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "positions": Positions,
    "account_summary": AccountSummary,
    "account_values": AccountValues,
    "portfolio": Portfolio,
    "pnl": Pnl,
    "executions": Executions,
    "commissions": Commissions,
    "open_orders": OpenOrders,
    "completed_orders": Orders,
    "fa_groups": FaGroups,
    "fa_profiles": FaProfiles,
    "fa_aliases": FaAliases,
}

SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "security_master": SecurityMaster,
    "option_chains": OptionChain,
    "option_quotes": OptionQuote,
    "quarantine": Quarantine,
    "coverage": Coverage,
    "bars": Bar,
    **SNAPSHOT_SCHEMAS,
    **LIVE_SCHEMAS,
    **ALERT_SCHEMAS,
}


def polars_schema(dataset: str) -> dict[str, pl.DataType]:
    """A dataset's columns and polars types as stored: its own columns first, lineage last."""
    columns = {c: col.dtype.type for c, col in SCHEMAS[dataset].to_schema().columns.items()}
    order = [c for c in columns if c not in LINEAGE] + [c for c in columns if c in LINEAGE]
    return {c: columns[c] for c in order}
