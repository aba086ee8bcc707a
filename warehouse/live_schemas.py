"""The live service's datasets, one pandera model each: the streamed `live_ticks` and
`live_bars`, the intraday `live_positions`, `live_pnl` and `live_account_values` (all stored by
`live_streams`), and the order manager's `live_orders`, `live_fills` and `live_differences`
(stored by `live_orders`); `LIVE_SCHEMAS` names them. The `alerts` that the live service and
Dagster raise (stored by `alerts`) are in `ALERT_SCHEMAS`, apart: Dagster observes the
service's datasets, not these. `schemas.SCHEMAS` includes both, so validation and the
quarantine know them like any other dataset.
"""

from __future__ import annotations

from typing import ClassVar

import pandera.polars as pa
import polars as pl

from warehouse.columns import Lineage, UtcDatetime

TICKS = "live_ticks"
BARS = "live_bars"
ORDERS = "live_orders"
FILLS = "live_fills"
DIFFERENCES = "live_differences"
POSITIONS = "live_positions"
PNL = "live_pnl"
ACCOUNT_VALUES = "live_account_values"
ALERTS = "alerts"

BAR_SECONDS = 5  # the only real-time bar IB builds
SOURCES = ("stream", "refill")  # what delivered a bar: the real-time stream or a refill request
ORDER_STATES = ["new", "refused", "sending", "working", "done"]
ALERT_STATES = ["fired", "resolved"]
ALERT_SOURCES = ["live", "dagster"]


class LiveTick(pa.DataFrameModel):
    """One level-1 update of a contract: the quote and last trade as they stood at `time`.

    A side IB has not quoted (or quoted as -1) is null. `time` is the gateway's time of the
    update, `received_at` this machine's.
    """

    con_id: pl.Int64 = pa.Field(gt=0)
    time: UtcDatetime
    bid: pl.Float64 = pa.Field(nullable=True)
    ask: pl.Float64 = pa.Field(nullable=True)
    last: pl.Float64 = pa.Field(nullable=True)
    bid_size: pl.Float64 = pa.Field(nullable=True, ge=0)
    ask_size: pl.Float64 = pa.Field(nullable=True, ge=0)
    last_size: pl.Float64 = pa.Field(nullable=True, ge=0)
    volume: pl.Float64 = pa.Field(nullable=True, ge=0)
    received_at: UtcDatetime

    class Config:
        strict = True
        coerce = True


class LiveBar(pa.DataFrameModel):
    """One 5-second bar; `time` is its start (UTC). `source` says whether the real-time stream
    delivered it or a historical request refilled a gap. Quote bars (MIDPOINT) carry no volume,
    WAP or count: IB sends -1, stored as null."""

    con_id: pl.Int64 = pa.Field(gt=0)
    time: UtcDatetime
    open: pl.Float64
    high: pl.Float64
    low: pl.Float64
    close: pl.Float64
    volume: pl.Float64 = pa.Field(nullable=True, ge=0)
    wap: pl.Float64 = pa.Field(nullable=True)
    count: pl.Int64 = pa.Field(nullable=True, ge=0)
    source: str = pa.Field(isin=list(SOURCES))
    received_at: UtcDatetime

    class Config:
        strict = True
        coerce = True
        unique: ClassVar[list[str]] = ["con_id", "time"]

    @pa.dataframe_check(name="low <= open, close <= high")
    def _ohlc(cls, data: pa.PolarsData) -> pl.LazyFrame:
        low, high = pl.col("low"), pl.col("high")
        inside = [(low <= pl.col(c)) & (pl.col(c) <= high) for c in ("open", "close")]
        return data.lazyframe.select(inside[0] & inside[1])

    @pa.dataframe_check(name="time must start a 5-second bar")
    def _on_grid(cls, data: pa.PolarsData) -> pl.LazyFrame:
        micros = pl.col("time").dt.epoch("us")
        return data.lazyframe.select(micros % (BAR_SECONDS * 1_000_000) == 0)


class LivePosition(pa.DataFrameModel):
    """An account's position in a contract from `time` on (IB's position message, pushed on
    every change). `aggregate` rows sum an FA master's sub-accounts: `account` is the master,
    and `avg_cost` is the quantity-weighted average while every sub-account is on one side."""

    time: UtcDatetime
    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(gt=0)
    position: pl.Float64
    avg_cost: pl.Float64 = pa.Field(nullable=True)
    aggregate: pl.Boolean

    class Config:
        strict = True
        coerce = True


