"""Option quotes through Dagster against the embedded gateway: a narrow chain pictured within
fewer market-data lines than it has options (the gateway refuses any line beyond its limit, so a
picture that took one more would fail), every check green, and a second run the same day
replacing the partition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.trading_days import instance_with_days
from assets.universe.contracts import contracts
from assets.universe.option_chains import option_chains
from assets.universe.option_quotes import (
    greeks_within_bounds,
    no_crossed_markets,
    option_quotes,
    put_call_parity,
)
from tests.kit.gateway import NOW
from tests.kit.universe import check_named, dagster_resources
from tests.kit.warehouse import query

TODAY = NOW.date().isoformat()
LINES = 7
QUOTES = [option_quotes, no_crossed_markets, greeks_within_bounds, put_call_parity]


@pytest.fixture
def narrow_universe(tmp_path: Path) -> Path:
    """SPY's options up to nine days out, within 3% of the money: a few dozen contracts."""
    path = tmp_path / "universe.yml"
    window = {"underlying": "SPY", "max_days_to_expiry": 9, "moneyness": [0.97, 1.03]}
    path.write_text(yaml.safe_dump({"entries": [{"symbol": "SPY"}], "options": [window]}))
    return path


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with instance_with_days(TODAY) as instance:
        yield instance


def test_a_chain_is_pictured_within_the_lines_and_a_second_run_replaces_it(
    make_gateway, home, narrow_universe, instance, monkeypatch
):
    gw = make_gateway(market_data_lines=LINES)
    monkeypatch.setenv("IBW_OPTION_QUOTES_LINES", str(LINES))
    res = dagster_resources(gw, home, narrow_universe, 330)
    assert dg.materialize([contracts], resources=res, instance=instance).success
    chain = dg.materialize([option_chains], resources=res, partition_key=TODAY, instance=instance)
    assert chain.success
    [(options,)] = query(home, "SELECT count(*) FROM option_chains")
    assert options > 2 * LINES

    first = dg.materialize(QUOTES, resources=res, partition_key=TODAY, instance=instance)
    assert first.success
    numbers = {k: v.value for k, v in first.asset_materializations_for_node("option_quotes")[0]
               .metadata.items()}  # fmt: skip
    assert numbers["dagster/row_count"] == numbers["options_in_chain"] == options
    assert numbers["options_refused"] == numbers["options_incomplete"] == 0
    assert numbers["lines_peak"] == LINES == numbers["lines_allowed"]
    for name in ("no_crossed_markets", "greeks_within_bounds", "put_call_parity"):
        evaluation = check_named(first, name)
        assert evaluation.passed, (name, evaluation.description)
    assert check_named(first, "put_call_parity").metadata["pairs"].value == options // 2

    rows = query(
        home,
        "SELECT \"right\", bid, ask, delta, gamma, vega, theta, implied_vol, open_interest, "
        "underlying_price FROM option_quotes",
    )
    for right, bid, ask, delta, gamma, vega, theta, iv, oi, spot in rows:
        assert 0 <= bid <= ask and 0 < iv < 2 and gamma > 0 and vega > 0 and theta is not None
        assert (0 < delta < 1) if right == "C" else (-1 < delta < 0)
        assert oi >= 0 and spot > 0

    again = dg.materialize(QUOTES, resources=res, partition_key=TODAY, instance=instance)
    assert again.success
    assert query(home, "SELECT count(*), count(DISTINCT request_id), min(request_id) "
                 "FROM option_quotes") == [(options, 1, again.run_id)]  # fmt: skip
