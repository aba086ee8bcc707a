"""Reference-data requests: contract details, matching symbols, option parameters, market rules."""

from __future__ import annotations

from dataclasses import replace

from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader
from ibsim.market import errors, options
from ibsim.market.calendars import VENUES, trading_hours
from ibsim.market.catalog import FIXED
from ibsim.market.instruments import MARKET_RULES, Instrument

MAX_MATCHING_SYMBOLS = 16
# minSize, sizeIncrement, suggestedSizeIncrement by security type, unless the instrument has its
# own (bonds, crypto, funds)
_SIZE_RULES = {"STK": ("0.0001", "0.0001", "100"), "CASH": ("0.01", "0.01", "1000")}
# What reqMatchingSymbols finds: a CFD is listed as its stock's derivative type, and a bond is
# looked up by its CUSIP, not by name.
_SEARCHABLE = tuple(i for i in FIXED if i.sec_type not in ("CFD", "BOND"))


def strike_text(value: float) -> str:
    return f"{value:g}" if value else "0"


def _size_rules(inst: Instrument) -> tuple[str, str, str]:
    return inst.size_rules or _SIZE_RULES.get(inst.sec_type, ("1", "1", "1"))


def _market_rules(inst: Instrument) -> str:
    """One market rule id per valid exchange, comma-separated."""
    return ",".join([str(inst.market_rule)] * len(inst.valid_exchanges.split(",")))


def contract_details_fields(req_id: int, inst: Instrument, now) -> list[object]:
    """msg 10 at server version 178: 42 fields with one secId, as the clients decode it; a bond
    is msg 18 (`bond_details_fields`)."""
    if inst.bond is not None:
        return bond_details_fields(req_id, inst)
    venue = VENUES[inst.venue]
    sec_ids = [1, "ISIN", inst.isin] if inst.isin else [0]
    rules = _market_rules(inst)
    return [
        10, req_id, inst.symbol, inst.sec_type, inst.last_trade_date, strike_text(inst.strike),
        inst.right, inst.exchange, inst.currency, inst.local_symbol,
        inst.trading_class, inst.trading_class, inst.con_id, repr(inst.min_tick),
        inst.multiplier, inst.order_types, inst.valid_exchanges, 1, inst.under_con_id,
        inst.long_name, inst.primary_exchange, inst.contract_month, inst.industry,
        inst.category, inst.subcategory, venue.ib_tz,
        trading_hours(inst.venue, False, now), trading_hours(inst.venue, True, now),
        "", "", *sec_ids, 1, inst.under_symbol, inst.under_sec_type, rules,
        inst.last_trade_date, inst.stock_type, *_size_rules(inst),
    ]  # fmt: skip


def bond_details_fields(req_id: int, inst: Instrument) -> list[object]:
    """msg 18 (BOND_CONTRACT_DATA) at server version 178, as both clients decode it: no
    version, no localSymbol, no trading hours (those came at 188). The coupon is spelled `4`,
    not `4.0`: ib_async reads it as an int."""
    terms = inst.bond
    assert terms is not None, "msg 18 is a bond's"
    return [
        18, req_id, inst.symbol, inst.sec_type, terms.cusip, f"{terms.coupon:g}", terms.maturity,
        terms.issue_date, terms.ratings, terms.bond_type, terms.coupon_type, False, False, False,
        terms.desc_append, inst.exchange, inst.currency, inst.trading_class, inst.trading_class,
        inst.con_id, repr(inst.min_tick), inst.order_types, inst.valid_exchanges, "", "", False,
        "", inst.long_name, "", "", 2, "ISIN", inst.isin, "CUSIP", terms.cusip, 1,
        _market_rules(inst), *_size_rules(inst),
    ]  # fmt: skip


def contract_details(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    query = replace(msg.contract(), include_expired=msg.bool())
    query = replace(query, sec_id_type=msg.str().strip(), sec_id=msg.str().strip())
    found = client.state.catalog.find(query)
    if not found:
        raise errors.NO_SECURITY
    now = client.now()
    for inst in found:
        client.send(*contract_details_fields(req_id, inst, now))
    client.send(52, 1, req_id)


def matching_symbols(client: Client, msg: FieldReader) -> None:
    req_id = msg.request_id()
    pattern = msg.str().strip().upper()
    hits = [
        i
        for i in _SEARCHABLE
        if pattern and (i.symbol.startswith(pattern) or pattern in i.long_name.upper())
    ]
    hits.sort(key=lambda i: (not i.symbol.startswith(pattern), len(i.symbol), i.symbol))
    fields: list[object] = [79, req_id, len(hits[:MAX_MATCHING_SYMBOLS])]
    for inst in hits[:MAX_MATCHING_SYMBOLS]:
        fields += [inst.con_id, inst.symbol, inst.sec_type, inst.primary_exchange or inst.exchange]
        fields += [inst.currency, len(inst.derivative_sec_types), *inst.derivative_sec_types]
        fields += [inst.long_name, ""]
    client.send(*fields)


def option_parameters(client: Client, msg: FieldReader) -> None:
    """One message per class and exchange: stock and index options (futFopExchange empty) or
    futures options (futFopExchange the future's exchange), by underlying symbol and conId."""
    req_id = msg.request_id()
    symbol = msg.str().strip().upper()
    fut_fop_exchange = msg.str().strip().upper()
    sec_type = msg.str().strip().upper()
    con_id = msg.int()
    for cls in options.option_classes(client.now()):
        under = cls.underlying
        if under.symbol != symbol or con_id not in (0, under.con_id):
            continue
        if (sec_type and sec_type != under.sec_type) or (
            fut_fop_exchange and fut_fop_exchange not in cls.exchanges
        ):
            continue
        strikes = [strike_text(s) for s in cls.strikes]
        for exchange in cls.exchanges:
            client.send(
                75, req_id, exchange, under.con_id, cls.trading_class, cls.multiplier,
                len(cls.expiries), *cls.expiries, len(strikes), *strikes,
            )  # fmt: skip
    client.send(76, req_id)


def market_rule(client: Client, msg: FieldReader) -> None:
    rule_id = msg.int()
    increments = MARKET_RULES.get(rule_id)
    if increments is None:
        raise errors.invalid_request(f"Market rule id {rule_id} is not known.")
    fields: list[object] = [93, rule_id, len(increments)]
    for low_edge, increment in increments:
        fields += [repr(low_edge), repr(increment)]
    client.send(*fields)
