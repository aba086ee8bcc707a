"""Account data: positions, account values and summary, portfolio, P&L and family codes.

Every value comes from `ibsim.accounts.valuation` (pure functions of the Book and the market at the
gateway's now), so tests can compute what the gateway sends. Layouts at server version 178
(as the clients decode them), checked against ib_async's and ibapi's decoders. Accounts a
request names are read with `Book.account_ids`: a sub-account, "All" (or ""), the master code
with or without "A" (every sub-account), or an FA group name. Positions are pushed again on
every fill to reqPositions subscribers, as IB does; the other values are sent once, at the
request: no periodic updates yet.

Account summary subscriptions are counted per gateway login: at most two open (the third gets
322); cancelAccountSummary (63) frees a slot, and so does the end of the client's connection.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ibsim.accounts import valuation
from ibsim.handlers.client import Client
from ibsim.handlers.fields import FieldReader
from ibsim.handlers.reference import strike_text
from ibsim.market import errors
from ibsim.market.instruments import Instrument

# Open reqAccountSummary subscriptions per login (IB's reqAccountSummary page)
MAX_ACCOUNT_SUMMARIES = 2
_EASTERN = ZoneInfo("US/Eastern")


def _contract(con_id: int, inst: Instrument | None) -> list[object]:
    """The 11 contract fields of position, positionMulti and updatePortfolio (conId ...
    tradingClass); the exchange slot is the primary exchange (empty for futures, options, FX)."""
    if inst is None:
        return [con_id, "", "", "", "0", "", "", "", "USD", "", ""]
    return [
        con_id, inst.symbol, inst.sec_type, inst.last_trade_date, strike_text(inst.strike),
        inst.right, inst.multiplier, inst.primary_exchange, inst.currency, inst.local_symbol,
        inst.trading_class,
    ]  # fmt: skip


def _args(client: Client):
    state = client.state
    return state.book, state.catalog, client.now()


# ----------------------------------------------------------------------------- positions
def positions(client: Client, msg: FieldReader) -> None:
    """reqPositions: every position of every account (version 3: avgCost included), then 62;
    from then on, until cancelPositions, each position again whenever a fill changes it."""
    for v in valuation.portfolio_rows(*_args(client)):
        client.send(*_position_fields(v.account, v.con_id, v.instrument, v.quantity, v.avg_cost))
    client.send(62, 1)
    client.positions_subscribed = True


def cancel_positions(client: Client, msg: FieldReader) -> None:
    client.positions_subscribed = False


def position_changed(client: Client, account: str, con_id: int) -> None:
    """The `position` IB pushes to a reqPositions subscriber after a fill (quantity 0 and no
    average cost once the position is closed)."""
    book, catalog, now = _args(client)
    for v in valuation.portfolio_rows(book, catalog, now, (account,)):
        if v.con_id == con_id:
            fields = _position_fields(account, con_id, v.instrument, v.quantity, v.avg_cost)
            break
    else:
        fields = _position_fields(account, con_id, catalog.by_con_id(con_id), 0.0, 0.0)
    client.notify(*fields)


def _position_fields(
    account: str, con_id: int, inst: Instrument | None, quantity: float, avg_cost: float
) -> list[object]:
    return [
        61, 3, account, *_contract(con_id, inst),
        valuation.quantity_text(quantity), valuation.number_text(avg_cost),
    ]  # fmt: skip


def positions_multi(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    account, model_code = msg.str(), msg.str()
    book, catalog, now = _args(client)
    for v in valuation.portfolio_rows(book, catalog, now, book.account_ids(account)):
        client.send(
            71, 1, req_id, v.account, *_contract(v.con_id, v.instrument),
            valuation.quantity_text(v.quantity), valuation.number_text(v.avg_cost), model_code,
        )  # fmt: skip
    client.send(72, 1, req_id)


# ----------------------------------------------------------------------------- account updates
def account_updates(client: Client, msg: FieldReader) -> None:
    """reqAccountUpdates: values, portfolio, time and accountDownloadEnd for the named account
    (the master code, with or without "A", covers every sub-account). A new subscription
    replaces the last one; nothing is sent after the first image, so unsubscribing is silent."""
    msg.skip()  # version
    subscribe, code = msg.bool(), msg.str()
    if not subscribe:
        return
    book, catalog, now = _args(client)
    for account in book.account_ids(code):
        for key, value, currency in valuation.account_values(book, catalog, now, account):
            client.send(6, 2, key, value, currency, account)
        for v in valuation.portfolio_rows(book, catalog, now, (account,)):
            client.send(
                7, 8, *_contract(v.con_id, v.instrument), valuation.quantity_text(v.quantity),
                *(valuation.number_text(x) for x in (
                    v.market_price, v.market_value, v.avg_cost, v.unrealized_pnl, v.realized_pnl,
                )),
                account,
            )  # fmt: skip
    client.send(8, 1, f"{now.astimezone(_EASTERN):%H:%M}")
    client.send(54, 1, code)


def account_updates_multi(client: Client, msg: FieldReader) -> None:
    """reqAccountUpdatesMulti: every account value (or with ledgerAndNLV only the ledger and
    NetLiquidation) of each account the request names, then accountUpdateMultiEnd."""
    msg.skip()  # version
    req_id = msg.request_id()
    account, model_code, light = msg.str(), msg.str(), msg.bool()
    book, catalog, now = _args(client)
    for acct in book.account_ids(account):
        for key, value, currency in valuation.account_values(book, catalog, now, acct, light):
            client.send(73, 1, req_id, acct, model_code, key, value, currency)
    client.send(74, 1, req_id)


# ----------------------------------------------------------------------------- account summary
def _open_summaries(client: Client) -> int:
    """This login's open summary subscriptions, without those of closing connections."""
    return sum(len(peer.account_summaries) for peer in client.peers() if not peer.closing)


