"""A day's option quotes: put-call parity fitted without a rate (pure), and the picture of a whole
chain through the embedded gateway within the market-data lines."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from engines.option_quotes import parity_residuals

EXPIRY = date(2024, 7, 19)


def chain(discount: float, forward: float, strikes: list[float], spread: float) -> pl.DataFrame:
    """Calls and puts whose mids obey C - P = D (F - K) exactly, each quoted `spread` wide."""
    rows = []
    for k in strikes:
        put = 1.0 + max(k - forward, 0.0)
        call = put + discount * (forward - k)
        for right, mid in (("C", call), ("P", put)):
            half = spread / 2
            rows.append({"underlying_symbol": "SPY", "expiry": EXPIRY, "strike": k,
                         "right": right, "bid": mid - half, "ask": mid + half})  # fmt: skip
    return pl.DataFrame(rows)


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.12])
def test_parity_holds_at_any_rate_without_knowing_it(rate: float) -> None:
    quotes = chain(math.exp(-rate * 0.05), 561.3, [550.0 + i for i in range(21)], 0.04)
    residuals = parity_residuals(quotes)
    assert residuals.height == 21
    assert residuals["residual"].max() < 1e-9
    assert residuals["tolerance"].to_list() == pytest.approx([0.08] * 21)


def test_a_strike_off_the_line_by_more_than_its_spreads_is_found() -> None:
    quotes = chain(0.998, 561.3, [550.0 + i for i in range(21)], 0.04)
    off = (pl.col("strike") == 560.0) & (pl.col("right") == "C")
    quotes = quotes.with_columns(
        bid=pl.when(off).then(pl.col("bid") + 0.5).otherwise(pl.col("bid")),
        ask=pl.when(off).then(pl.col("ask") + 0.5).otherwise(pl.col("ask")),
    )
    residuals = parity_residuals(quotes)
    bad = residuals.filter(pl.col("residual") > pl.col("tolerance"))
    assert bad["strike"].to_list() == [560.0]


def test_unquoted_sides_and_expiries_with_too_few_strikes_are_left_out() -> None:
    quotes = chain(0.999, 100.0, [99.0, 100.0, 101.0, 102.0], 0.02)
    quotes = quotes.with_columns(
        bid=pl.when(pl.col("strike") == 102.0).then(None).otherwise(pl.col("bid"))
    )
    assert sorted(parity_residuals(quotes)["strike"].to_list()) == [99.0, 100.0, 101.0]
    assert parity_residuals(quotes.filter(pl.col("strike") < 101)).is_empty()
