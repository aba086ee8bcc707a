"""Universe files: every kind of entry parses, and every mistake names the entry and the fix."""

from __future__ import annotations

import pytest
import yaml

from ibkr.universe import OptionWindow, UniverseError, parse_universe
from tests.kit.processes import ROOT

DEFAULT = ROOT / "engines" / "universe.yml"


def test_the_default_universe_mixes_every_kind():
    universe = parse_universe(yaml.safe_load(DEFAULT.read_text()))
    assert {e.kind for e in universe.entries} == {
        "symbol", "pattern", "future", "fx", "index", "cfd", "bond", "fund", "crypto",
    }  # fmt: skip
    assert {(w.underlying, w.sec_type) for w in universe.options} == {
        ("SPY", "OPT"), ("AAPL", "OPT"), ("ES", "FOP"),
    }  # fmt: skip
    es = next(e for e in universe.entries if e.value == "ES")
    assert (es.sec_type, es.exchange, es.expired_years) == ("FUT", "CME", 1)
    eur = next(e for e in universe.entries if e.kind == "fx")
    assert (eur.value, eur.sec_type, eur.exchange) == ("EUR.USD", "CASH", "IDEALPRO")


def test_defaults_and_overrides():
    universe = parse_universe(
        {"entries": [{"symbol": "ibm"}, {"symbol": "SAP", "exchange": "IBIS", "currency": "eur"}]}
    )
    ibm, sap = universe.entries
    assert (ibm.value, ibm.sec_type, ibm.exchange, ibm.currency) == ("IBM", "STK", "SMART", "USD")
    assert (sap.exchange, sap.currency) == ("IBIS", "EUR")
    assert ibm.name == "symbol IBM (STK SMART)"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"entries": [{"symbl": "AAPL"}]}, "entry 1: give exactly one of symbol, pattern"),
        ({"entries": [{"symbol": "A", "pattern": "B"}]}, "entry 1: give exactly one of"),
        ({"entries": [{"symbol": "AAPL", "exchnage": "X"}]}, "entry 1: unknown key 'exchnage'"),
        ({"entries": [{"fx": "EURUSD"}]}, "write FX pairs as BASE.QUOTE"),
        ({"entries": [{"future": "ES", "expired_years": "two"}]}, "expired_years must be"),
        ({"entries": ["AAPL"]}, "expected a mapping such as {symbol: AAPL}"),
        ({"stocks": []}, "unknown section 'stocks'"),
        ({}, "no entries"),
        (
            {
                "entries": [{"symbol": "SPY"}],
                "options": [{"underlying": "SPY", "moneyness": [1.1, 0.9]}],
            },
            "0 < low < high",
        ),
        ({"entries": [{"symbol": "SPY"}], "options": [{"symbol": "SPY"}]}, "with 'underlying'"),
    ],
)
def test_mistakes_name_the_entry_and_the_fix(data, message):
    with pytest.raises(UniverseError) as error:
        parse_universe(data, "u.yml")
    assert message in str(error.value)
    assert str(error.value).startswith("u.yml")
    assert "\n" not in str(error.value)


def test_option_window_bounds():
    window = OptionWindow("SPY", max_days_to_expiry=30, min_moneyness=0.95, max_moneyness=1.05)
    assert window.contains(0, 1.0) and window.contains(30, 0.95) and window.contains(30, 1.05)
    assert not window.contains(31, 1.0)
    assert not window.contains(-1, 1.0)
    assert not window.contains(10, 1.06)


def bars_of(*items: dict):
    return parse_universe({"entries": [{"symbol": "AAPL"}], "bars": list(items)}).bars


def test_bar_specs_parse_history_hours_and_defaults():
    daily, minutes = bars_of(
        {"bar_size": "1 day", "history": "20y"},
        {"bar_size": "1 min", "history": "6m", "use_rth": False, "symbols": ["aapl"]},
    )
    assert daily.history_days == 20 * 366 and daily.use_rth and daily.key == "1 day auto rth"
    assert minutes.history_days == 6 * 31 and minutes.key == "1 min auto all"
    assert daily.what_for("STK") == "TRADES" and daily.what_for("CASH") == "MIDPOINT"
    assert minutes.applies_to("STK", "AAPL") and not minutes.applies_to("STK", "MSFT")
    assert not daily.applies_to("OPT", "AAPL")  # options only when a series names them


def test_cfds_bonds_funds_and_crypto_resolve_with_their_venues_and_default_prices():
    universe = parse_universe(
        {
            "entries": [{"cfd": "aapl"}, {"bond": "91282cjl6"}, {"fund": "vfiax"},
                        {"crypto": "btc"}, {"symbol": "ETH", "sec_type": "crypto",
                                            "exchange": "paxos"}],
            "bars": [{"bar_size": "1 day", "history": "1y"},
                     {"bar_size": "1 hour", "history": "30d", "sec_types": ["OPT"]}],
        }
    )  # fmt: skip
    kinds = [(e.kind, e.value, e.sec_type, e.exchange, e.currency) for e in universe.entries]
    assert kinds == [
        ("cfd", "AAPL", "CFD", "SMART", "USD"),
        ("bond", "91282CJL6", "BOND", "SMART", "USD"),
        ("fund", "VFIAX", "FUND", "FUNDSERV", "USD"),
        ("crypto", "BTC", "CRYPTO", "PAXOS", "USD"),
        ("symbol", "ETH", "CRYPTO", "PAXOS", "USD"),
    ]
    daily, options = universe.bars
    shown = {t: daily.what_for(t) for t in ("STK", "CASH", "CFD", "CRYPTO", "BOND")}
    assert shown == {"STK": "TRADES", "CASH": "MIDPOINT", "CFD": "MIDPOINT",
                     "CRYPTO": "AGGTRADES", "BOND": "BID_ASK"}  # fmt: skip
    assert options.applies_to("OPT", "SPY") and not options.applies_to("STK", "SPY")


def test_trades_are_never_asked_for_fx():
    [spec] = bars_of({"bar_size": "1 hour", "history": "2y", "what_to_show": "TRADES"})
    assert not spec.applies_to("CASH", "EUR") and spec.applies_to("STK", "AAPL")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"bar_size": "1 min"}, "expected a mapping with 'bar_size' and 'history'"),
        ({"bar_size": "1 min", "history": "0d"}, "history is a count and a unit"),
        ({"bar_size": "1 week", "history": "1y"}, "derive 1 week bars from them"),
        ({"bar_size": "1 min", "history": "1y", "rth": True}, "unknown key 'rth'"),
        ({"bar_size": "1 min", "history": "1y", "use_rth": "yes"}, "use_rth is true"),
        ({"bar_size": "1 min", "history": "1y", "sec_types": ["WAR"]}, "sec_types must be"),
    ],
)
def test_bad_bar_specs_name_the_entry_and_the_fix(item, message):
    with pytest.raises(UniverseError, match="bars 1: ") as raised:
        bars_of(item)
    assert message in str(raised.value)


def test_the_same_series_twice_is_refused():
    with pytest.raises(UniverseError, match="ask for the same series"):
        bars_of({"bar_size": "1 min", "history": "1y"}, {"bar_size": "1 min", "history": "5d"})
