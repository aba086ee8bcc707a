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
from assets.universe.option_chains import chain_inside_window, option_chains
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
        'SELECT "right", bid, ask, delta, gamma, vega, theta, implied_vol, open_interest, '
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


def test_index_options_and_futures_options_are_chained_and_pictured(
    gateway, home, tmp_path, instance
):
    """SPX's options (trading classes SPX and SPXW) and the options on ES's front future
    (Black-76 on the future's price): both chained and pictured, parity holding for each."""
    universe = tmp_path / "universe.yml"
    windows = [
        {"underlying": "SPX", "max_days_to_expiry": 9, "moneyness": [0.99, 1.01]},
        {"underlying": "ES", "sec_type": "FOP", "max_days_to_expiry": 80,
         "moneyness": [0.99, 1.01]},
    ]  # fmt: skip
    entries = [{"index": "SPX", "exchange": "CBOE"}, {"future": "ES", "exchange": "CME"}]
    universe.write_text(yaml.safe_dump({"entries": entries, "options": windows}))
    res = dagster_resources(gateway, home, universe, 331)
    assert dg.materialize([contracts], resources=res, instance=instance).success
    result = dg.materialize(
        [option_chains, chain_inside_window, *QUOTES],
        resources=res,
        partition_key=TODAY,
        instance=instance,
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"chain_inside_window": True, "no_crossed_markets": True,
                      "greeks_within_bounds": True, "put_call_parity": True}  # fmt: skip
    chained = dict(query(home, "SELECT sec_type || ' ' || underlying_symbol || ' ' || "
                               "split_part(local_symbol, ' ', 1), count(*) FROM option_chains "
                               "GROUP BY 1"))  # fmt: skip
    # Inside 9 days: the 07-12 weekly (SPXW) and the 07-19 monthly (SPX); ES's front is Sep 24
    assert set(chained) == {"OPT SPX SPXW", "OPT SPX SPX", "FOP ES ESU4"}
    quoted = query(
        home,
        "SELECT sec_type, count(*), count(delta), min(underlying_price), max(underlying_price) "
        "FROM option_quotes GROUP BY 1 ORDER BY 1",
    )
    spx = chained["OPT SPX SPXW"] + chained["OPT SPX SPX"]
    assert [(t, n) for t, n, *_ in quoted] == [("FOP", chained["FOP ES ESU4"]), ("OPT", spx)]
    for _, n, with_greeks, low, high in quoted:
        assert with_greeks == n and high - low < 0.01 * high  # one underlying price each


def test_a_bad_setting_fails_the_run_with_one_sentence(gateway, home, narrow_universe, instance,
                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("IBW_OPTION_QUOTES_LINES", "eighty")
    res = dagster_resources(gateway, home, narrow_universe, 332)
    result = dg.materialize(
        [option_quotes], resources=res, partition_key=TODAY, instance=instance,
        raise_on_error=False,
    )  # fmt: skip
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.step_failure_data.user_failure_data.description
    assert description == (
        "IBW_OPTION_QUOTES_AT='15:45' or IBW_OPTION_QUOTES_LINES='eighty' is not valid: give a "
        "New York time as HH:MM and a whole number of lines."
    )
