"""The embedded gateway driven by the official TWS API client (`ibapi` 10.51, unmodified).

Every request family the gateway serves and every error it sends, over a real socket, decoded by
IB's own EClient/EWrapper with `run()` on a background thread (tests/kit/ibapi_harness.py). The
session gateway's clock stands at NOW (2024-07-10 11:00 New York); tests that move the clock or
change the rules get a private gateway from `make_gateway`.

Every connection is checked on the way out: ibapi decoded every message (no dropped or bad
messages, no client-side 5xx errors) and `run()` ended cleanly after `disconnect()`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from ibapi.common import BarData
from ibapi.contract import Contract

from ibsim.config import PacingRules
from ibsim.server import GatewayThread
from tests.kit.gateway import NOW, RELAXED
from tests.kit.ibapi_harness import ApiError, IBApiApp, contract, next_client_id, stock

AAPL = stock("AAPL")
TSLA = stock("TSLA")
SPY = stock("SPY")
EUR_USD = contract(symbol="EUR", secType="CASH", exchange="IDEALPRO", currency="USD")
ES = contract(symbol="ES", secType="FUT", exchange="CME", currency="USD")
ES_CONTINUOUS = contract(symbol="ES", secType="CONTFUT", exchange="CME", currency="USD")
ESU4 = contract(localSymbol="ESU4", secType="FUT", exchange="CME")  # the front month on NOW
ESM4 = contract(localSymbol="ESM4", secType="FUT", exchange="CME")  # expired 2024-06-21
SPY_CALL = contract(
    symbol="SPY", secType="OPT", exchange="SMART", currency="USD",
    lastTradeDateOrContractMonth="20240712", strike=560.0, right="C",
)  # fmt: skip
JULY_3_CLOSE = "20240703-20:00:00"  # 16:00 New York, in the UTC dash form
NOW_EPOCH = int(NOW.timestamp())
NEW_YORK = ZoneInfo("America/New_York")
NO_SECURITY = "No security definition has been found for the request"
HMDS = "Historical Market Data Service error message:"
OpenApp = Callable[..., IBApiApp]
MakeGateway = Callable[..., GatewayThread]


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture
def open_app() -> Iterator[OpenApp]:
    """Official clients on any gateway; closed and checked for decoding trouble afterwards."""
    apps: list[IBApiApp] = []

    def open_(gw: GatewayThread, client_id: int | None = None, ready: bool = True) -> IBApiApp:
        app = IBApiApp()
        apps.append(app)
        if ready:
            app.start(gw.port, client_id)
        else:
            app.open(gw.port, client_id)
        return app

    with contextlib.ExitStack() as stack:
        yield open_
        for app in apps:
            stack.callback(app.close)
    for app in apps:
        assert not app.decode_failures, f"ibapi could not decode: {app.decode_failures}"
        assert not [e for e in app.errors if e.is_client_side], app.errors


@pytest.fixture
def app(gateway: GatewayThread, open_app: OpenApp) -> IBApiApp:
    return open_app(gateway)


def check_321(error: ApiError | None, cause: str) -> None:
    """321 is `Error validating request.-'<tag>' : cause - <cause>`; IB's tag varies by build."""
    assert error is not None and error.code == 321, error
    match = re.fullmatch(r"Error validating request\.-'b[A-Z]' : cause - (.*)", error.text)
    assert match, error.text
    assert match.group(1) == cause


def check_ohlc(bar: BarData) -> None:
    assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high


def replace_contract(base: Contract, **fields: object) -> Contract:
    """A copy of an ibapi Contract with some fields changed."""
    changed = copy.copy(base)
    for name, value in fields.items():
        assert hasattr(changed, name), name
        setattr(changed, name, value)
    return changed


def new_york(stamp: str) -> datetime:
    """A formatDate=1 intraday stamp, `yyyymmdd hh:mm:ss US/Eastern`, as an aware datetime."""
    day, clock, zone = stamp.split(" ")
    assert zone == "US/Eastern", stamp
    return datetime.strptime(f"{day} {clock}", "%Y%m%d %H:%M:%S").replace(tzinfo=NEW_YORK)


