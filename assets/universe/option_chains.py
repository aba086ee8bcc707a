"""The `option_chains` asset: each trading day's chain snapshot, bounded by the universe's
windows, and its `chain_inside_window` check.

IB keeps no history of expired options, so a day's chain can only be taken on that day (the
gateway's day, not this machine's). Only the contracts inside the window are qualified. A click
on a past day therefore stores nothing and says why in the run's log, as a warning: it is not a
failure of the asset, whose last good day stays as it was.
"""

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg
import polars as pl
from ib_async import Contract, ContractDetails, FuturesOption, Option

from assets.failures import one_sentence_failures
from assets.metadata import OWNERS, dataset_metadata
from assets.resources import IBResource, UniverseResource, WarehouseResource
from assets.trading_days import TRADING_DAYS, daily_check, is_gateway_today
from ibfacts.resets import NEW_YORK, ib_day
from ibkr import errors
from ibkr.client import IBClient
from ibkr.universe import OptionWindow
from warehouse.catalog import refresh_catalog
from warehouse.parquet import read_dataset, read_partition, write_partition
from warehouse.quarantine import write_quarantine
from warehouse.validation import split_valid

DATASET = "option_chains"
QUALIFY_BATCH = 50
# The schedule takes the chain at 10:00 New York, after the open, so every underlying has a last
# price; a chain missing at 11:00 on a weekday turns the asset's freshness red (cron knows no
# holidays: on an XNYS holiday it stays red until the next trading day's chain lands).
SNAPSHOT_AT = time(10)
FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron="0 11 * * 1-5",
    lower_bound_delta=timedelta(minutes=90),  # taken after the 09:30 open
    timezone=str(NEW_YORK),
)


# What the day's chain and quotes share: a partition per trading day, taken through the gateway
# on that day only (a past day stores nothing, and that is not a failure).
TODAYS_PICTURE = {
    "group_name": "universe",
    "kinds": {"ib", "parquet"},
    "pool": "ib_gateway",
    "partitions_def": TRADING_DAYS,
    "output_required": False,
    "owners": OWNERS,
}


@dg.asset(
    **TODAYS_PICTURE,
    deps=["contracts"],
    metadata=dataset_metadata(DATASET),
    freshness_policy=FRESHNESS,
    description="The option contracts of one trading day inside each underlying's window "
    "(days to expiry, moneyness around the last close) from the universe file's `options:`: "
    "the chain's parameters (reqSecDefOptParams), then only the contracts inside the window "
    "qualified (reqContractDetails). IB keeps no expired options, so only the gateway's today "
    "can be taken; the `daily_option_chains` schedule takes it after the open.",
)
def option_chains(
    context: dg.AssetExecutionContext,
    ib: IBResource,
    warehouse: WarehouseResource,
    universe: UniverseResource,
):
    day = date.fromisoformat(context.partition_key)
    with one_sentence_failures():
        windows = universe.load().options
        home = warehouse.path
        underlyings = _underlyings(read_dataset(home, "security_master"), windows, day)
        with ib.client(context.run.run_id) as client:
            if not is_gateway_today(context, ib_day(client.run(client.now())), "option chains"):
                return
            stats: dict[str, dict] = {}
            frames = []
            for window in windows:
                underlying = underlyings.get((window.underlying, window.sec_type))
                if underlying is None:
                    kind = "a live future of " if window.sec_type == "FOP" else ""
                    raise dg.Failure(
                        f"{kind}{window.underlying} is not in the security master: add it to "
                        "the universe's entries and materialize `contracts` first."
                    )
                context.log.info(f"Asking IB for the {window.underlying} chain of {day}.")
                rows, stats[window.underlying] = client.run(_chain(client, underlying, window, day))
                frames.append(rows)
            requests = client.requests
    fetched_at = datetime.now(UTC)
    chain = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    chain = chain.with_columns(
        request_id=pl.lit(context.run.run_id),
        fetched_at=pl.lit(fetched_at),
        source=pl.lit(ib.source),
    )
    origin = f"option_chains {day}"
    valid, rejected = split_valid(chain, DATASET, origin=origin)
    written = write_partition(home, DATASET, valid, {"snapshot_date": day.isoformat()})
    write_quarantine(home, rejected, DATASET, origin=origin)
    refresh_catalog(home)
    context.log.info(f"Wrote {valid.height} contracts to {written}.")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid.height,
            "underlyings": len(stats),
            "expiries": sum(s["expiries"] for s in stats.values()),
            "strikes": sum(s["strikes"] for s in stats.values()),
            "contracts_in_window": sum(s["in_window"] for s in stats.values()),
            "contracts_qualified": sum(s["qualified"] for s in stats.values()),
            "requests": requests,
            "rows_quarantined": rejected.height,
            "by_underlying": dg.MetadataValue.json(stats),
        }
    )


