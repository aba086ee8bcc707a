"""Universe files: every kind of entry parses, and every mistake names the entry and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ibkr.universe import OptionWindow, UniverseError, parse_universe

DEFAULT = Path(__file__).resolve().parents[1] / "assets" / "universe.yml"


def test_the_default_universe_mixes_every_kind():
    universe = parse_universe(yaml.safe_load(DEFAULT.read_text()))
    assert {e.kind for e in universe.entries} == {"symbol", "pattern", "future", "fx", "index"}
    assert {w.underlying for w in universe.options} == {"SPY", "AAPL"}
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