# ----------------------------------------------------------------------------- connecting
def test_connect_gets_next_valid_id_accounts_and_farm_notices(app: IBApiApp) -> None:
    assert app.isConnected()
    assert app.serverVersion() == 178
    assert app.twsConnectionTime().startswith(b"20240710 11:00:00")
    assert app.next_event("managedAccounts").args == ("DU123456",)
    app.sync()  # the farm notices follow nextValidId
    notices = [e.args[0] for e in app.drain(-1)]
    assert [(e.req_id, e.code, e.text) for e in notices] == [
        (-1, 2104, "Market data farm connection is OK:usfarm"),
        (-1, 2106, "HMDS data farm connection is OK:ushmds"),
        (-1, 2158, "Sec-def data farm connection is OK:secdefnj"),
    ]


def test_next_valid_id_is_the_gateways_first_order_id(
    gateway: GatewayThread, open_app: OpenApp
) -> None:
    app = open_app(gateway, ready=False)
    assert app.next_event("nextValidId").args == (gateway.gateway.config.next_valid_id,)


def test_current_time_is_the_gateway_clock(app: IBApiApp) -> None:
    app.reqCurrentTime()
    assert app.next_event("currentTime").args == (NOW_EPOCH,)


def test_duplicate_client_id_gets_326_and_connection_closed(
    gateway: GatewayThread, open_app: OpenApp
) -> None:
    client_id = next_client_id()
    first = open_app(gateway, client_id)
    second = open_app(gateway, client_id, ready=False)
    error = second.first_error(-1)
    assert error.pair == (
        326,
        "Unable to connect as the client id is already in use. Retry with a unique client id.",
    )
    assert second.next_event("connectionClosed")
    assert not second.isConnected()
    assert second.drain("nextValidId") == []  # closed before startApi's replies
    assert first.sync() == NOW_EPOCH  # the first holder of the id is untouched


# ----------------------------------------------------------------------------- contract details
@pytest.mark.parametrize(
    ("query", "con_id", "primary", "stock_type", "isin"),
    [
        (AAPL, 265598, "NASDAQ", "COMMON", "US0378331005"),
        (SPY, 756733, "ARCA", "ETF", "US78462F1030"),
    ],
    ids=["AAPL", "SPY"],
)
def test_contract_details_by_symbol(
    app: IBApiApp, query: Contract, con_id: int, primary: str, stock_type: str, isin: str
) -> None:
    reply = app.contract_details(query)
    [details] = reply.firsts("contractDetails")
    assert reply.events[-1].name == "contractDetailsEnd"
    c = details.contract
    assert (c.conId, c.symbol, c.secType, c.exchange, c.currency) == (
        con_id, query.symbol, "STK", "SMART", "USD",
    )  # fmt: skip
    assert (c.primaryExchange, c.localSymbol, details.stockType) == (
        primary, query.symbol, stock_type,
    )  # fmt: skip
    assert details.minTick == 0.01
    assert details.timeZoneId == "US/Eastern"
    assert details.liquidHours.startswith("20240710:0930-20240710:1600;")
    assert details.tradingHours.startswith("20240710:0400-20240710:2000;")
    assert [(t.tag, t.value) for t in details.secIdList] == [("ISIN", isin)]
    assert (details.minSize, details.sizeIncrement, details.suggestedSizeIncrement) == (
        Decimal("0.0001"), Decimal("0.0001"), Decimal("100"),
    )  # fmt: skip


