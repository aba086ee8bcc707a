"""A harness for driving the embedded gateway with the official TWS API client (`ibapi`).

`IBApiApp` is the usual EWrapper + EClient pair, unmodified apart from the wrapper callbacks: every
callback is recorded as an `Event` in a queue keyed by its reqId (or, for callbacks that carry
none, by the callback's name). `EClient.run()` runs on a background thread, so tests send a
request on the test thread and wait, always with a timeout, for what the client decoded.

Nothing here reaches into the gateway; the harness only sees what came over the socket.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ibapi.client import EClient
from ibapi.common import BarData, HistoricalSession, PriceIncrement
from ibapi.contract import Contract, ContractDescription, ContractDetails
from ibapi.wrapper import EWrapper

WAIT = 15.0  # seconds: the most any one reply may take
HOST = "127.0.0.1"
_client_ids = itertools.count(500)


def next_client_id() -> int:
    """A clientId no other connection of this test run uses (ib_async tests count from 100)."""
    return next(_client_ids)


@dataclass(frozen=True)
class ApiError:
    """One `error` callback: IB's code and text for a request id (-1: the connection)."""

    req_id: int
    code: int
    text: str

    @property
    def is_warning(self) -> bool:
        """Codes 2100-2199 (farm notices, 2174 ...) are information; the request carries on."""
        return 2100 <= self.code < 2200

    @property
    def is_client_side(self) -> bool:
        """ibapi's own codes (501-599: not connected, unknown message id, bad message ...)."""
        return 500 < self.code < 600

    @property
    def pair(self) -> tuple[int, str]:
        return self.code, self.text


@dataclass(frozen=True)
class Event:
    """One wrapper callback, without its reqId (the queue it sits in says which request)."""

    name: str
    args: tuple[Any, ...]


@dataclass
class Reply:
    """Everything one request got back, up to its end callback or its first real error."""

    events: list[Event] = field(default_factory=list)
    errors: list[ApiError] = field(default_factory=list)

    def all(self, name: str) -> list[tuple[Any, ...]]:
        return [e.args for e in self.events if e.name == name]

    def firsts(self, name: str) -> list[Any]:
        """The first argument of every `name` callback (the payload of one-argument ones)."""
        return [args[0] for args in self.all(name)]

    def one(self, name: str) -> tuple[Any, ...]:
        found = self.all(name)
        assert len(found) == 1, f"expected one {name}, got {len(found)}: {self}"
        return found[0]

    @property
    def bars(self) -> list[BarData]:
        return self.firsts("historicalData")

    @property
    def error(self) -> ApiError | None:
        """The error that ended the request, if one did."""
        return next((e for e in self.errors if not e.is_warning), None)

    @property
    def warnings(self) -> list[ApiError]:
        return [e for e in self.errors if e.is_warning]


