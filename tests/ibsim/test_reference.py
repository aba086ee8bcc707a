"""Reference data through ib_async: contract details, symbols, option parameters, rules."""

from __future__ import annotations

from datetime import datetime

import pytest
from ib_async import ContFuture, Contract, Forex, Future, Index, Option, Stock

from tests.kit.gateway import NOW, request_error


@pytest.mark.parametrize(
    ("contract", "con_id"),
    [
        (Stock("AAPL", "SMART", "USD"), 265598),
        (Stock("SPY", "SMART", "USD"), 756733),
        (Forex("EURUSD"), 12087792),
        (Index("SPX", "CBOE"), 416904),
    ],
)
def test_contract_details_by_symbol(ib, contract, con_id):
    [details] = ib.reqContractDetails(contract)
    assert details.contract.conId == con_id
    assert details.timeZoneId in ("US/Eastern", "US/Central")
    assert details.tradingHours and details.liquidHours


def test_contract_details_fields_follow_ib_formats(ib):
    [details] = ib.reqContractDetails(Stock("AAPL", "SMART", "USD"))
    c = details.contract
    assert (c.symbol, c.secType, c.exchange, c.primaryExchange, c.currency) == (
        "AAPL", "STK", "SMART", "NASDAQ", "USD",
    )  # fmt: skip
    assert details.minTick == 0.01
    assert details.longName == "APPLE INC"
    assert details.secIdList[0].tag == "ISIN" and details.secIdList[0].value == "US0378331005"
    assert details.stockType == "COMMON"
    # IB's hours format: yyyyMMdd:HHmm-yyyyMMdd:HHmm, CLOSED on holidays and weekends.
    assert "20240710:0400-20240710:2000" in details.tradingHours
    assert "20240710:0930-20240710:1600" in details.liquidHours
    assert "20240713:CLOSED" in details.liquidHours


def test_contract_details_by_con_id_and_local_symbol(ib):
    [by_id] = ib.reqContractDetails(Contract(conId=756733))
    assert by_id.contract.symbol == "SPY"
    [fx] = ib.reqContractDetails(Contract(localSymbol="EUR.USD", secType="CASH"))
    assert fx.contract.conId == 12087792
    [future] = ib.reqContractDetails(Contract(localSymbol="ESU4", secType="FUT"))
    assert future.contract.lastTradeDateOrContractMonth == "20240920"
    assert future.contract.multiplier == "50"


def test_ambiguous_request_returns_every_match(ib):
    details = ib.reqContractDetails(Future("ES", exchange="CME"))
    expiries = [d.contract.lastTradeDateOrContractMonth for d in details]
    assert len(details) > 1 and expiries == sorted(expiries)
    assert all(e >= f"{NOW:%Y%m%d}" for e in expiries)
    assert ib.qualifyContracts(Future("ES", exchange="CME")) == [None]


def test_expired_futures_only_with_include_expired(ib):
    live = ib.reqContractDetails(Future("ES", exchange="CME"))
    everything = ib.reqContractDetails(Future("ES", exchange="CME", includeExpired=True))
    expired = [d for d in everything if d.contract.lastTradeDateOrContractMonth < "20240710"]
    assert expired and len(everything) == len(live) + len(expired)
    code, _ = request_error(ib, ib.reqContractDetailsAsync(Future("ES", "20231215", "CME")))
    assert code == 200


def test_continuous_future_is_the_front_month(ib):
    [details] = ib.reqContractDetails(ContFuture("ES", "CME"))
    assert details.contract.secType == "CONTFUT"
    assert details.contract.lastTradeDateOrContractMonth == "20240920"


def test_unknown_contract_gets_200_with_ibs_text(ib):
    code, text = request_error(ib, ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD")))
    assert code == 200
    assert text.startswith("No security definition has been found for the request")
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == [None]


def test_matching_symbols(ib):
    found = ib.reqMatchingSymbols("AA")
    assert found[0].contract.symbol == "AAPL"
    assert found[0].contract.conId == 265598
    assert "OPT" in found[0].derivativeSecTypes
    assert ib.reqMatchingSymbols("zzzz") == []


def test_option_parameters_and_qualified_options(ib):
    params = ib.reqSecDefOptParams("SPY", "", "STK", 756733)
    smart = next(p for p in params if p.exchange == "SMART")
    assert len(params) > 1 and smart.multiplier == "100"
    assert "20240712" in smart.expirations  # this week's Friday
    assert "20240719" in smart.expirations  # the July monthly
    assert 560.0 in smart.strikes
    [option] = ib.qualifyContracts(Option("SPY", "20240719", 560, "C", "SMART"))
    assert option.conId > 0 and option.multiplier == "100"
    assert ib.reqSecDefOptParams("IBM", "", "STK", 8314) == []


def test_option_chain_by_expiry(ib):
    chain = ib.reqContractDetails(Option("AAPL", "20240719", exchange="SMART"))
    strikes = {d.contract.strike for d in chain}
    assert {d.contract.right for d in chain} == {"C", "P"}
    assert len(chain) == 2 * len(strikes)


def test_market_rule(ib):
    [rule] = ib.reqMarketRule(26)
    assert (rule.lowEdge, rule.increment) == (0.0, 0.01)


def test_head_timestamp(ib):
    aapl = Stock("AAPL", "SMART", "USD")
    head = ib.reqHeadTimeStamp(aapl, "TRADES", useRTH=True, formatDate=1)
    assert head == datetime(2000, 1, 3, 14, 30)
    epoch = ib.reqHeadTimeStamp(aapl, "TRADES", useRTH=True, formatDate=2)
    assert epoch.replace(tzinfo=None) == head


def test_trading_schedule(ib):
    schedule = ib.reqHistoricalSchedule(
        Stock("SPY", "SMART", "USD"), numDays=5, endDateTime="20240706-00:00:00", useRTH=True
    )
    assert schedule.timeZone == "US/Eastern"
    days = [s.refDate for s in schedule.sessions]
    assert days == ["20240628", "20240701", "20240702", "20240703", "20240705"]  # 5 sessions
    early = schedule.sessions[3]
    assert (early.startDateTime, early.endDateTime) == ("20240703-09:30:00", "20240703-13:00:00")
