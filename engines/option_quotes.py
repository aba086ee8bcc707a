"""A day's option quotes: every option of the day's stored chain (`option_chains`), pictured
once through IB within the market-data lines it may hold, validated, and written as the day's
partition of `option_quotes` (a second run the same day replaces it).

Why the lines are a setting: IB gives a login 100 market-data lines by default (more with
commissions or quote booster packs), shared by every client of the login, and the live service
holds some of them; the quotes take at most `lines` at once and leave the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

import polars as pl
from ib_async import Contract

from ibkr.client import IBClient
from ibkr.exceptions import IBWError
from ibkr.option_quotes import DEFAULT_WAIT, QuoteRun, take_quotes
from warehouse.catalog import refresh_catalog
from warehouse.parquet import read_partition, write_partition
from warehouse.quarantine import write_quarantine
from warehouse.validation import split_valid

DATASET = "option_quotes"
CHAIN = "option_chains"
_CHAIN_COLUMNS = (
    "snapshot_date", "underlying_con_id", "underlying_symbol", "con_id", "sec_type",
    "local_symbol", "expiry", "strike", "right", "days_to_expiry",
)  # fmt: skip


@dataclass(frozen=True)
class QuoteSettings:
    """When the day's quotes are taken ($IBW_OPTION_QUOTES_AT, HH:MM New York; 15:45 is late
    enough for the day's volume and before the 16:00 close) and how many market-data lines they
    may hold at once ($IBW_OPTION_QUOTES_LINES)."""

    at: time = time(15, 45)
    lines: int = 80
    wait: float = DEFAULT_WAIT

    @classmethod
    def from_env(cls) -> QuoteSettings:
        at = os.environ.get("IBW_OPTION_QUOTES_AT", f"{cls.at:%H:%M}")
        lines = os.environ.get("IBW_OPTION_QUOTES_LINES", str(cls.lines))
        try:
            return cls(at=time.fromisoformat(at), lines=int(lines))
        except ValueError:
            raise IBWError(
                f"IBW_OPTION_QUOTES_AT={at!r} or IBW_OPTION_QUOTES_LINES={lines!r} is not valid",
                "give a New York time as HH:MM and a whole number of lines",
            ) from None


@dataclass(frozen=True)
class QuoteReport:
    day: date
    options: int  # in the day's stored chain
    rows: int
    quarantined: int
    run: QuoteRun
    written: Path | None


def chain_of(home: Path, day: date) -> pl.DataFrame:
    """The day's stored chain, or an empty frame when none was taken."""
    return with_option_types(read_partition(home, CHAIN, {"snapshot_date": day.isoformat()}))


def with_option_types(chain: pl.DataFrame) -> pl.DataFrame:
    """Chains stored before futures options were taken have no sec_type: their options are
    all OPT."""
    if chain.is_empty():
        return chain
    if "sec_type" not in chain.columns:
        return chain.with_columns(sec_type=pl.lit("OPT"))
    return chain.with_columns(pl.col("sec_type").fill_null("OPT"))


def contract_of(row: dict) -> Contract:
    """The qualified option of a chain row, as a market-data request names it."""
    return Contract(
        conId=row["con_id"],
        symbol=row["underlying_symbol"],
        secType=row["sec_type"],
        lastTradeDateOrContractMonth=f"{row['expiry']:%Y%m%d}",
        strike=row["strike"],
        right=row["right"],
        multiplier=row["multiplier"],
        exchange=row["exchange"],
        currency="USD",
        localSymbol=row["local_symbol"],
        tradingClass=row["trading_class"],
    )


async def take_option_quotes(
    client: IBClient,
    home: Path,
    day: date,
    settings: QuoteSettings,
    request_id: str,
    source: str,
) -> QuoteReport:
    """Picture the day's chain and store it as the day's partition (replacing an earlier one)."""
    chain = chain_of(home, day)
    contracts = [contract_of(r) for r in chain.iter_rows(named=True)]
    run = await take_quotes(client, contracts, settings.lines, settings.wait)
    if not run.rows:
        return QuoteReport(day, chain.height, 0, 0, run, None)
    taken = pl.DataFrame(run.rows, infer_schema_length=None)
    rows = chain.select(_CHAIN_COLUMNS).join(taken, on="con_id", how="inner")
    rows = rows.with_columns(
        request_id=pl.lit(request_id), fetched_at=pl.lit(datetime.now(UTC)), source=pl.lit(source)
    )
    origin = f"{DATASET} {day}"
    valid, rejected = split_valid(rows, DATASET, origin=origin)
    written = write_partition(home, DATASET, valid, {"snapshot_date": day.isoformat()})
    write_quarantine(home, rejected, DATASET, origin=origin)
    refresh_catalog(home)
    return QuoteReport(day, chain.height, valid.height, rejected.height, run, written)


def parity_residuals(quotes: pl.DataFrame) -> pl.DataFrame:
    """Put-call parity at each strike, without assuming a rate or dividends: for European
    options C - P = D(F - K) for each expiry, a straight line in K, so the line is fitted by least
    squares over the expiry's strikes (mids of both sides) and each strike's distance from it is
    compared with the two markets' spreads. One row per underlying, expiry and strike with both
    sides quoted: `residual`, `tolerance` (the sum of both spreads, at least a cent)."""
    quoted = quotes.filter(pl.col("bid").is_not_null() & pl.col("ask").is_not_null())
    sides = quoted.select(
        "underlying_symbol", "expiry", "strike", "right",
        mid=(pl.col("bid") + pl.col("ask")) / 2, spread=pl.col("ask") - pl.col("bid"),
    )  # fmt: skip
    keys = ["underlying_symbol", "expiry", "strike"]
    calls = sides.filter(pl.col("right") == "C").drop("right")
    puts = sides.filter(pl.col("right") == "P").drop("right")
    pairs = calls.join(puts, on=keys, suffix="_put").with_columns(
        y=pl.col("mid") - pl.col("mid_put"),
        tolerance=pl.max_horizontal(pl.col("spread") + pl.col("spread_put"), pl.lit(0.01)),
    )
    by = ["underlying_symbol", "expiry"]
    k, y = pl.col("strike"), pl.col("y")
    slope = ((k - k.mean()) * (y - y.mean())).sum() / ((k - k.mean()) ** 2).sum()
    fitted = pairs.with_columns(
        slope=slope.over(by), k_mean=k.mean().over(by), y_mean=y.mean().over(by),
        strikes=pl.len().over(by),
    ).filter(pl.col("strikes") >= 3)  # fmt: skip
    return fitted.select(
        *keys,
        residual=(y - (pl.col("y_mean") + pl.col("slope") * (k - pl.col("k_mean")))).abs(),
        tolerance="tolerance",
    )