def test_bond_contract_details_decode_as_msg_18(app: IBApiApp) -> None:
    reply = app.contract_details(contract(symbol="91282CJZ5", secType="BOND", exchange="SMART"))
    [bond] = reply.firsts("bondContractDetails")
    assert reply.events[-1].name == "contractDetailsEnd"
    assert (bond.contract.conId, bond.contract.secType, bond.cusip) == (
        658394302,
        "BOND",
        "91282CJZ5",
    )
    assert (bond.coupon, bond.maturity, bond.issueDate) == (4.0, "20340215", "20240215")
    assert bond.descAppend == "US-T 4 02/15/34"
    assert (bond.minSize, bond.sizeIncrement) == (Decimal(1), Decimal(1))
    assert {t.tag: t.value for t in bond.secIdList}["ISIN"] == "US91282CJZ59"


def test_crypto_contract_details_carry_fractional_size_rules(app: IBApiApp) -> None:
    [btc] = app.contract_details(contract(symbol="BTC", secType="CRYPTO", exchange="PAXOS")).firsts(
        "contractDetails"
    )
    assert (btc.minSize, btc.sizeIncrement) == (Decimal("0.0001"), Decimal("0.00000001"))
    assert btc.contract.conId == 479624278 and btc.minTick == 0.25


def test_contract_details_by_con_id(app: IBApiApp) -> None:
    [details] = app.contract_details(contract(conId=265598)).firsts("contractDetails")
    assert (details.contract.symbol, details.longName) == ("AAPL", "APPLE INC")


def test_contract_details_by_future_local_symbol(app: IBApiApp) -> None:
    [details] = app.contract_details(ESU4).firsts("contractDetails")
    c = details.contract
    assert (c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth) == (
        495202409, "ES", "FUT", "20240920",
    )  # fmt: skip
    assert (c.localSymbol, c.multiplier, c.exchange, details.contractMonth) == (
        "ESU4", "50", "CME", "202409",
    )  # fmt: skip
    assert (details.underSymbol, details.underSecType, details.timeZoneId) == (
        "ES", "IND", "US/Central",
    )  # fmt: skip


def test_ambiguous_future_lists_every_live_expiry_then_end(app: IBApiApp) -> None:
    reply = app.contract_details(ES)
    expiries = [d.contract.lastTradeDateOrContractMonth for d in reply.firsts("contractDetails")]
    assert len(expiries) > 1
    assert [e.name for e in reply.events][-1] == "contractDetailsEnd"
    assert reply.firsts("contractDetails")[0].contract.localSymbol == "ESU4"
    assert expiries == sorted(expiries) and min(expiries) >= "20240710"
    with_expired = app.contract_details(replace_contract(ES, includeExpired=True))
    expired = [
        d.contract.lastTradeDateOrContractMonth
        for d in with_expired.firsts("contractDetails")
        if d.contract.lastTradeDateOrContractMonth < "20240710"
    ]
    assert "20240621" in expired
    assert len(with_expired.firsts("contractDetails")) == len(expiries) + len(expired)


def test_expired_future_is_found_only_with_include_expired(app: IBApiApp) -> None:
    assert app.contract_details(ESM4).error.code == 200
    [details] = app.contract_details(replace_contract(ESM4, includeExpired=True)).firsts(
        "contractDetails"
    )
    assert (details.contract.conId, details.contract.lastTradeDateOrContractMonth) == (
        495202406, "20240621",
    )  # fmt: skip
    _, bars = app.historical_data(replace_contract(ESM4, includeExpired=True), "", "1 D", "1 day")
    assert [b.date for b in bars.bars] == ["20240621"]  # history ends with its last session


def test_unknown_symbol_gets_200(app: IBApiApp) -> None:
    reply = app.contract_details(stock("NOPE"))
    assert reply.firsts("contractDetails") == []
    assert reply.error.code == 200 and reply.error.text == NO_SECURITY


# ------------------------------------------------------------------------- other reference data
def test_matching_symbols(app: IBApiApp) -> None:
    [samples] = app.matching_symbols("AA").firsts("symbolSamples")
    [aapl] = [s for s in samples if s.contract.symbol == "AAPL"]
    c = aapl.contract
    assert (c.conId, c.secType, c.primaryExchange, c.currency, c.description) == (
        265598, "STK", "NASDAQ", "USD", "APPLE INC",
    )  # fmt: skip
    assert "OPT" in aapl.derivativeSecTypes
    assert app.matching_symbols("ZZZZ").firsts("symbolSamples") == [[]]