class LivePnL(pa.DataFrameModel):
    """An account's P&L from `time` on, in its base currency: the account's (IB's pnl, `con_id`
    null) or one contract's (pnlSingle, with the position and its market value). A figure IB
    has not computed is null. `aggregate` rows sum an FA master's sub-accounts."""

    time: UtcDatetime
    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(nullable=True, gt=0)
    daily_pnl: pl.Float64 = pa.Field(nullable=True)
    unrealized_pnl: pl.Float64 = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)
    position: pl.Float64 = pa.Field(nullable=True)
    value: pl.Float64 = pa.Field(nullable=True)
    aggregate: pl.Boolean

    class Config:
        strict = True
        coerce = True


class LiveAccountValue(pa.DataFrameModel):
    """One account value from `time` on (IB's account updates: NetLiquidation, the ledger per
    currency, ...) as IB wrote it, and as a number when it is one."""

    time: UtcDatetime
    account: str = pa.Field(str_length={"min_value": 1})
    key: str = pa.Field(str_length={"min_value": 1})
    currency: str
    value: str
    amount: pl.Float64 = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class LiveOrder(Lineage):
    """One journaled intent with the gateway's latest word on it (quantity/prices as modified)."""

    day: pl.Date
    key: str = pa.Field(str_length={"min_value": 1})
    state: str = pa.Field(isin=ORDER_STATES)
    account: str
    con_id: pl.Int64 = pa.Field(gt=0)
    action: str = pa.Field(isin=["BUY", "SELL"])
    quantity: pl.Float64 = pa.Field(ge=0)  # 0: sized by cash_quantity
    cash_quantity: pl.Float64 = pa.Field(gt=0, nullable=True)
    order_type: str
    limit_price: pl.Float64 = pa.Field(nullable=True)
    aux_price: pl.Float64 = pa.Field(nullable=True)
    tif: str
    fa_group: str
    parent_key: str
    order_id: pl.Int64 = pa.Field(nullable=True)
    perm_id: pl.Int64 = pa.Field(nullable=True)
    client_id: pl.Int64 = pa.Field(nullable=True)
    status: str = pa.Field(nullable=True)
    filled: pl.Float64 = pa.Field(nullable=True)
    remaining: pl.Float64 = pa.Field(nullable=True)
    avg_fill_price: pl.Float64 = pa.Field(nullable=True)
    cancel_requested: pl.Boolean
    modification_state: str = pa.Field(nullable=True)
    reason: str = pa.Field(nullable=True)
    intent: str
    created_at: UtcDatetime
    updated_at: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["key"]


class LiveFill(Lineage):
    """One execution; a corrected one stays, with `superseded_by` naming its correction."""

    day: pl.Date
    exec_id: str = pa.Field(str_length={"min_value": 1})
    base_id: str
    key: str = pa.Field(nullable=True)  # null: a fill no journaled order explains
    order_id: pl.Int64 = pa.Field(nullable=True)
    perm_id: pl.Int64 = pa.Field(nullable=True)
    account: str = pa.Field(str_length={"min_value": 1})
    con_id: pl.Int64 = pa.Field(gt=0)
    side: str = pa.Field(isin=["BOT", "SLD"])
    shares: pl.Float64 = pa.Field(gt=0)
    price: pl.Float64
    time: UtcDatetime
    superseded_by: str = pa.Field(nullable=True)
    commission: pl.Float64 = pa.Field(nullable=True, ge=0)
    commission_currency: str = pa.Field(nullable=True)
    realized_pnl: pl.Float64 = pa.Field(nullable=True)

    class Config:
        unique: ClassVar[list[str]] = ["exec_id"]


class LiveDifference(Lineage):
    """A disagreement reconciliation found between the journal and the gateway."""

    day: pl.Date
    kind: str = pa.Field(isin=["unknown_order", "fill_without_intent", "order_missing", "position"])
    subject: str
    key: str = pa.Field(nullable=True)
    account: str = pa.Field(nullable=True)
    con_id: pl.Int64 = pa.Field(nullable=True)
    detail: str
    first_seen: UtcDatetime
    last_seen: UtcDatetime

    class Config:
        unique: ClassVar[list[str]] = ["kind", "subject"]


class AlertRow(pa.DataFrameModel):
    """One alert sent (or, with no channel or a failing one, only recorded): a condition about a
    subject fired, or later resolved. `channels` counts the URLs it went to; `delivered` says
    whether every one of them took it."""

    at: UtcDatetime
    condition: str = pa.Field(str_length={"min_value": 1})
    subject: str
    state: str = pa.Field(isin=ALERT_STATES)
    sentence: str
    source: str = pa.Field(isin=ALERT_SOURCES)
    delivered: pl.Boolean
    channels: pl.Int64 = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = True


LIVE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    TICKS: LiveTick,
    BARS: LiveBar,
    ORDERS: LiveOrder,
    FILLS: LiveFill,
    DIFFERENCES: LiveDifference,
    POSITIONS: LivePosition,
    PNL: LivePnL,
    ACCOUNT_VALUES: LiveAccountValue,
}
ALERT_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {ALERTS: AlertRow}