@daily_check(
    asset=option_chains,
    name="chain_inside_window",
    blocking=True,
    description="Every stored contract of the day lies inside its underlying's window of the "
    "universe file (0 to max_days_to_expiry days, min to max moneyness); counts the contracts "
    "outside, per underlying.",
)
def chain_inside_window(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    universe: UniverseResource,
) -> dg.AssetCheckResult:
    day = context.partition_key
    chain = read_partition(warehouse.path, DATASET, {"snapshot_date": day})
    metadata: dict[str, dg.RawMetadataValue] = {}
    outside_of, total = [], 0
    for window in universe.load().options:
        rows = _of(chain, window.underlying)
        outside = sum(
            not window.contains(r["days_to_expiry"], r["moneyness"])
            for r in rows.iter_rows(named=True)
        )
        metadata[f"{window.underlying}_contracts"] = rows.height
        metadata[f"{window.underlying}_outside"] = outside
        total += outside
        if outside:
            outside_of.append(f"{window.underlying} ({outside} of {rows.height})")
    metadata["contracts_outside"] = total
    return dg.AssetCheckResult(
        passed=not outside_of,
        metadata=metadata,
        description=(
            f"Contracts outside the window of {', '.join(outside_of)} on {day}."
            if outside_of
            else f"Every contract of {day} is inside its window."
        ),
    )


UNDERLYING_TYPES = {"OPT": ("STK", "IND"), "FOP": ("FUT",)}


def _underlyings(
    master: pl.DataFrame, windows: tuple[OptionWindow, ...], day: date
) -> dict[tuple[str, str], Contract]:
    """Each window's underlying by (symbol, option type): the stock or index for options, the
    front future (the nearest expiry not before `day`) for futures options."""
    if master.is_empty():
        return {}
    current = master.filter(pl.col("valid_to").is_null())
    found: dict[tuple[str, str], Contract] = {}
    for window in windows:
        rows = current.filter(
            (pl.col("symbol") == window.underlying)
            & pl.col("sec_type").is_in(UNDERLYING_TYPES[window.sec_type])
            & (pl.col("expiry").is_null() | (pl.col("expiry") >= day))
        ).sort("expiry", nulls_last=True)
        for row in rows.head(1).iter_rows(named=True):
            found[(window.underlying, window.sec_type)] = Contract(
                conId=row["con_id"],
                symbol=row["symbol"],
                secType=row["sec_type"],
                exchange="SMART" if row["sec_type"] == "STK" else row["exchange"],
                currency=row["currency"],
                localSymbol=row["local_symbol"],
            )
    return found


async def _chain(
    client: IBClient, underlying: Contract, window: OptionWindow, day: date
) -> tuple[pl.DataFrame, dict]:
    """Ask for the chain's parameters, keep the window, qualify only what is in it."""
    price = await client.last_close(underlying)
    if not price:
        raise errors.NoData(subject=f"last price of {underlying.symbol}")
    params = [
        p for p in await client.option_parameters(underlying) if p.exchange == window.exchange
    ]
    expiries = sorted({e for p in params for e in p.expirations})
    strikes = sorted({s for p in params for s in p.strikes})
    keep_expiries = [e for e in expiries if 0 <= _dte(e, day) <= window.max_days_to_expiry]
    keep_strikes = [s for s in strikes if window.min_moneyness <= s / price <= window.max_moneyness]
    kind = FuturesOption if window.sec_type == "FOP" else Option
    candidates = [
        kind(underlying.symbol, e, s, right, window.exchange, currency=underlying.currency)
        for e in keep_expiries
        for s in keep_strikes
        for right in ("C", "P")
    ]
    answers = await client.details_many(candidates, "option", QUALIFY_BATCH)
    rows = []
    for answer in answers:
        if isinstance(answer, errors.ContractNotFound):
            continue  # not listed for that expiry: nothing to snapshot
        if isinstance(answer, errors.IBWError):
            raise answer
        rows += [_row(d, underlying, price, day) for d in answer]
    stats = {
        "expiries": len(keep_expiries),
        "strikes": len(keep_strikes),
        "in_window": len(candidates),
        "qualified": len(rows),
        "underlying_price": price,
    }
    return pl.DataFrame(rows, infer_schema_length=None), stats


def _dte(expiry: str, day: date) -> int:
    return (datetime.strptime(expiry[:8], "%Y%m%d").date() - day).days


def _row(details: ContractDetails, underlying: Contract, price: float, day: date) -> dict:
    c = details.contract
    return {
        "snapshot_date": day,
        "underlying_con_id": underlying.conId,
        "underlying_symbol": underlying.symbol,
        "con_id": c.conId,
        "sec_type": c.secType,
        "local_symbol": c.localSymbol,
        "expiry": datetime.strptime(c.lastTradeDateOrContractMonth[:8], "%Y%m%d").date(),
        "strike": c.strike,
        "right": c.right,
        "exchange": c.exchange,
        "multiplier": c.multiplier,
        "trading_class": c.tradingClass,
        "underlying_price": price,
        "days_to_expiry": _dte(c.lastTradeDateOrContractMonth, day),
        "moneyness": c.strike / price,
    }


def _of(chain: pl.DataFrame, underlying: str) -> pl.DataFrame:
    if chain.is_empty():
        return chain
    return chain.filter(pl.col("underlying_symbol") == underlying)
