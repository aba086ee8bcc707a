"""Schemas and `split_valid`: good rows pass coerced, bad rows go to quarantine with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pandera.errors import SchemaErrors

from tests.kit.warehouse import FETCHED, contracts, option_chain
from warehouse.live_schemas import LIVE_SCHEMAS
from warehouse.schemas import SCHEMAS, SNAPSHOT_SCHEMAS, polars_schema
from warehouse.security_master import merge_versions
from warehouse.validation import split_valid


def accounted_for(df: pl.DataFrame, valid: pl.DataFrame, rejected: pl.DataFrame) -> None:
    assert valid.height + rejected.height == df.height
    assert rejected.schema == pl.Schema(polars_schema("quarantine"))


def test_the_registry_names_every_dataset():
    base = {"security_master", "option_chains", "option_quotes", "quarantine", "coverage", "bars"}
    live = {"live_ticks", "live_bars", "live_orders", "live_fills", "live_differences"}
    live |= {"live_positions", "live_pnl", "live_account_values"}
    assert set(LIVE_SCHEMAS) == live
    assert set(SCHEMAS) == base | set(SNAPSHOT_SCHEMAS) | live | {"alerts"}
    assert len(SNAPSHOT_SCHEMAS) == 12


def bars(n: int = 3) -> pl.DataFrame:
    start = datetime(2024, 7, 9, 13, 30, tzinfo=UTC)
    return pl.DataFrame(
        {
            "con_id": [265598] * n, "bar_size": ["1 min"] * n, "what_to_show": ["TRADES"] * n,
            "use_rth": [True] * n, "session_date": [start.date()] * n,
            "ts": pl.datetime_range(start, start + timedelta(minutes=n - 1), "1m", eager=True),
            "open": [10.0] * n, "high": [11.0] * n, "low": [9.0] * n, "close": [10.5] * n,
            "volume": [100.0] * n, "wap": [10.2] * n, "bar_count": [7] * n,
            "request_id": ["r"] * n, "fetched_at": [FETCHED] * n, "source": ["ibsim"] * n,
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (pl.lit(12.0).alias("open"), "low <= open, close <= high"),
        (pl.lit(8.0).alias("close"), "low <= open, close <= high"),
        (pl.lit(-5.0).alias("volume"), "volume: must be >= 0"),
        (pl.lit(None, pl.Date).alias("session_date"), "inside one of the contract's expected"),
        (pl.lit(datetime(2024, 7, 9, 13, 30, tzinfo=UTC)).alias("ts"), "duplicate"),
    ],
    ids=["open-above-high", "close-below-low", "volume", "outside-sessions", "duplicate"],
)
def test_bars_are_quarantined_with_their_reason(bad, reason):
    valid, rejected = split_valid(bars().with_columns(bad), "bars", "test")
    assert rejected.height >= 2 and reason in rejected["reason"][0]
    accounted_for(bars(), valid, rejected)


def test_quote_bars_keep_null_volume():
    quotes = bars().with_columns(volume=None, wap=None, bar_count=None)
    valid, rejected = split_valid(quotes, "bars", "test")
    assert valid.height == 3 and rejected.is_empty()


def test_good_frames_pass_their_schemas():
    SCHEMAS["option_chains"].validate(option_chain())
    SCHEMAS["security_master"].validate(merge_versions(pl.DataFrame(), contracts(), FETCHED))
    _, rejected = split_valid(option_chain(strikes=(-1.0,)), "option_chains", "o")
    SCHEMAS["quarantine"].validate(rejected)


@pytest.mark.parametrize(
    "bad",
    [
        pl.col("strike") * -1,
        pl.lit("X").alias("right"),
        pl.lit(-1, pl.Int32).alias("days_to_expiry"),
        pl.lit(0).alias("con_id"),
        pl.col("moneyness") * 2,
        pl.lit(None, pl.String).alias("request_id"),
    ],
    ids=["strike", "right", "dte", "con_id", "moneyness", "lineage"],
)
def test_option_chain_schema_rejects_bad_values(bad):
    with pytest.raises(SchemaErrors):
        SCHEMAS["option_chains"].validate(option_chain().with_columns(bad), lazy=True)


@pytest.mark.parametrize(
    "bad",
    [
        pl.lit("usd").alias("currency"),
        pl.lit("STOCK").alias("sec_type"),
        pl.lit(0.0).alias("min_tick"),
        pl.col("valid_from").alias("valid_to"),
    ],
    ids=["currency", "sec_type", "min_tick", "empty-validity"],
)
def test_security_master_schema_rejects_bad_values(bad):
    history = merge_versions(pl.DataFrame(), contracts(), FETCHED)
    with pytest.raises(SchemaErrors):
        SCHEMAS["security_master"].validate(history.with_columns(bad), lazy=True)


def test_security_master_versions_are_unique_per_con_id_and_valid_from():
    history = merge_versions(pl.DataFrame(), contracts(), FETCHED)
    with pytest.raises(SchemaErrors):
        SCHEMAS["security_master"].validate(pl.concat([history, history]), lazy=True)


def test_a_good_frame_is_all_valid_and_coerced_to_the_schema():
    loose = option_chain().with_columns(
        pl.col("days_to_expiry").cast(pl.Int64),
        pl.col("con_id").cast(pl.Int32),
        pl.col("fetched_at").dt.replace_time_zone(None),
        pl.col("strike").cast(pl.Int64),
    )
    valid, rejected = split_valid(loose, "option_chains", "o")
    assert rejected.is_empty()
    assert valid.schema == pl.Schema(polars_schema("option_chains"))
    assert valid.get_column("fetched_at").to_list() == [FETCHED] * 3
    assert valid.columns[-3:] == ["request_id", "fetched_at", "source"]


def test_bad_rows_are_quarantined_with_one_readable_reason_each():
    df = option_chain(strikes=(200.0, 210.0, 220.0, 230.0)).with_columns(
        strike=pl.Series([200.0, -5.0, 220.0, 230.0]),
        right=pl.Series(["C", "C", "X", "P"]),
        moneyness=pl.Series([200 / 210, -5 / 210, 220 / 210, 1.0]),
    )
    valid, rejected = split_valid(df, "option_chains", "chains/2024-07-10")
    accounted_for(df, valid, rejected)
    assert valid.get_column("strike").to_list() == [200.0]
    assert rejected.get_column("reason").to_list() == [
        "strike: must be > 0 (got -5.0); moneyness: must be > 0 (got -0.023809523809523808)",
        "right: must be one of C, P (got X)",
        "moneyness must equal strike / underlying_price",
    ]
    assert set(rejected.get_column("dataset")) == {"option_chains"}
    assert set(rejected.get_column("origin")) == {"chains/2024-07-10"}
    row = json.loads(rejected.get_column("row")[0])
    assert row["strike"] == -5.0 and row["snapshot_date"] == "2024-07-10"
    assert row["con_id"] == df.get_column("con_id")[1]


def test_nulls_nans_and_duplicates_are_named():
    df = pl.concat([option_chain(), option_chain(strikes=(200.0,))]).with_columns(
        underlying_symbol=pl.Series(["AAPL", None, "AAPL", "AAPL"]),
        underlying_price=pl.Series([210.0, 210.0, float("nan"), 210.0]),
    )
    valid, rejected = split_valid(df, "option_chains", "o")
    accounted_for(df, valid, rejected)
    assert valid.is_empty()
    reasons = rejected.get_column("reason").to_list()
    assert reasons[0] == "duplicate (snapshot_date, con_id)"
    assert reasons[1] == "underlying_symbol: must not be null"
    assert reasons[2].startswith("underlying_price: must not be null (got NaN)")
    assert reasons[3] == "duplicate (snapshot_date, con_id)"


def test_a_missing_column_quarantines_every_row_instead_of_crashing():
    df = option_chain().drop("moneyness", "source")
    valid, rejected = split_valid(df, "option_chains", "o")
    accounted_for(df, valid, rejected)
    assert valid.is_empty()
    assert valid.schema == pl.Schema(polars_schema("option_chains"))
    assert rejected.get_column("reason").to_list() == ["missing column(s): moneyness, source"] * 3


def test_an_unexpected_column_quarantines_every_row():
    df = option_chain().with_columns(delta=pl.lit(0.5))
    valid, rejected = split_valid(df, "option_chains", "o")
    accounted_for(df, valid, rejected)
    assert rejected.get_column("reason").to_list() == ["unexpected column(s): delta"] * 3


def test_a_type_that_cannot_convert_quarantines_every_row():
    df = option_chain().with_columns(pl.col("expiry").cast(pl.String))
    valid, rejected = split_valid(df, "option_chains", "o")
    accounted_for(df, valid, rejected)
    assert rejected.get_column("reason").to_list() == ["expiry: cannot convert String to Date"] * 3


def test_a_value_that_cannot_convert_quarantines_only_its_row():
    df = option_chain().with_columns(
        strike=pl.Series(["200", "abc", "220"]),
        days_to_expiry=pl.Series([9.0, 9.5, 9.0]),
        moneyness=pl.Series([200 / 210, 1.0, 220 / 210]),
    )
    valid, rejected = split_valid(df, "option_chains", "o")
    accounted_for(df, valid, rejected)
    assert valid.get_column("strike").to_list() == [200.0, 220.0]
    assert rejected.get_column("reason").to_list() == [
        "strike: cannot convert 'abc' to Float64; days_to_expiry: cannot convert 9.5 to Int32"
    ]


def test_an_empty_frame_splits_into_two_empty_frames():
    valid, rejected = split_valid(option_chain().clear(), "option_chains", "o")
    assert valid.is_empty() and rejected.is_empty()
    assert valid.schema == pl.Schema(polars_schema("option_chains"))


def test_quarantined_at_is_now_in_utc():
    before = datetime.now(UTC)
    _, rejected = split_valid(option_chain(strikes=(-1.0,)), "option_chains", "o")
    assert before <= rejected.get_column("quarantined_at")[0] <= datetime.now(UTC)


def test_an_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="no schema for dataset 'ticks'"):
        split_valid(option_chain(), "ticks", "o")