def test_sec_def_opt_params(app: IBApiApp) -> None:
    reply = app.sec_def_opt_params("SPY", "STK", 756733)
    assert reply.events[-1].name == "securityDefinitionOptionParameterEnd"
    chains = reply.all("securityDefinitionOptionParameter")
    exchanges = [chain[0] for chain in chains]
    assert len(exchanges) > 1 and "SMART" in exchanges and len(set(exchanges)) == len(exchanges)
    for _, under_con_id, trading_class, multiplier, expirations, strikes in chains:
        assert (under_con_id, trading_class, multiplier) == (756733, "SPY", "100")
        assert expirations == chains[0][4] and strikes == chains[0][5]
    expirations, strikes = sorted(chains[0][4]), sorted(chains[0][5])
    assert len(expirations) > 4 and expirations[0] == "20240712" and "20240719" in expirations
    assert len(strikes) > 10 and 560.0 in strikes
    # The chain is what reqContractDetails knows.
    option = replace_contract(SPY_CALL, lastTradeDateOrContractMonth=expirations[-1])
    [details] = app.contract_details(option).firsts("contractDetails")
    assert (details.contract.multiplier, details.underConId) == ("100", 756733)


def test_sec_def_opt_params_of_an_unknown_underlying_is_only_the_end(app: IBApiApp) -> None:
    reply = app.sec_def_opt_params("NOPE", "STK", 0)
    assert [e.name for e in reply.events] == ["securityDefinitionOptionParameterEnd"]


def test_market_rule_of_a_contract(app: IBApiApp) -> None:
    [details] = app.contract_details(AAPL).firsts("contractDetails")
    rule_ids = details.marketRuleIds.split(",")
    assert len(rule_ids) == len(details.validExchanges.split(",")) and set(rule_ids) == {"26"}
    rule_id, increments = app.market_rule(26).args
    assert rule_id == 26
    assert [(p.lowEdge, p.increment) for p in increments] == [(0.0, 0.01)]


def test_unknown_market_rule_gets_321(app: IBApiApp) -> None:
    app.reqMarketRule(9999)
    check_321(app.first_error(-1), "Market rule id 9999 is not known.")


def test_head_timestamp(app: IBApiApp) -> None:
    assert app.head_timestamp(TSLA).firsts("headTimestamp") == ["20100629-14:30:00"]
    head = int(datetime(2010, 6, 29, 14, 30, tzinfo=UTC).timestamp())
    assert app.head_timestamp(TSLA, format_date=2).firsts("headTimestamp") == [str(head)]


def test_head_timestamp_errors(app: IBApiApp) -> None:
    assert app.head_timestamp(stock("NOPE")).error.code == 200
    check_321(app.head_timestamp(AAPL, what="FOO").error, "What to show value of FOO rejected.")


def test_historical_schedule(app: IBApiApp) -> None:
    _, reply = app.historical_data(AAPL, JULY_3_CLOSE, "5 D", "1 day", what="SCHEDULE")
    assert reply.bars == []
    start, end, zone, sessions = reply.one("historicalSchedule")
    assert (start, end, zone) == ("20240627-09:30:00", "20240703-16:00:00", "US/Eastern")
    assert [(s.refDate, s.startDateTime, s.endDateTime) for s in sessions] == [
        ("20240627", "20240627-09:30:00", "20240627-16:00:00"),
        ("20240628", "20240628-09:30:00", "20240628-16:00:00"),
        ("20240701", "20240701-09:30:00", "20240701-16:00:00"),
        ("20240702", "20240702-09:30:00", "20240702-16:00:00"),
        ("20240703", "20240703-09:30:00", "20240703-13:00:00"),  # early close before July 4
    ]