class _ErrorLogs(logging.Handler):
    """ibapi logs (instead of raising) when it drops a message it could not decode."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class IBApiApp(EWrapper, EClient):
    """The official client, recording its callbacks into per-request queues."""

    def __init__(self) -> None:
        EWrapper.__init__(self)
        EClient.__init__(self, wrapper=self)
        self._queues: dict[int | str, queue.Queue[Event]] = {}
        self._queues_lock = threading.Lock()
        self._req_ids = itertools.count(1)
        self._live: set[int] = set()  # keepUpToDate subscriptions still open
        self._loop: threading.Thread | None = None
        self.errors: list[ApiError] = []  # every error callback, in order
        self._log_errors = _ErrorLogs()

    # ------------------------------------------------------------- connecting
    def start(self, port: int, client_id: int | None = None) -> IBApiApp:
        """connect() and run() on a thread; returns once the gateway has sent nextValidId."""
        self.open(port, client_id)
        self.next_event("nextValidId")
        return self

    def open(self, port: int, client_id: int | None = None) -> None:
        """connect() and start the message loop, without waiting for any answer."""
        logging.getLogger("ibapi").addHandler(self._log_errors)
        client_id = next_client_id() if client_id is None else client_id
        # connect() itself loops until the handshake reply arrives: bound it with a thread.
        connecting = threading.Thread(
            target=self.connect, args=(HOST, port, client_id), name="ibapi-connect", daemon=True
        )
        connecting.start()
        connecting.join(WAIT)
        assert not connecting.is_alive(), f"connect() did not return within {WAIT:.0f} s"
        # Not isConnected(): a gateway refusing the clientId may already have hung up.
        assert self.serverVersion() is not None, f"no handshake with the gateway: {self.errors}"
        self._loop = threading.Thread(target=self.run, name=f"ibapi-run-{client_id}", daemon=True)
        self._loop.start()

    def close(self) -> None:
        """Cancel live subscriptions, let every reply in flight arrive, then disconnect.

        The order matters: ibapi's run() keeps decoding queued messages after disconnect(), but
        disconnect() has reset serverVersion() to None, so a message still queued then kills
        run() with a TypeError (`None >= int`). Quiet the connection first.
        """
        try:
            if self.isConnected():
                try:
                    for req_id in sorted(self._live):
                        self.cancel_historical_data(req_id)
                    self.sync()
                finally:
                    self.disconnect()
            if self._loop is not None:
                self._loop.join(WAIT)
                assert not self._loop.is_alive(), "EClient.run() did not end after disconnect()"
        finally:
            logging.getLogger("ibapi").removeHandler(self._log_errors)

    def sync(self) -> int:
        """A round trip: once currentTime is back, every earlier reply has been decoded."""
        self.drain("currentTime")
        self.reqCurrentTime()
        return self.next_event("currentTime").args[0]

    @property
    def decode_failures(self) -> list[str]:
        """Messages ibapi logged as undecodable (wrong field count, bad values, ...)."""
        return [r.getMessage() for r in self._log_errors.records]

    # ------------------------------------------------------------- the inboxes
    def _queue(self, key: int | str) -> queue.Queue[Event]:
        with self._queues_lock:
            return self._queues.setdefault(key, queue.Queue())

    def _put(self, key: int | str, name: str, *args: Any) -> None:
        self._queue(key).put(Event(name, args))

    def next_req_id(self) -> int:
        return next(self._req_ids)

    def next_event(self, key: int | str, timeout: float = WAIT) -> Event:
        try:
            return self._queue(key).get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise AssertionError(f"no callback for {key!r} before the timeout") from None

    def drain(self, key: int | str) -> list[Event]:
        """Everything queued for `key` so far, without waiting."""
        out = []
        q = self._queue(key)
        while True:
            try:
                out.append(q.get_nowait())
            except queue.Empty:
                return out

    def collect(self, req_id: int, *ends: str, timeout: float = WAIT) -> Reply:
        """The callbacks of one request up to one named in `ends`, or up to a real error."""
        reply = Reply()
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(req_id, deadline - time.monotonic())
            if event.name == "error":
                error: ApiError = event.args[0]
                reply.errors.append(error)
                if not error.is_warning:
                    return reply
                continue
            reply.events.append(event)
            if event.name in ends:
                return reply

    def first_error(self, req_id: int, timeout: float = WAIT) -> ApiError:
        """The first real error (not a 21xx notice) sent for `req_id`, skipping everything else."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next_event(req_id, deadline - time.monotonic())
            if event.name == "error" and not event.args[0].is_warning:
                return event.args[0]

    # ------------------------------------------------------------- requests
    def contract_details(self, contract: Contract) -> Reply:
        req_id = self.next_req_id()
        self.reqContractDetails(req_id, contract)
        return self.collect(req_id, "contractDetailsEnd")

    def matching_symbols(self, pattern: str) -> Reply:
        req_id = self.next_req_id()
        self.reqMatchingSymbols(req_id, pattern)
        return self.collect(req_id, "symbolSamples")

    def sec_def_opt_params(self, symbol: str, sec_type: str, con_id: int) -> Reply:
        req_id = self.next_req_id()
        self.reqSecDefOptParams(req_id, symbol, "", sec_type, con_id)
        return self.collect(req_id, "securityDefinitionOptionParameterEnd")

    def market_rule(self, rule_id: int) -> Event:
        self.reqMarketRule(rule_id)
        return self.next_event("marketRule")

    def head_timestamp(
        self, contract: Contract, what: str = "TRADES", use_rth: int = 0, format_date: int = 1
    ) -> Reply:
        """reqHeadTimeStamp, then cancelHeadTimeStamp: IB counts an uncancelled one as open."""
        req_id = self.next_req_id()
        self.reqHeadTimeStamp(req_id, contract, what, use_rth, format_date)
        reply = self.collect(req_id, "headTimestamp")
        self.cancelHeadTimeStamp(req_id)
        return reply

    def historical_data(
        self,
        contract: Contract,
        end: str = "",
        duration: str = "1 D",
        bar_size: str = "1 min",
        what: str = "TRADES",
        use_rth: int = 1,
        format_date: int = 1,
        keep_up_to_date: bool = False,
    ) -> tuple[int, Reply]:
        """reqHistoricalData up to historicalDataEnd (or historicalSchedule), or its error.

        A keepUpToDate request stays open after its first answer: its updates queue up for
        `next_update`, and `close()` cancels it if the test has not.
        """
        req_id = self.next_req_id()
        if keep_up_to_date:
            self._live.add(req_id)
        self.reqHistoricalData(
            req_id, contract, end, duration, bar_size, what, use_rth, format_date,
            keep_up_to_date, [],
        )  # fmt: skip
        reply = self.collect(req_id, "historicalDataEnd", "historicalSchedule")
        if reply.error is not None:
            self._live.discard(req_id)
        return req_id, reply

    def next_update(
        self, req_id: int, accept: Callable[[BarData], bool] = lambda bar: True
    ) -> BarData:
        """The next historicalDataUpdate bar of a keepUpToDate request that `accept`s."""
        deadline = time.monotonic() + WAIT
        while True:
            event = self.next_event(req_id, deadline - time.monotonic())
            assert event.name != "error", f"keepUpToDate request {req_id} failed: {event.args}"
            if event.name == "historicalDataUpdate" and accept(event.args[0]):
                return event.args[0]

    def cancel_historical_data(self, req_id: int) -> None:
        self._live.discard(req_id)
        self.cancelHistoricalData(req_id)

    # ------------------------------------------------------------- wrapper callbacks
    def error(
        self,
        reqId: int,
        errorTime: int,
        errorCode: int,
        errorString: str,
        advancedOrderRejectJson: str = "",
    ) -> None:
        err = ApiError(reqId, errorCode, errorString)
        self.errors.append(err)
        self._put(reqId, "error", err)

    def connectionClosed(self) -> None:
        self._put("connectionClosed", "connectionClosed")

    def nextValidId(self, orderId: int) -> None:
        self._put("nextValidId", "nextValidId", orderId)

    def managedAccounts(self, accountsList: str) -> None:
        self._put("managedAccounts", "managedAccounts", accountsList)

    def currentTime(self, time: int) -> None:
        self._put("currentTime", "currentTime", time)

    def contractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:
        self._put(reqId, "contractDetails", contractDetails)

    def bondContractDetails(self, reqId: int, contractDetails: ContractDetails) -> None:
        self._put(reqId, "bondContractDetails", contractDetails)

    def contractDetailsEnd(self, reqId: int) -> None:
        self._put(reqId, "contractDetailsEnd")

    def symbolSamples(self, reqId: int, contractDescriptions: list[ContractDescription]) -> None:
        self._put(reqId, "symbolSamples", contractDescriptions)

    def securityDefinitionOptionParameter(
        self,
        reqId: int,
        exchange: str,
        underlyingConId: int,
        tradingClass: str,
        multiplier: str,
        expirations: set[str],
        strikes: set[float],
    ) -> None:
        self._put(
            reqId, "securityDefinitionOptionParameter",
            exchange, underlyingConId, tradingClass, multiplier, expirations, strikes,
        )  # fmt: skip

    def securityDefinitionOptionParameterEnd(self, reqId: int) -> None:
        self._put(reqId, "securityDefinitionOptionParameterEnd")

    def marketRule(self, marketRuleId: int, priceIncrements: list[PriceIncrement]) -> None:
        self._put("marketRule", "marketRule", marketRuleId, priceIncrements)

    def headTimestamp(self, reqId: int, headTimestamp: str) -> None:
        self._put(reqId, "headTimestamp", headTimestamp)

    def historicalData(self, reqId: int, bar: BarData) -> None:
        self._put(reqId, "historicalData", bar)

    def historicalDataEnd(self, reqId: int, start: str, end: str) -> None:
        self._put(reqId, "historicalDataEnd", start, end)

    def historicalDataUpdate(self, reqId: int, bar: BarData) -> None:
        self._put(reqId, "historicalDataUpdate", bar)

    def historicalSchedule(
        self,
        reqId: int,
        startDateTime: str,
        endDateTime: str,
        timeZone: str,
        sessions: list[HistoricalSession],
    ) -> None:
        self._put(reqId, "historicalSchedule", startDateTime, endDateTime, timeZone, sessions)


