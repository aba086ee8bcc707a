"""Account data: positions, account values and summary, portfolio, P&L and family codes.

Every value comes from `ibsim.accounts.valuation` (pure functions of the Book and the market at
the gateway's now), so tests can compute what the gateway sends. Layouts at server version 178
(as the clients decode them), checked against ib_async's and ibapi's decoders. Accounts a
request names are read with `Book.account_ids`: a sub-account, "All" (or ""), the master code
with or without "A" (every sub-account), or an FA group name.

Subscriptions go on as IB's do (TWS API "Account Updates" and "Profit And Loss" pages: account
values refresh every 3 minutes and when a position changes). Positions are pushed again on every
fill to reqPositions subscribers. reqAccountUpdates, reqAccountUpdatesMulti and
reqAccountSummary are `Refreshed` subscriptions: after each fill in one of their accounts they
send that account's rows again at the pump's next wake, after the fill's own messages
(reqAccountUpdates: its values, the changed portfolio row, the time and accountDownloadEnd),
and every `config.account_update_interval` gateway seconds all of
them; reqPnL and reqPnLSingle send every `config.pnl_interval`. The streaming pump
(ibsim.handlers.streaming) keeps the time, so a fast or manual clock speeds them up; each ends at
its cancel or with the connection.

Account summary subscriptions are counted per gateway login: at most two open (the third gets
322); cancelAccountSummary (63) frees a slot, and so does the end of the client's connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar
from zoneinfo import ZoneInfo

from ibsim.accounts import valuation
from ibsim.accounts.book import Book
from ibsim.config import GatewayConfig
from ibsim.handlers import streaming
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


# ----------------------------------------------------------------------------- subscriptions
# The key of the reqAccountUpdates subscription among a client's subscriptions: it has no reqId,
# and -1 is the id IB gives messages that answer none.
ACCOUNT_UPDATES = -1


@dataclass(eq=False)
class Refreshed:
    """An account subscription whose rows are sent again every `interval` gateway seconds (the
    streaming pump calls `advance`) and, if `on_fills`, after each fill in its accounts."""

    req_id: int
    next_at: float = 0.0  # the gateway time of the next refresh (set by `_subscribe`)
    # (account, conId) that fills changed since the last wake of the pump
    changed: set[tuple[str, int]] = field(default_factory=set)
    takes_line: ClassVar[bool] = False
    on_fills: ClassVar[bool] = True

    def interval(self, config: GatewayConfig) -> float:
        return config.account_update_interval

    def accounts(self, book: Book) -> list[str]:
        raise NotImplementedError

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        """The subscription's messages for `accounts`; `con_id`: only that portfolio row."""
        raise NotImplementedError

    def advance(self, client: Client, now: int, live: bool) -> None:
        if live and self.changed:  # what fills changed: kept while the client cannot hear
            for account, con_id in sorted(self.changed):
                self.send_rows(client, [account], con_id)
            self.changed.clear()
        if now < self.next_at:
            return
        if live:
            self.send_rows(client, self.accounts(client.state.book), None)
        self.next_at = now + self.interval(client.state.config)

    def filled(self, client: Client, account: str, con_id: int) -> None:
        """Noted for the pump's next wake, not sent in the fill's own path: valuing an account
        takes a while, and IB's order status and execution never wait for its account data."""
        if self.on_fills and account in self.accounts(client.state.book):
            self.changed.add((account, con_id))


def _subscribe(client: Client, sub: Refreshed) -> None:
    """Send the first image of `sub` now and keep it refreshed."""
    sub.next_at = client.now().timestamp() + sub.interval(client.state.config)
    sub.send_rows(client, sub.accounts(client.state.book), None)
    streaming.start(client, sub)


def _unsubscribe(client: Client, req_id: int, kind: type[Refreshed]) -> None:
    """End the `kind` subscription `req_id`; silent if there is none, as IB's cancels are."""
    if isinstance(client.subscriptions.get(req_id), kind):
        del client.subscriptions[req_id]