# ----------------------------------------------------------------------------- historical bars
def test_one_minute_bars_of_the_july_3_early_close(app: IBApiApp) -> None:
    _, reply = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "1 min")
    assert reply.errors == []
    assert len(reply.bars) == 210  # 09:30-13:00
    assert reply.events[-1].name == "historicalDataEnd"
    dates = [new_york(b.date) for b in reply.bars]
    assert dates[0] == datetime(2024, 7, 3, 9, 30, tzinfo=NEW_YORK)
    assert dates[-1] == datetime(2024, 7, 3, 12, 59, tzinfo=NEW_YORK)
    assert all(b - a == timedelta(minutes=1) for a, b in itertools.pairwise(dates))
    for bar in reply.bars:
        check_ohlc(bar)
        assert (
            bar.volume > 0
            and bar.barCount > 0
            and Decimal(str(bar.low)) <= bar.wap <= Decimal(str(bar.high))
        )  # wap is a Decimal
    start, end = reply.one("historicalDataEnd")
    assert end == "20240703 16:00:00 US/Eastern"
    assert new_york(start) <= dates[0]


def test_daily_bars_are_dated_yyyymmdd_in_both_formats(app: IBApiApp) -> None:
    days = ["20240627", "20240628", "20240701", "20240702", "20240703"]
    _, text_dates = app.historical_data(AAPL, JULY_3_CLOSE, "5 D", "1 day", format_date=1)
    _, epoch_dates = app.historical_data(AAPL, JULY_3_CLOSE, "5 D", "1 day", format_date=2)
    assert [b.date for b in text_dates.bars] == days
    assert [b.date for b in epoch_dates.bars] == days


def test_format_date_2_gives_intraday_epoch_seconds(app: IBApiApp) -> None:
    _, text = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "1 hour", format_date=1)
    _, epoch = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "1 hour", format_date=2)
    stamps = [int(b.date) for b in epoch.bars]
    assert stamps[0] == int(datetime(2024, 7, 3, 9, 30, tzinfo=NEW_YORK).timestamp())
    assert stamps == [int(new_york(b.date).timestamp()) for b in text.bars]
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in epoch.bars] == [
        (b.open, b.high, b.low, b.close, b.volume) for b in text.bars
    ]


def test_quote_bars_have_no_volume(app: IBApiApp) -> None:
    _, reply = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "1 hour", what="MIDPOINT")
    assert reply.bars
    for bar in reply.bars:
        check_ohlc(bar)
        assert (bar.volume, bar.wap, bar.barCount) == (Decimal(-1), Decimal(-1), -1)


def test_the_three_end_date_forms_agree(app: IBApiApp) -> None:
    replies = {
        end: app.historical_data(AAPL, end, "1 D", "30 mins")[1]
        for end in (JULY_3_CLOSE, "20240703 16:00:00 US/Eastern", "20240703 16:00:00")
    }
    bars = [[(b.date, b.open, b.close, b.volume) for b in r.bars] for r in replies.values()]
    assert bars[0] and bars[0] == bars[1] == bars[2]
    assert replies[JULY_3_CLOSE].errors == replies["20240703 16:00:00 US/Eastern"].errors == []
    [warning] = replies["20240703 16:00:00"].warnings  # the zone-less form is deprecated
    assert warning.pair == (
        2174,
        "Warning: You submitted request with date-time attributes without explicit time zone. "
        "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
        "US/Eastern. Implied time zone functionality will be removed in the next API release",
    )


def test_contract_by_con_id_gives_the_same_bars(app: IBApiApp) -> None:
    aapl_by_con_id = contract(conId=265598, exchange="SMART")
    by_symbol = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "1 hour")[1].bars
    by_con_id = app.historical_data(aapl_by_con_id, JULY_3_CLOSE, "1 D", "1 hour")[1].bars
    assert by_symbol and [str(b) for b in by_con_id] == [str(b) for b in by_symbol]