# ------------------------------------------------------------- contracts
def contract(**fields: Any) -> Contract:
    """An ibapi Contract with the given attributes (ibapi's own defaults for the rest)."""
    c = Contract()
    for name, value in fields.items():
        assert hasattr(c, name), f"Contract has no field {name!r}"
        setattr(c, name, value)
    return c


def stock(symbol: str) -> Contract:
    return contract(symbol=symbol, secType="STK", exchange="SMART", currency="USD")


class TradesApp(IBApiApp):
    """The harness's client with the order and execution callbacks recorded too."""

    def execDetails(self, reqId, contract, execution):
        self._put(reqId, "execDetails", contract, execution)

    def execDetailsEnd(self, reqId):
        self._put(reqId, "execDetailsEnd")

    def commissionAndFeesReport(self, commissionAndFeesReport):
        self._put("commission", "commission", commissionAndFeesReport)

    def openOrder(self, orderId, contract, order, orderState):
        self._put("orders", "openOrder", contract, order, orderState)

    def orderStatus(self, orderId, status, filled, remaining, avgFillPrice, *rest):
        self._put("orders", "orderStatus", orderId, status, filled, remaining, avgFillPrice)

    def openOrderEnd(self):
        self._put("orders", "openOrderEnd")

    def completedOrder(self, contract, order, orderState):
        self._put("completed", "completedOrder", contract, order, orderState)

    def completedOrdersEnd(self):
        self._put("completed", "completedOrdersEnd")