def account_summary(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    group, tags = msg.str(), msg.str()
    if req_id not in client.account_summaries and _open_summaries(client) >= MAX_ACCOUNT_SUMMARIES:
        raise errors.TOO_MANY_SUMMARIES
    client.account_summaries.add(req_id)
    book, catalog, now = _args(client)
    for row in valuation.summary(book, catalog, now, book.account_ids(group), tags):
        client.send(63, 1, req_id, row.account, row.tag, row.value, row.currency)
    client.send(64, 1, req_id)


def cancel_account_summary(client: Client, msg: FieldReader) -> None:
    """cancelAccountSummary: frees the subscription's slot; no reply."""
    msg.skip()  # version
    client.account_summaries.discard(msg.request_id())


# ----------------------------------------------------------------------------- P&L
def pnl(client: Client, msg: FieldReader) -> None:
    """reqPnL: one pnl message at the subscription (no periodic updates)."""
    req_id = msg.request_id()
    account, _model_code = msg.str(), msg.str()
    book, catalog, now = _args(client)
    accounts = book.account_ids(account)
    if not account or not accounts:
        cause = "Account must not be empty" if not account else "Invalid account code"
        raise errors.invalid_request(cause)
    daily, unrealized, realized = valuation.pnl(book, catalog, now, accounts)
    client.send(94, req_id, *(valuation.number_text(x) for x in (daily, unrealized, realized)))


def pnl_single(client: Client, msg: FieldReader) -> None:
    """reqPnLSingle: one pnlSingle at the subscription; nothing at all for a contract the
    account does not hold (IB's behaviour)."""
    req_id = msg.request_id()
    account, _model_code, con_id = msg.str(), msg.str(), msg.int()
    book, catalog, now = _args(client)
    found = valuation.pnl_single(book, catalog, now, book.account_ids(account), con_id)
    if found is None:
        return
    client.send(
        95, req_id, valuation.quantity_text(found.position),
        *(valuation.number_text(x) for x in found[1:]),
    )  # fmt: skip


# ----------------------------------------------------------------------------- family codes
def family_codes(client: Client, msg: FieldReader) -> None:
    codes = valuation.family_codes(client.state.book)
    client.send(78, len(codes), *(x for pair in codes for x in pair))