def filled(client: Client, account: str, con_id: int) -> None:
    """A fill changed `account`'s position in `con_id`: what IB pushes to this client, if it
    subscribed (reqPositions, account updates, multi and summary)."""
    if client.positions_subscribed:
        client.notify(*_changed_position(client, account, con_id))
    for sub in list(client.subscriptions.values()):
        if isinstance(sub, Refreshed):
            sub.filled(client, account, con_id)


def _changed_position(client: Client, account: str, con_id: int) -> list[object]:
    """The `position` IB pushes to a reqPositions subscriber after a fill (quantity 0 once the
    position is closed), read from the book: no valuation in the fill's path."""
    book, catalog = client.state.book, client.state.catalog
    held = next((p for p in book.positions if (p.account, p.con_id) == (account, con_id)), None)
    quantity, avg_cost = (float(held.quantity), float(held.avg_cost)) if held else (0.0, 0.0)
    return _position_fields(account, con_id, catalog.by_con_id(con_id), quantity, avg_cost)


# ----------------------------------------------------------------------------- account updates
@dataclass(eq=False)
class AccountUpdates(Refreshed):
    """reqAccountUpdates of one account code (the master's, with or without "A": every
    sub-account)."""

    code: str = ""

    def accounts(self, book: Book) -> list[str]:
        return list(book.account_ids(self.code))

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        book, catalog, now = _args(client)
        for account in accounts:
            for key, value, currency in valuation.account_values(book, catalog, now, account):
                client.send(6, 2, key, value, currency, account)
            for v in valuation.portfolio_rows(book, catalog, now, (account,)):
                if con_id is None or v.con_id == con_id:
                    client.send(
                        7, 8, *_contract(v.con_id, v.instrument),
                        valuation.quantity_text(v.quantity),
                        *(valuation.number_text(x) for x in (
                            v.market_price, v.market_value, v.avg_cost, v.unrealized_pnl,
                            v.realized_pnl,
                        )),
                        account,
                    )  # fmt: skip
        client.send(8, 1, f"{now.astimezone(_EASTERN):%H:%M}")
        client.send(54, 1, self.code)


def account_updates(client: Client, msg: FieldReader) -> None:
    """reqAccountUpdates: values, portfolio, time and accountDownloadEnd for the named account;
    a new subscription replaces the last one, an unsubscribe ends it."""
    msg.skip()  # version
    subscribe, code = msg.bool(), msg.str()
    if subscribe:
        _subscribe(client, AccountUpdates(ACCOUNT_UPDATES, code=code))
    else:
        _unsubscribe(client, ACCOUNT_UPDATES, AccountUpdates)


@dataclass(eq=False)
class AccountUpdatesMulti(Refreshed):
    """reqAccountUpdatesMulti: every account value (with ledgerAndNLV only the ledger and
    NetLiquidation) of each account the request names, then accountUpdateMultiEnd."""

    account: str = ""
    model_code: str = ""
    light: bool = False

    def accounts(self, book: Book) -> list[str]:
        return list(book.account_ids(self.account))

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        book, catalog, now = _args(client)
        for acct in accounts:
            for key, value, currency in valuation.account_values(
                book, catalog, now, acct, self.light
            ):
                client.send(73, 1, self.req_id, acct, self.model_code, key, value, currency)
        client.send(74, 1, self.req_id)


