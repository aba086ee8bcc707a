"""The option maths as pure functions: Black-Scholes-Merton identities (hypothesis), the chain
property (put-call parity and greek signs at every strike and expiry), quotes that are never
crossed and sit on the market rule's grid, and option atoms that aggregate exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ibsim.market import atoms, rules
from ibsim.market import black_scholes as bs
from ibsim.market.errors import IBError
from ibsim.market.instruments import MARKET_RULES
from ibsim.market.option_model import RATE, quote_units, terms
from ibsim.market.options import chain
from ibsim.market.prices import aggregate
from ibsim.market.quotes import quote_at
from ibsim.market.surface import surface
from tests.kit.gateway import NOW

EPOCH = int(NOW.timestamp())
CHAIN = chain(NOW)

spots = st.floats(1.0, 10_000.0)
moneyness = st.floats(0.5, 2.0)
years = st.floats(1 / 365, 3.0)
vols = st.floats(0.03, 2.0)
yields = st.floats(0.0, 0.08)


@settings(max_examples=300, deadline=None)
@given(spots, moneyness, years, vols, yields, yields)
def test_parity_and_greek_signs(spot, m, t, vol, rate, carry) -> None:
    strike = spot * m
    call = bs.greeks(spot, strike, t, vol, rate, carry, True)
    put = bs.greeks(spot, strike, t, vol, rate, carry, False)
    forward_gap = spot * math.exp(-carry * t) - strike * math.exp(-rate * t)
    assert float(call.price - put.price) == pytest.approx(forward_gap, abs=1e-6 * spot)
    assert float(call.delta - put.delta) == pytest.approx(math.exp(-carry * t), abs=1e-9)
    assert 0 <= call.delta <= 1 and -1 <= put.delta <= 0
    assert call.gamma >= 0 and call.gamma == pytest.approx(float(put.gamma))
    assert call.vega >= 0 and call.vega == pytest.approx(float(put.vega))
    assert call.price >= -1e-6 * spot and put.price >= -1e-6 * spot


@settings(max_examples=200, deadline=None)
@given(spots, st.floats(0.7, 1.4), st.floats(7 / 365, 2.0), st.floats(0.05, 1.5), st.booleans())
def test_implied_vol_recovers_the_volatility(spot, m, t, vol, call) -> None:
    strike = spot * m
    value = float(bs.price(spot, strike, t, vol, RATE, 0.01, call))
    if bs.greeks(spot, strike, t, vol, RATE, 0.01, call).vega < 1e-4 * spot:
        return  # a price that hardly depends on volatility does not pin it down
    solved = float(bs.implied_vol(value, spot, strike, t, RATE, 0.01, call))
    assert solved == pytest.approx(vol, rel=1e-6)


def test_implied_vol_is_none_outside_the_arbitrage_bounds() -> None:
    values = np.array([0.5, 101.0, 1.0, 5.0])  # below intrinsic, above the spot, expired, fine
    solved = bs.implied_vol(values, 100.0, [80.0, 80.0, 100.0, 100.0], [0.5, 0.5, 0.0, 0.5],
                            RATE, 0.0, True)  # fmt: skip
    assert np.isnan(solved[:3]).all() and 0 < solved[3] < 1


def test_the_surface_smiles_with_a_negative_skew_and_rises_with_term() -> None:
    spx = terms(next(o for o in CHAIN if o.trading_class == "SPX")).underlying
    s = surface(spx)
    k = np.array([-0.2, -0.1, 0.0, 0.1])
    smile = s.vol(k, np.full(4, 0.25))
    assert smile[0] > smile[1] > smile[2] > smile[3] > 0
    assert s.atm(np.array(0.05)) < s.atm(np.array(1.0))


@pytest.mark.parametrize("trading_class", ["SPY", "ES"])
def test_parity_and_greek_signs_across_a_whole_chain(trading_class) -> None:
    """Every strike and expiry, priced at the same underlying mid as the quotes of this second."""
    listed = [o for o in CHAIN if o.trading_class == trading_class]
    pairs: dict[tuple, dict[str, object]] = {}
    for inst in listed:
        v = atoms.valuation_at(inst, EPOCH)
        g = v.greeks
        assert g.gamma[0] >= 0 and g.vega[0] >= 0
        out_of_the_money = (inst.strike > v.spot[0]) == (inst.right == "C")
        assert g.theta[0] <= 0 or not out_of_the_money  # deep in, carry can outweigh decay
        assert (0 <= g.delta[0] <= 1) if inst.right == "C" else (-1 <= g.delta[0] <= 0)
        pairs.setdefault((inst.last_trade_date, inst.strike), {})[inst.right] = v
    for (_, strike), both in pairs.items():
        call, put = both["C"], both["P"]
        t = terms(next(o for o in listed if o.strike == strike))
        spot, years = float(call.spot[0]), float(call.years[0])
        assert float(put.spot[0]) == spot and float(put.vol[0]) == float(call.vol[0])
        gap = spot * math.exp(-t.carry * years) - strike * math.exp(-RATE * years)
        parity = float(call.greeks.price[0] - put.greeks.price[0])
        assert parity == pytest.approx(gap, abs=1e-6 * spot)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 400.0), min_size=2, max_size=30), st.sampled_from(["C", "P"]))
def test_quotes_are_monotone_never_crossed_and_on_the_grid(models, right) -> None:
    inst = next(o for o in CHAIN if o.trading_class == "SPY" and o.right == right)
    model = np.sort(np.array(models))
    q = quote_units(inst, model, np.full(len(model), 520.0))
    bid, ask = q["BID"], q["ASK"]
    assert (bid >= 0).all() and (ask > bid).all()
    assert (q["TRADES"] >= bid).all() and (q["TRADES"] <= ask).all()
    for row in q.values():
        assert (np.diff(row) >= 0).all()  # the atoms rest on this
    (_, low), (edge, high) = MARKET_RULES[32]
    for row in (bid, ask):
        step = np.where(row >= round(edge * 100), round(high * 100), round(low * 100))
        assert (row % step == 0).all()


@pytest.mark.parametrize("what", ["TRADES", "BID", "ASK", "MIDPOINT", "BID_ASK", "ADJUSTED_LAST"])
@pytest.mark.parametrize("right", ["C", "P"])
def test_option_seconds_aggregate_to_their_minutes(what, right) -> None:
    inst = next(
        o for o in CHAIN
        if o.trading_class == "SPY" and o.right == right and o.strike == 520.0
    )  # fmt: skip
    starts = np.arange(EPOCH, EPOCH + 30 * 60, 60, dtype=np.int64)
    minutes = atoms.minute_atoms(inst, starts, what)
    seconds = atoms.second_atoms(inst, minutes, what)
    rebuilt = aggregate(seconds, np.arange(0, len(seconds), 60))
    for f in ("open", "high", "low", "close", "volume", "count"):
        assert (getattr(rebuilt, f) == getattr(minutes, f)).all(), f
    assert ((minutes.low <= minutes.high).all() and minutes.volume.sum() > 0) or what != "TRADES"


def test_a_quote_is_the_model_of_its_underlyings_mid() -> None:
    inst = next(o for o in CHAIN if o.trading_class == "SPY" and o.strike == 520.0)
    for at in range(EPOCH, EPOCH + 120, 7):
        q, under = quote_at(inst, at), quote_at(terms(inst).underlying, at)
        v = atoms.valuation_at(inst, at)
        assert float(v.spot[0]) == pytest.approx(under.mid)
        assert q.bid <= float(v.greeks.price[0]) <= q.ask


def test_volatility_bars_are_for_underlyings_and_option_bars_for_both_kinds() -> None:
    rules.check_what_to_show("HISTORICAL_VOLATILITY", "IND")
    rules.check_what_to_show("OPTION_IMPLIED_VOLATILITY", "STK")
    rules.check_what_to_show("BID_ASK", "FOP")
    with pytest.raises(IBError, match="What to show value of HISTORICAL_VOLATILITY rejected"):
        rules.check_what_to_show("HISTORICAL_VOLATILITY", "OPT")