@pytest.mark.parametrize(
    ("bar_size", "duration", "step"), [("5 secs", "1800 S", 5), ("1 min", "1 D", 60)]
)
def test_keep_up_to_date_follows_the_clock(
    make_gateway: MakeGateway, open_app: OpenApp, bar_size: str, duration: str, step: int
) -> None:
    gw = make_gateway()
    app = open_app(gw)
    req_id, reply = app.historical_data(
        AAPL, "", duration, bar_size, format_date=2, keep_up_to_date=True
    )
    last = int(reply.bars[-1].date)
    assert last == NOW_EPOCH - step  # the last bar with data
    assert int(app.next_update(req_id).date) == last  # resent while the clock stands still
    gw.gateway.config.clock.advance(60)
    update = app.next_update(req_id, lambda bar: int(bar.date) > last)
    assert int(update.date) == NOW_EPOCH + 60 - step
    check_ohlc(update)
    _, fresh = app.historical_data(AAPL, "", duration, bar_size, format_date=2)
    assert [(b.date, b.open, b.high, b.low, b.close) for b in fresh.bars[-1:]] == [
        (update.date, update.open, update.high, update.low, update.close)
    ]
    app.cancel_historical_data(req_id)


def test_cancel_historical_data_stops_the_updates(app: IBApiApp) -> None:
    cancelled, _ = app.historical_data(AAPL, "", "1 D", "1 min", keep_up_to_date=True)
    control, _ = app.historical_data(AAPL, "", "1 D", "1 min", "MIDPOINT", keep_up_to_date=True)
    app.next_update(cancelled)
    app.cancel_historical_data(cancelled)
    app.sync()  # the cancel is processed: anything sent before it has arrived
    app.drain(cancelled)
    app.drain(control)
    for _ in range(3):  # the control subscription keeps streaming ...
        app.next_update(control)
    assert app.drain(cancelled) == []  # ... the cancelled one has stopped
    app.cancel_historical_data(cancelled)
    assert app.first_error(cancelled).pair == (
        366,
        f"No historical data query found for ticker id:{cancelled}",
    )
    app.cancel_historical_data(control)


# ------------------------------------------------------------------------- 321: invalid requests
INVALID = {
    "bar size": (
        {"bar_size": "7 mins"},
        "Historical data bar size setting is invalid. Legal ones are: 1 secs, 5 secs, 10 secs, "
        "15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, 15 mins, 20 mins, 30 mins, "
        "1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M",
    ),
    "duration format": (
        {"duration": "1D"},
        "When specifying a unit, historical data request duration format is integer{SPACE}unit "
        "(S|D|W|M|Y).",
    ),
    "no duration": ({"duration": ""}, "Historical data request duration not specified."),
    "too few seconds": ({"duration": "10 S"}, "Historical data requested duration is invalid."),
    "over 86400 S": (
        {"duration": "86401 S"},
        "Historical data request for greater than 86400 seconds rejected.",
    ),
    "over 365 D": (
        {"duration": "400 D", "bar_size": "1 day"},
        "Historical data requests for durations longer than 365 days must be made in years.",
    ),
    "over 52 W": (
        {"duration": "53 W", "bar_size": "1 day"},
        "Historical data requests for durations longer than 52 weeks must be made in years.",
    ),
    "over 12 M": (
        {"duration": "13 M", "bar_size": "1 day"},
        "Historical data requests for durations longer than 12 months must be made in years.",
    ),
    "over the backfill years": (
        {"duration": "31 Y", "bar_size": "1 day"},
        "Historical data request for 31 year(s) rejected. Max API Backfill Years=30",
    ),
    "TRADES of FX": (
        {"contract": EUR_USD, "what": "TRADES"},
        "What to show value of TRADES rejected.",
    ),
    "unknown whatToShow": ({"what": "FOO"}, "What to show value of FOO rejected."),
    "ADJUSTED_LAST with an end": (
        {"what": "ADJUSTED_LAST", "bar_size": "1 day"},
        "End date not supported with adjusted last",
    ),
    "ADJUSTED_LAST of weeks": (
        {"what": "ADJUSTED_LAST", "end": "", "bar_size": "1 week", "duration": "1 Y"},
        "Multi day bar size not supported with adjusted last",
    ),
    "SCHEDULE of hours": (
        {"what": "SCHEDULE", "bar_size": "1 hour"},
        "Only daily resolution supported for Schedule requests",
    ),
    "formatDate 4": ({"format_date": 4}, "Date formatting selection of 4 rejected."),
    "live with an end": (
        {"keep_up_to_date": True},
        "End date not supported with live updates",
    ),
    "live BID_ASK": (
        {"keep_up_to_date": True, "end": "", "what": "BID_ASK"},
        "Source price not supported with live updates",
    ),
    "live 1 secs": (
        {"keep_up_to_date": True, "end": "", "bar_size": "1 secs", "duration": "60 S"},
        "Bar size not supported with live updates",
    ),
}