def account_updates_multi(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    account, model_code, light = msg.str(), msg.str(), msg.bool()
    sub = AccountUpdatesMulti(req_id, account=account, model_code=model_code, light=light)
    _subscribe(client, sub)


def cancel_account_updates_multi(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    _unsubscribe(client, msg.request_id(), AccountUpdatesMulti)


# ----------------------------------------------------------------------------- account summary
@dataclass(eq=False)
class AccountSummary(Refreshed):
    """reqAccountSummary: the requested tags of each account of the group, then its End."""

    group: str = ""
    tags: str = ""

    def accounts(self, book: Book) -> list[str]:
        return list(book.account_ids(self.group))

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        book, catalog, now = _args(client)
        for row in valuation.summary(book, catalog, now, accounts, self.tags):
            client.send(63, 1, self.req_id, row.account, row.tag, row.value, row.currency)
        client.send(64, 1, self.req_id)


def _open_summaries(client: Client) -> int:
    """This login's open summary subscriptions, without those of closing connections."""
    return sum(
        isinstance(sub, AccountSummary)
        for peer in client.peers()
        if not peer.closing
        for sub in peer.subscriptions.values()
    )


def account_summary(client: Client, msg: FieldReader) -> None:
    msg.skip()  # version
    req_id = msg.request_id()
    group, tags = msg.str(), msg.str()
    renewed = isinstance(client.subscriptions.get(req_id), AccountSummary)
    if not renewed and _open_summaries(client) >= MAX_ACCOUNT_SUMMARIES:
        raise errors.TOO_MANY_SUMMARIES
    _subscribe(client, AccountSummary(req_id, group=group, tags=tags))


def cancel_account_summary(client: Client, msg: FieldReader) -> None:
    """cancelAccountSummary: ends the subscription and frees its slot; no reply."""
    msg.skip()  # version
    _unsubscribe(client, msg.request_id(), AccountSummary)


# ----------------------------------------------------------------------------- P&L
@dataclass(eq=False)
class PnL(Refreshed):
    """reqPnL: the accounts' daily, unrealized and realized P&L every `pnl_interval`."""

    account: str = ""
    on_fills: ClassVar[bool] = False  # the next second's pnl shows the fill

    def interval(self, config: GatewayConfig) -> float:
        return config.pnl_interval

    def accounts(self, book: Book) -> list[str]:
        return list(book.account_ids(self.account))

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        book, catalog, now = _args(client)
        daily, unrealized, realized = valuation.pnl(book, catalog, now, accounts)
        client.send(
            94, self.req_id, *(valuation.number_text(x) for x in (daily, unrealized, realized))
        )


def pnl(client: Client, msg: FieldReader) -> None:
    req_id = msg.request_id()
    account, _model_code = msg.str(), msg.str()
    if not account or not client.state.book.account_ids(account):
        cause = "Account must not be empty" if not account else "Invalid account code"
        raise errors.invalid_request(cause)
    _subscribe(client, PnL(req_id, account=account))


@dataclass(eq=False)
class PnLSingle(PnL):
    """reqPnLSingle: one contract's position and P&L in the accounts every `pnl_interval`."""

    con_id: int = 0

    def send_rows(self, client: Client, accounts: list[str], con_id: int | None) -> None:
        book, catalog, now = _args(client)
        found = valuation.pnl_single(book, catalog, now, accounts, self.con_id)
        if found is not None:
            client.send(
                95, self.req_id, valuation.quantity_text(found.position),
                *(valuation.number_text(x) for x in found[1:]),
            )  # fmt: skip


def pnl_single(client: Client, msg: FieldReader) -> None:
    """reqPnLSingle; nothing at all, now or later, for a contract the accounts do not hold
    (IB's behaviour)."""
    req_id = msg.request_id()
    account, _model_code, con_id = msg.str(), msg.str(), msg.int()
    book, catalog, now = _args(client)
    if valuation.pnl_single(book, catalog, now, book.account_ids(account), con_id) is not None:
        _subscribe(client, PnLSingle(req_id, account=account, con_id=con_id))


def cancel_pnl(client: Client, msg: FieldReader) -> None:
    _unsubscribe(client, msg.request_id(), PnL)  # a PnLSingle is a PnL too: one id, one kind


def cancel_pnl_single(client: Client, msg: FieldReader) -> None:
    _unsubscribe(client, msg.request_id(), PnLSingle)


# ----------------------------------------------------------------------------- family codes
def family_codes(client: Client, msg: FieldReader) -> None:
    codes = valuation.family_codes(client.state.book)
    client.send(78, len(codes), *(x for pair in codes for x in pair))
