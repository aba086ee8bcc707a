"""Bars to wire text, vectorised with polars: the gateway's hot path for large requests."""

from __future__ import annotations

import numpy as np
import polars as pl

from ibfacts.history import NO_VOLUME_WHAT
from ibfacts.venues import VENUES
from ibsim.market.bars import Bars
from ibsim.market.instruments import Instrument

WAP_EXTRA_DIGITS = 2
COLUMNS = ("date", "open", "high", "low", "close", "volume", "wap", "count")


def _fixed(column: pl.Expr, decimals: int) -> pl.Expr:
    """Integer units as an exact decimal string (no binary float round trip)."""
    if decimals == 0:
        return column.cast(pl.String)
    scale = 10**decimals
    return pl.concat_str(
        (column // scale).cast(pl.String),
        pl.lit("."),
        (column % scale).cast(pl.String).str.zfill(decimals),
    )


def bar_table(bars: Bars, inst: Instrument, what: str, format_date: int) -> pl.DataFrame:
    """One string column per bar field, in the order of msg 17."""
    v = bars.values
    d = inst.decimals
    frame = pl.DataFrame(
        {
            "start": v.start,
            "open": v.open,
            "high": v.high,
            "low": v.low,
            "close": v.close,
            "volume": v.volume,
            "count": v.count,
            "wap": _wap_units(bars),
            "session": bars.session_dates,
        }
    )
    quote = what in NO_VOLUME_WHAT or not inst.volume_per_minute
    minus_one = pl.lit("-1")
    return frame.select(
        _date_expr(bars.intraday, inst, format_date).alias("date"),
        *(_fixed(pl.col(c), d).alias(c) for c in ("open", "high", "low", "close")),
        (minus_one if quote else pl.col("volume").cast(pl.String)).alias("volume"),
        (minus_one if quote else _fixed(pl.col("wap"), d + WAP_EXTRA_DIGITS)).alias("wap"),
        (minus_one if quote else pl.col("count").cast(pl.String)).alias("count"),
    )


def _wap_units(bars: Bars) -> np.ndarray:
    """WAP in units of 10**-(decimals + WAP_EXTRA_DIGITS)."""
    v = bars.values
    typical = (v.high + v.low + v.close) / 3.0
    volume = np.maximum(v.volume, 1)
    wap = np.where(v.volume > 0, v.wapv / volume, typical)
    return np.rint(wap * 10**WAP_EXTRA_DIGITS).astype(np.int64)


def _date_expr(intraday: bool, inst: Instrument, format_date: int) -> pl.Expr:
    if not intraday:
        return pl.col("session").dt.strftime("%Y%m%d")
    if format_date == 2:
        return pl.col("start").cast(pl.String)
    venue = VENUES[inst.venue]
    local = pl.from_epoch("start", "s").dt.replace_time_zone("UTC").dt.convert_time_zone(venue.tz)
    pattern = "%m%d %H:%M:%S" if format_date == 3 else "%Y%m%d %H:%M:%S"
    return pl.concat_str(local.dt.strftime(pattern), pl.lit(" " + venue.ib_tz))


def payload(header: list[object], table: pl.DataFrame) -> bytes:
    """msg 17: the header fields, then every bar's eight fields, NUL-terminated."""
    head = "".join(f"{f}\0" for f in header)
    if table.height == 0:
        return head.encode()
    rows = table.select(pl.concat_str(list(COLUMNS), separator="\0").alias("row"))["row"]
    return (head + rows.str.join("\0").item() + "\0").encode()


def update_fields(table: pl.DataFrame) -> list[str]:
    """The last bar in msg 90 order: barCount, date, open, close, high, low, wap, volume."""
    row = table.row(table.height - 1, named=True)
    return [row[c] for c in ("count", "date", "open", "close", "high", "low", "wap", "volume")]