@pytest.mark.parametrize(("overrides", "cause"), INVALID.values(), ids=INVALID.keys())
def test_321_names_the_cause(app: IBApiApp, overrides: dict, cause: str) -> None:
    request = {"contract": AAPL, "end": JULY_3_CLOSE, "duration": "1 D", "bar_size": "1 hour"}
    _, reply = app.historical_data(**{**request, **overrides})
    assert reply.bars == []
    check_321(reply.error, cause)


def test_321_bar_size_text_lists_the_legal_sizes(app: IBApiApp) -> None:
    _, reply = app.historical_data(AAPL, JULY_3_CLOSE, "1 D", "7 mins")
    assert "bar size setting is invalid" in reply.error.text
    legal = reply.error.text.split("Legal ones are: ", 1)[1].split(", ")
    assert "7 mins" not in legal and {"1 secs", "1 min", "1 hour", "1 day"} <= set(legal)


# ------------------------------------------------------------------------- other error codes
REFUSED = {
    "162 time length": (
        {"duration": "1 D", "bar_size": "1 secs"},
        162,
        HMDS + "Time length exceed max.",
    ),
    "162 before the head timestamp": (
        {"contract": TSLA, "end": "20090101-00:00:00", "duration": "1 M", "bar_size": "1 day"},
        162,
        HMDS + "HMDS query returned no data: TSLA@SMART Trades",
    ),
    "162 small bars older than six months": (
        {"end": "20240103-20:00:00", "duration": "1800 S", "bar_size": "5 secs"},
        162,
        HMDS + "Historical data requests for bars of 30 secs or less are limited to the last 6 "
        "months.",
    ),
    "10339 continuous future with an end": (
        {"contract": ES_CONTINUOUS},
        10339,
        "Setting end date/time for continuous future security type is not allowed",
    ),
    "166 future expired over two years ago": (
        {
            "contract": contract(
                localSymbol="ESH2", secType="FUT", exchange="CME", includeExpired=True
            ),
            "end": "",
            "bar_size": "1 day",
            "duration": "1 M",
        },
        166,
        "HMDS Expired Contract Violation",
    ),
}


@pytest.mark.parametrize(("overrides", "code", "text"), REFUSED.values(), ids=REFUSED.keys())
def test_refusals(app: IBApiApp, overrides: dict, code: int, text: str) -> None:
    request = {"contract": AAPL, "end": JULY_3_CLOSE, "duration": "1 D", "bar_size": "1 hour"}
    _, reply = app.historical_data(**{**request, **overrides})
    assert reply.bars == []
    assert reply.error.pair == (code, text)


def test_continuous_future_without_an_end_gets_front_month_bars(app: IBApiApp) -> None:
    _, reply = app.historical_data(ES_CONTINUOUS, "", "5 D", "1 day")
    assert reply.errors == [] and len(reply.bars) == 5


