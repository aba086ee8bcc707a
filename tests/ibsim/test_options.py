"""Options through ib_async: quotes priced from the underlying's, greeks at the bid, ask, last and
model (tickOptionComputation), open interest and option volume (generic ticks 100, 101),
calculateImpliedVolatility / calculateOptionPrice, and option bars that agree with the quotes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ib_async import Contract, FuturesOption, Index, Option

from ibsim.market.option_model import terms
from ibsim.market.quotes import quote_at
from tests.kit.gateway import NOW, stock
from tests.kit.ibapi_harness import IBApiApp
from tests.kit.ibapi_harness import contract as api_contract
from tests.kit.waiting import ib_until

EPOCH = int(NOW.timestamp())
pytestmark = pytest.mark.usefixtures("ib_async_decoded_everything")


def _option(ib, symbol="SPY", expiry="20240719", strike=520.0, right="C", **kw) -> Contract:
    [option] = ib.qualifyContracts(Option(symbol, expiry, strike, right, "SMART", **kw))
    return option


def test_option_greeks_open_interest_and_volume_stream(gw, connect):
    ib = connect(gw)
    call = _option(ib)
    ticker = ib.reqMktData(call, "100,101")
    ib_until(
        ib,
        lambda: (
            all((ticker.bidGreeks, ticker.askGreeks, ticker.lastGreeks, ticker.modelGreeks))
            and ticker.callOpenInterest > 0
            and ticker.callVolume > 0
        ),
        "the option's computations and generic ticks",
    )
    model = ticker.modelGreeks
    inst = gw.gateway.catalog.by_con_id(call.conId)
    spy = quote_at(terms(inst).underlying, EPOCH)
    assert model.undPrice == pytest.approx(spy.mid)
    assert ticker.bid <= model.optPrice <= ticker.ask
    assert 0 < model.delta < 1 and model.gamma > 0 and model.vega > 0 and model.theta < 0
    assert 0.05 < model.impliedVol < 0.5
    assert ticker.bidGreeks.optPrice == ticker.bid and ticker.askGreeks.optPrice == ticker.ask
    assert ticker.bidGreeks.impliedVol < model.impliedVol < ticker.askGreeks.impliedVol
    assert ticker.putOpenInterest != ticker.putOpenInterest  # nan: a call has no put side


def test_underlying_generic_ticks(gw, connect):
    ib = connect(gw)
    ticker = ib.reqMktData(stock(ib, "SPY"), "100,101,104,106")
    ib_until(
        ib,
        lambda: (
            ticker.callOpenInterest > 0
            and ticker.putOpenInterest > 0
            and ticker.putVolume > 0
            and ticker.impliedVolatility > 0
            and ticker.histVolatility > 0
        ),
        "the underlying's option statistics",
    )
    assert 0.05 < ticker.impliedVolatility < 0.5 and 0.01 < ticker.histVolatility < 1


def test_snapshot_of_a_put_sends_its_computations(gw, connect):
    ib = connect(gw)
    put = _option(ib, right="P", strike=515.0)
    [ticker] = ib.reqTickers(put)
    model = ticker.modelGreeks
    assert model is not None and -1 < model.delta < 0 and model.gamma > 0
    assert ticker.bidGreeks is not None and ticker.askGreeks is not None


def test_calculations_answer_and_invert_each_other(gw, connect):
    ib = connect(gw)
    call = _option(ib, "SPX", "20240719", 5600.0, "C", tradingClass="SPX")
    priced = ib.calculateOptionPrice(call, 0.15, 5600.0)
    assert priced.optPrice > 0 and 0 < priced.delta < 1 and priced.undPrice == 5600.0
    implied = ib.calculateImpliedVolatility(call, priced.optPrice, 5600.0)
    assert implied.impliedVol == pytest.approx(0.15, abs=1e-6)
    assert implied.delta == pytest.approx(priced.delta, abs=1e-6)


def test_spx_options_price_off_the_index(gw, connect):
    ib = connect(gw)
    [spx] = ib.qualifyContracts(Index("SPX", "CBOE", "USD"))
    chains = ib.reqSecDefOptParams("SPX", "", "IND", spx.conId)
    assert {c.tradingClass for c in chains} == {"SPX", "SPXW"}
    weekly = _option(ib, "SPX", "20240712", 5600.0, "P", tradingClass="SPXW")
    inst = gw.gateway.catalog.by_con_id(weekly.conId)
    assert (inst.trading_class, inst.multiplier, inst.under_con_id) == ("SPXW", "100", spx.conId)
    q = quote_at(inst, EPOCH)
    assert 0 <= q.bid < q.ask


# ------------------------------------------------------------------- the official client
class OptionsApp(IBApiApp):
    def tickOptionComputation(self, reqId, tickType, tickAttrib, *values) -> None:
        self._put(reqId, "tickOptionComputation", tickType, tickAttrib, *values)

    def tickSnapshotEnd(self, reqId: int) -> None:
        self._put(reqId, "tickSnapshotEnd")


@pytest.fixture
def api(gw) -> Iterator[OptionsApp]:
    app = OptionsApp().start(gw.port)
    yield app
    app.close()
    assert not app.decode_failures


def test_ibapi_decodes_option_computations_and_fop_details(api: OptionsApp) -> None:
    es_call = api_contract(
        symbol="ES", secType="FOP", exchange="CME", currency="USD",
        lastTradeDateOrContractMonth="20240920", strike=5600.0, right="C", multiplier="50",
    )  # fmt: skip
    [details] = api.contract_details(es_call).firsts("contractDetails")
    c = details.contract
    assert (c.secType, c.tradingClass, c.multiplier, c.exchange) == ("FOP", "ES", "50", "CME")
    assert c.localSymbol == "ESU4 C5600" and details.underSecType == "FUT"
    assert details.marketRuleIds.split(",")[0] == "62" and details.minTick == 0.25
    req_id = api.next_req_id()
    api.reqMktData(req_id, c, "", True, False, [])
    reply = api.collect(req_id, "tickSnapshotEnd")
    computed = {
        e.args[0]: e.args[1:]
        for e in (e for e in reply.events if e.name == "tickOptionComputation")
    }
    assert set(computed) == {10, 11, 12, 13}
    attrib, vol, delta, price, pv_dividend, gamma, vega, theta, under = computed[13]
    assert attrib == 1 and 0.05 < vol < 0.5 and 0 < delta < 1 and price > 0
    assert pv_dividend == 0 and gamma > 0 and vega > 0 and theta < 0 and under > 5000


def test_option_bars_are_the_quotes_and_expired_options_have_none(gw, connect):
    ib = connect(gw)
    put = _option(ib, right="P")
    inst = gw.gateway.catalog.by_con_id(put.conId)
    for what, side in (("BID", "bid"), ("ASK", "ask"), ("TRADES", "last")):
        bars = ib.reqHistoricalData(put, "", "60 S", "1 secs", what, True, 2)
        assert len(bars) == 60
        for bar in bars:
            assert bar.close == getattr(quote_at(inst, int(bar.date.timestamp())), side)


def test_volatility_bars_of_an_underlying(gw, connect):
    ib = connect(gw)
    spy = stock(ib, "SPY")
    hv = ib.reqHistoricalData(spy, "", "5 D", "1 day", "HISTORICAL_VOLATILITY", True, 1)
    iv = ib.reqHistoricalData(spy, "", "5 D", "1 day", "OPTION_IMPLIED_VOLATILITY", True, 1)
    assert len(hv) == len(iv) == 5
    assert all(0.01 < b.close < 1 and b.open == b.high == b.low == b.close for b in hv)
    ticker = ib.reqMktData(spy, "106")
    ib_until(ib, lambda: ticker.impliedVolatility > 0, "the implied volatility tick")
    assert {b.close for b in iv} == {round(ticker.impliedVolatility, 6)}


def test_es_options_are_listed_on_the_future(gw, connect):
    ib = connect(gw)
    [future] = ib.qualifyContracts(Contract(secType="FUT", symbol="ES", exchange="CME",
                                            lastTradeDateOrContractMonth="202409"))  # fmt: skip
    [chain] = ib.reqSecDefOptParams("ES", "CME", "FUT", future.conId)
    assert (chain.exchange, chain.tradingClass, chain.multiplier) == ("CME", "ES", "50")
    assert chain.expirations == [future.lastTradeDateOrContractMonth] and 5650.0 in chain.strikes
    assert ib.reqSecDefOptParams("ES", "", "FUT", 0)  # every quarterly, by symbol alone
    ib.reqMarketDataType(3)
    [option] = ib.qualifyContracts(
        FuturesOption("ES", chain.expirations[0], 5650.0, "P", "CME", tradingClass="ES")
    )
    ticker = ib.reqMktData(option)
    ib_until(ib, lambda: ticker.modelGreeks is not None, "the delayed model computation")
    assert -1 < ticker.modelGreeks.delta < 0 and ticker.modelGreeks.undPrice > 5000
