"""The `option_quotes` asset: one picture of every option of the day's chain (bid, ask, last,
sizes, volume, open interest, IB's implied vol and greeks), and its checks: no crossed market,
greeks inside their bounds, put-call parity within the quotes' spreads.

Like the chain, a day's quotes can only be taken on that day (the gateway's today); the
`daily_option_quotes` schedule takes them before the close (engines.option_quotes says when and
how many market-data lines they hold).
"""

from datetime import date, datetime, timedelta

import dagster as dg
import polars as pl

from assets.failures import one_sentence_failures
from assets.metadata import dataset_metadata
from assets.resources import IBResource, WarehouseResource
from assets.trading_days import daily_check, is_gateway_today
from assets.universe.option_chains import TODAYS_PICTURE, option_chains
from engines.option_quotes import (
    DATASET,
    QuoteSettings,
    chain_of,
    parity_residuals,
    take_option_quotes,
)
from ibfacts.resets import NEW_YORK, ib_day
from ibkr.exceptions import IBWError
from warehouse.parquet import read_partition

try:  # the schedule's time; a bad setting fails each run with its sentence, not the code location
    SETTINGS = QuoteSettings.from_env()
except IBWError:
    SETTINGS = QuoteSettings()
_DEADLINE = (datetime.combine(date.min, SETTINGS.at) + timedelta(hours=1)).time()
FRESHNESS = dg.FreshnessPolicy.cron(  # an hour after the schedule (cron knows no holidays)
    deadline_cron=f"{_DEADLINE.minute} {_DEADLINE.hour} * * 1-5",
    lower_bound_delta=timedelta(hours=1),
    timezone=str(NEW_YORK),
)


@dg.asset(
    **TODAYS_PICTURE,
    deps=[option_chains],
    metadata=dataset_metadata(DATASET),
    freshness_policy=FRESHNESS,
    description="One picture of every option of the day's stored chain: bid, ask, last, sizes, "
    "volume and open interest (generic ticks 100 and 101), and IB's model computation (implied "
    "vol, delta, gamma, vega, theta, the underlying's price, pv of dividends) with the bid's and "
    "ask's implied vols; each taken when the row's `taken_at` says. At most "
    f"{SETTINGS.lines} market-data lines at once ($IBW_OPTION_QUOTES_LINES); the "
    f"`daily_option_quotes` schedule takes them at {SETTINGS.at:%H:%M} New York.",
)
def option_quotes(context: dg.AssetExecutionContext, ib: IBResource, warehouse: WarehouseResource):
    day = date.fromisoformat(context.partition_key)
    with one_sentence_failures():
        settings = QuoteSettings.from_env()  # read at each run: a changed setting needs no reload
        if chain_of(warehouse.path, day).is_empty():
            raise dg.Failure(
                f"No option chain is stored for {day}: materialize option_chains for that day "
                "first."
            )
        with ib.client(context.run.run_id) as client:
            if not is_gateway_today(context, ib_day(client.run(client.now())), "option quotes"):
                return
            report = client.run(
                take_option_quotes(
                    client, warehouse.path, day, settings, context.run.run_id, ib.source
                )
            )
    run = report.run
    for sentence in run.errors[:10]:
        context.log.warning(sentence)
    context.log.info(
        f"Pictured {report.rows} of {report.options} options in {run.seconds:.1f} s, at most "
        f"{run.lines_peak} market-data lines at once."
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": report.rows,
            "options_in_chain": report.options,
            "options_incomplete": run.incomplete,
            "options_refused": len(run.errors),
            "rows_quarantined": report.quarantined,
            "lines_peak": run.lines_peak,
            "lines_allowed": settings.lines,
            "seconds": round(run.seconds, 2),
            "requests": run.requests,
        }
    )


def _quotes(warehouse: WarehouseResource, day: str) -> pl.DataFrame:
    return read_partition(warehouse.path, DATASET, {"snapshot_date": day})


def _result(passed: bool, count: int, metadata: dict, fail: str, ok: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=passed,
        metadata={"rows_failing": count, **metadata},
        description=fail if count else ok,
    )


@daily_check(
    asset=option_quotes,
    name="no_crossed_markets",
    blocking=True,
    description="No option's bid is above its ask.",
)
def no_crossed_markets(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    quotes = _quotes(warehouse, context.partition_key)
    crossed = quotes.filter(pl.col("bid") > pl.col("ask")).height if quotes.height else 0
    return _result(
        crossed == 0,
        crossed,
        {"rows": quotes.height},
        f"{crossed} options have a bid above their ask on {context.partition_key}.",
        "No crossed market.",
    )


@daily_check(
    asset=option_quotes,
    name="greeks_within_bounds",
    description="Calls have a delta in [0, 1], puts in [-1, 0]; gamma and vega are not negative; "
    "implied vols lie between 1% and 500%.",
)
def greeks_within_bounds(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    quotes = _quotes(warehouse, context.partition_key)
    if quotes.is_empty():
        return _result(True, 0, {"rows": 0}, "", "No quotes stored for the day.")
    call = pl.col("right") == "C"
    delta_ok = (
        pl.when(call)
        .then(pl.col("delta").is_between(0, 1))
        .otherwise(pl.col("delta").is_between(-1, 0))
    )
    ok = (
        delta_ok.fill_null(True)
        & (pl.col("gamma") >= 0).fill_null(True)
        & (pl.col("vega") >= 0).fill_null(True)
        & pl.col("implied_vol").is_between(0.01, 5.0).fill_null(True)
    )
    bad = quotes.filter(~ok).height
    return _result(
        bad == 0,
        bad,
        {"rows": quotes.height, "rows_with_greeks": quotes["delta"].is_not_null().sum()},
        f"{bad} options have greeks outside their bounds on {context.partition_key}.",
        "Every option's greeks are inside their bounds.",
    )


@daily_check(
    asset=option_quotes,
    name="put_call_parity",
    description="At each strike with a call and a put quoted, C - P lies on its expiry's parity "
    "line (fitted over the strikes, so no rate or dividend is assumed) within the two markets' "
    "spreads.",
)
def put_call_parity(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    quotes = _quotes(warehouse, context.partition_key)
    pairs = parity_residuals(quotes) if quotes.height else pl.DataFrame()
    bad = pairs.filter(pl.col("residual") > pl.col("tolerance")).height if pairs.height else 0
    worst = float(pairs["residual"].max() or 0.0) if pairs.height else 0.0
    return _result(
        bad == 0,
        bad,
        {"pairs": pairs.height, "largest_residual": worst},
        f"{bad} strikes break put-call parity by more than their spreads on "
        f"{context.partition_key}.",
        "Every quoted strike obeys put-call parity within its spreads.",
    )