@pytest.mark.parametrize(
    ("query", "unknown"),
    [(stock("NOPE"), True), (contract(conId=1, exchange="SMART"), True), (ES, False)],
    ids=["unknown symbol", "unknown conId", "ambiguous future"],
)
def test_200_for_contracts_that_do_not_resolve(
    app: IBApiApp, query: Contract, unknown: bool
) -> None:
    _, reply = app.historical_data(query, JULY_3_CLOSE, "1 D", "1 hour")
    assert reply.bars == [] and reply.error.code == 200
    if unknown:
        assert reply.error.text == NO_SECURITY
    else:
        assert reply.error.text == "The contract description specified for ES is ambiguous."


@pytest.mark.parametrize("end", ["20240703 25:00:00", "20240703 16:00:00 Mars/Olympus", "July 3"])
def test_10314_for_an_invalid_end(app: IBApiApp, end: str) -> None:
    _, reply = app.historical_data(AAPL, end, "1 D", "1 hour")
    assert reply.error.code == 10314
    assert reply.error.text.startswith(
        "End Date/Time: The date, time, or time-zone entered is invalid"
    )
    assert "The correct format is yyyymmdd hh:mm:ss xx/xxxx" in reply.error.text


def test_366_for_cancelling_an_unknown_request(app: IBApiApp) -> None:
    app.cancelHistoricalData(4242)
    assert app.first_error(4242).pair == (366, "No historical data query found for ticker id:4242")


def test_162_pacing_violation_for_an_identical_small_bar_request(
    make_gateway: MakeGateway, open_app: OpenApp
) -> None:
    app = open_app(make_gateway(pacing=PacingRules()))  # IB's rules, clock standing still
    _, first = app.historical_data(AAPL, "", "1800 S", "5 secs")
    assert first.errors == [] and len(first.bars) == 360
    _, again = app.historical_data(AAPL, "", "1800 S", "5 secs")
    assert again.bars == []
    assert again.error.pair == (162, HMDS + "Historical data request pacing violation")
    for _ in range(2):  # bars of a minute and more are not paced
        _, minutes = app.historical_data(AAPL, "", "1 D", "1 min")
        assert minutes.errors == [] and minutes.bars


def test_322_beyond_the_open_request_cap(make_gateway: MakeGateway, open_app: OpenApp) -> None:
    app = open_app(make_gateway(pacing=replace(RELAXED, max_open=2)))
    live = [
        app.historical_data(AAPL, "", "1 D", "1 min", what, keep_up_to_date=True)
        for what in ("TRADES", "MIDPOINT")
    ]
    assert all(reply.errors == [] and reply.bars for _, reply in live)
    _, third = app.historical_data(AAPL, "", "1 D", "1 min", "BID", keep_up_to_date=True)
    assert third.bars == []
    assert third.error.pair == (
        322,
        "Error processing request.-'bS' : cause - Only 2 simultaneous API historical data "
        "requests allowed.",
    )
    app.cancel_historical_data(live[0][0])  # frees a slot
    _, retried = app.historical_data(AAPL, "", "1 D", "1 min", "BID", keep_up_to_date=True)
    assert retried.errors == [] and retried.bars


def test_166_for_an_option_after_its_expiry(make_gateway: MakeGateway, open_app: OpenApp) -> None:
    gw = make_gateway()
    app = open_app(gw)
    [details] = app.contract_details(SPY_CALL).firsts("contractDetails")
    assert details.contract.localSymbol == "SPY   240712C00560000"
    option = contract(conId=details.contract.conId, exchange="SMART")
    _, live = app.historical_data(option, "", "1 D", "1 hour")
    assert live.errors == [] and live.bars
    gw.gateway.config.clock.advance(timedelta(days=7).total_seconds())
    _, expired = app.historical_data(option, "", "1 D", "1 hour")
    assert expired.bars == []
    assert expired.error.pair == (166, "HMDS Expired Contract Violation")
    # Expired options are not listed any more, includeExpired or not (IB: futures only).
    for query in (SPY_CALL, replace_contract(SPY_CALL, includeExpired=True)):
        assert app.contract_details(query).error.code == 200
