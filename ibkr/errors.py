"""IB's error codes as one sentence each, and the exceptions the project raises for them.

Owns: the catalogue of IB message codes (IB's "Message Codes" page) with a class, a cause and a fix
written for a trader; the text-dependent variants of 162, 200, 322 and 420; the exception
hierarchy rooted at `IBWError`; and `one_sentence`, which renders any exception as the single
line the CLI and Dagster show instead of a traceback or a bare code. Imports ib_async,
`ibfacts` (the texts the gateway also sends) and the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ib_async import Contract, RequestError

from ibfacts.messages import INVALID_STEP, TIME_LENGTH_EXCEEDED
from ibkr.exceptions import (
    MAX_DETAIL,
    MAX_SENTENCE,
    AmbiguousContract,
    ContractNotFound,
    ExpiredContract,
    GatewayUnavailable,
    IBRequestError,
    IBWError,
    InvalidRequest,
    NoData,
    NoPermission,
    PacingViolation,
    RequestTimeout,
    clean_text,
    clip_text,
)
from ibkr.universe import UniverseError

__all__ = [
    "CATALOGUE",
    "AmbiguousContract",
    "ContractNotFound",
    "ErrorInfo",
    "ExpiredContract",
    "GatewayUnavailable",
    "IBRequestError",
    "IBWError",
    "InvalidRequest",
    "Kind",
    "NoData",
    "NoPermission",
    "PacingViolation",
    "RequestTimeout",
    "describe_contract",
    "from_ib",
    "from_request_error",
    "is_informational",
    "is_warning",
    "lookup",
    "one_sentence",
]


class Kind(StrEnum):
    """How much an IB message matters: a notice, a warning, a failure, or a change of link."""

    INFORMATION = "information"  # nothing wrong: log at debug
    WARNING = "warning"  # worth noting; the request or order carries on
    ERROR = "error"  # the request or order failed
    CONNECTIVITY = "connectivity"  # the link to IB changed; requests may stall or fail


@dataclass(frozen=True)
class ErrorInfo:
    """What an IB code means: its class, cause, fix and the exception raised for it."""

    code: int
    kind: Kind
    cause: str
    fix: str
    exception: type[IBWError] = IBRequestError
    quote: bool = False  # IB's text carries the specifics (e.g. 321's reason): quote it


_I, _W, _E, _C = Kind.INFORMATION, Kind.WARNING, Kind.ERROR, Kind.CONNECTIVITY
_NOTHING = "nothing to do"
_COMPETING = (
    "another TWS or Gateway session for this login is connected from a different IP address",
    "log out of the other session, or use a second login for this feed",
)
_NOT_LIVE = "the account has no live market data subscription for this contract"

# (code, kind, exception, cause, fix)
_ROWS: list[tuple[int, Kind, type[IBWError], str, str]] = [
    (100, _E, PacingViolation, "more than 50 API messages per second were sent to IB",
     "slow down; a third violation gets the client disconnected, so report it"),
    (101, _E, IBRequestError, "all market data lines are in use",
     "cancel unused market data subscriptions or buy more lines with Quote Booster"),
    (102, _E, IBRequestError, "a request reused a ticker id that is still active",
     "use a fresh request id; this is a client bug, so report it"),
    (103, _E, IBRequestError, "the order id was already used by this client",
     "get the next valid id (reqIds) and place the order again with it"),
    (104, _E, IBRequestError, "the order has already filled, so it cannot be modified",
     "reconcile the order and its executions before acting again"),
    (105, _W, IBRequestError, "the modification does not match the original order",
     "modify with the original order's contract and type"),
    (110, _E, InvalidRequest,
     "the price does not conform to the contract's minimum price increment",
     "round the price to the contract's tick size, from its market rule, and send it again"),
    (135, _E, IBRequestError, "IB has no order with this id",
     "the order is already gone; reconcile open orders and executions"),
    (136, _E, IBRequestError, "the order cannot be cancelled now",
     "reconcile the order's state; it may have filled or been cancelled already"),
    (161, _E, IBRequestError, "the order is not in a cancellable state",
     "it is filled, cancelled or in flight; reconcile before retrying"),
    (162, _E, IBRequestError, "IB's historical data service refused the request",
     "read IB's reason; retry later if it is a server fault, otherwise fix the request"),
    (165, _W, NoData, "IB's historical data service retrieved no items",
     "nothing to fix; treat the window as empty"),
    (166, _E, ExpiredContract, "the contract has expired and IB no longer serves its history",
     "drop the request; IB keeps no history of expired options and about 2 years of expired "
     "futures"),
    (200, _E, ContractNotFound, "no security definition was found",
     "check the symbol, security type, exchange and currency"),
    (201, _E, IBRequestError, "IB rejected the order",
     "fix the order as IB's reason says and place it again"),
    (202, _E, IBRequestError, "the order was cancelled",
     "nothing to do if you cancelled it; otherwise read IB's reason and place it again"),
    (300, _W, IBRequestError, "a cancel named a ticker id with no running subscription",
     "nothing to do; the subscription had already ended"),
    (309, _E, IBRequestError, "all market depth (Level II) subscriptions are in use",
     "cancel another depth subscription first; IB allows 3, paper accounts often 1"),
    (317, _W, IBRequestError, "IB reset the market depth book",
     "clear the local order book and rebuild it from the updates that follow"),
    (320, _E, InvalidRequest, "the gateway could not read the request",
     "this is a client bug or a version mismatch, so report it"),
    (321, _E, InvalidRequest, "IB rejected the request as invalid",
     "fix the request as IB's reason says; retrying it unchanged will fail again"),
    (322, _E, IBRequestError, "IB could not process the request",
     "read IB's reason; cancel open requests or retry later"),
    (326, _C, GatewayUnavailable, "another API client is already connected with this client id",
     "set a different IB_CLIENT_ID or disconnect the other client"),
    (329, _W, IBRequestError, "an order modification cannot change the order type",
     "cancel the order and place a new one"),
    (354, _E, NoPermission, _NOT_LIVE,
     "switch to delayed data with reqMarketDataType(3) or subscribe in Client Portal"),
    (366, _W, IBRequestError,
     "no running historical query has this id (it had finished, failed or been reset)",
     "nothing to do unless bars are missing; then request them again"),
    (399, _W, IBRequestError, "IB attached a message to the order, which stays live",
     "read the message; nothing to do unless it asks for something"),
    (404, _W, IBRequestError,
     "the shares are not available to borrow yet, so IB holds the short sale",
     "wait while IB locates the shares, or cancel the order"),
    (420, _E, IBRequestError, "IB refused the real-time data request",
     "read IB's reason and fix the request"),
    (434, _W, InvalidRequest, "the order size is zero",
     "set a positive quantity"),
    (435, _E, InvalidRequest, "the order names no account, which an advisor login requires",
     "set the order's account"),
    (436, _E, InvalidRequest,
     "the order names no account or allocation, which an advisor login requires",
     "set the order's account or faGroup"),
    (439, _E, InvalidRequest, "the algorithm's name or parameters are wrong",
     "check algoStrategy and algoParams against IB's algo documentation"),
    (502, _C, GatewayUnavailable, "the API connection to TWS or IB Gateway could not be made",
     "make sure the gateway runs with ActiveX and Socket Clients enabled, and check IB_HOST and "
     "IB_PORT"),
    (503, _C, GatewayUnavailable, "TWS or IB Gateway is too old for this API client",
     "upgrade TWS or IB Gateway"),
    (504, _C, GatewayUnavailable, "the request was sent while not connected to the gateway",
     "reconnect first (check the gateway is running), then retry"),
    (505, _E, IBRequestError, "the client received a message it could not decode",
     "check that the gateway and client versions match, and report it"),
    (507, _C, GatewayUnavailable,
     "the socket to the gateway broke (end of stream or a bad message length)",
     "reconnect; if it repeats, check the gateway log"),
    (585, _E, InvalidRequest, "financial advisor profiles are no longer supported",
     "use FA groups (replaceFA type 1) instead"),
    (1100, _C, GatewayUnavailable, "the gateway lost its connection to IB's servers",
     "wait for 1101 or 1102; requests sent meanwhile may fail"),
    (1101, _C, IBRequestError,
     "the gateway reconnected to IB but market data subscriptions were lost",
     "resubscribe all market data and reconcile orders"),
    (1102, _C, IBRequestError, "the gateway reconnected to IB and kept its data",
     "nothing to resubscribe; still reconcile orders and executions"),
    (1300, _C, GatewayUnavailable, "the gateway's API port changed",
     "reconnect on the new port by setting IB_PORT"),
    (2100, _W, IBRequestError, "a newer account updates request replaced this one",
     "keep one reqAccountUpdates subscription per client"),
    (2101, _W, IBRequestError, "another client already holds the account updates subscription",
     "read account data through that client, or disconnect it"),
    (2102, _W, IBRequestError, "the order is still being processed, so it cannot be modified yet",
     "retry the modification once IB acknowledges the order"),
    (2103, _C, IBRequestError, "the gateway lost a market data farm",
     "wait, it reconnects by itself; live data may have a gap"),
    (2104, _I, IBRequestError, "a market data farm connection is OK",
     _NOTHING),
    (2105, _C, IBRequestError, "the gateway lost a historical data farm",
     "wait, it reconnects by itself; historical requests may stall meanwhile"),
    (2106, _I, IBRequestError, "a historical data farm connection is OK",
     _NOTHING),
    (2107, _I, IBRequestError, "the historical data farm is idle and wakes up on the next request",
     _NOTHING),
    (2108, _I, IBRequestError, "the market data farm is idle and wakes up on demand",
     _NOTHING),
    (2109, _W, IBRequestError,
     "the order's outsideRth flag was ignored for this order type or exchange",
     "nothing to do unless the order must work outside regular hours"),
    (2110, _C, GatewayUnavailable, "the connection between the gateway and IB's servers is broken",
     "wait until it is restored automatically; requests may fail meanwhile"),
    (2119, _I, IBRequestError, "a market data farm is connecting",
     _NOTHING),
    (2137, _W, IBRequestError, "the order would flip the position from long to short",
     "nothing to do if intended; TWS can hide this in Global Configuration, Messages"),
    (2150, _W, IBRequestError, "IB cannot compute the position's P&L yet (no price)",
     "nothing to do; the P&L fields stay empty until a price arrives"),
    (2157, _C, IBRequestError, "the gateway lost the security definition farm",
     "wait, it reconnects by itself; contract lookups may stall meanwhile"),
    (2158, _I, IBRequestError, "the security definition farm connection is OK",
     _NOTHING),
    (2174, _W, InvalidRequest,
     "a date-time was sent without a time zone, so IB read it in the login's zone",
     "send dates in UTC as yyyymmdd-hh:mm:ss; the project always should, so report it"),
    (10089, _E, NoPermission, "this market data needs an additional API subscription",
     "switch to delayed data with reqMarketDataType(3) or subscribe to the exchange's API "
     "market data"),
    (10090, _W, NoPermission, "part of the requested market data is not subscribed",
     "some ticks will be missing; subscribe to them or drop them from the request"),
    (10091, _W, NoPermission,
     "part of the requested market data needs an additional API subscription",
     "some ticks will be missing; subscribe to the exchange's API market data"),
    (10147, _E, IBRequestError, "the order to cancel was not found",
     "it is already gone; reconcile open orders"),
    (10148, _E, IBRequestError, "the order cannot be cancelled in its current state",
     "it has probably filled; reconcile executions"),
    (10167, _W, NoPermission, f"{_NOT_LIVE}, so IB shows delayed data",
     "nothing to do if delayed data will do; otherwise subscribe in Client Portal"),
    (10168, _E, NoPermission, f"{_NOT_LIVE} and delayed data is not enabled",
     "switch to delayed data with reqMarketDataType(3) or subscribe in Client Portal"),
    (10186, _E, NoPermission, f"{_NOT_LIVE} and delayed data is not enabled",
     "switch to delayed data with reqMarketDataType(3) or subscribe in Client Portal"),
    (10187, _E, NoPermission, "the account has no permission for this contract's tick data",
     "subscribe to the exchange's market data in Client Portal"),
    (10189, _E, IBRequestError, "IB refused tick-by-tick data",
     "read IB's reason; log out of a competing session if it names one"),
    (10197, _E, IBRequestError,
     "a live session on the same login holds the market data, so this session gets none",
     "log out of the live session or enable market data sharing for the paper account"),
    (10225, _W, IBRequestError, "a trade bust deactivated the real-time subscription",
     "resubscribe; ib_async does so by itself for bars"),
    (10230, _E, IBRequestError,
     "financial advisor data was requested before the last change was saved",
     "wait for replaceFA to finish, then request it again"),
    (10314, _E, InvalidRequest, "the end date/time is not in a form IB accepts",
     "send it in UTC as yyyymmdd-hh:mm:ss, or empty for now"),
    (10339, _E, InvalidRequest, "continuous futures (CONTFUT) take no end date",
     "leave the end date empty for CONTFUT, or request the individual expiries"),
]  # fmt: skip
# Codes whose text carries the specifics (321's reason, 201's reason): the sentence quotes it.
_QUOTED = frozenset({162, 201, 202, 320, 321, 322, 399, 420, 505, 10148, 10187, 10189})

CATALOGUE: Mapping[int, ErrorInfo] = MappingProxyType(
    {c: ErrorInfo(c, k, cause, fix, x, c in _QUOTED) for c, k, x, cause, fix in _ROWS}
)
"""Each catalogued code's default meaning; `lookup` refines 162, 200, 322 and 420 by their text."""


def _variant(
    code: int, needle: str, cause: str, fix: str, exc: type[IBWError]
) -> tuple[str, ErrorInfo]:
    return needle, ErrorInfo(code, CATALOGUE[code].kind, cause, fix, exc)


# Checked in order against the lower-cased text; the first needle found wins.
_VARIANTS: Mapping[int, tuple[tuple[str, ErrorInfo], ...]] = {
    162: (
        _variant(162, "pacing violation", "IB's pacing limit for small bars was hit",
                 "wait for the 10-minute window to clear; the pacer should have prevented this, "
                 "so report it", PacingViolation),
        _variant(162, "returned no data", "IB has no bars for this window",
                 "nothing to fix if the market was closed then (holiday, halt, before listing); "
                 "otherwise check the session hours and whatToShow", NoData),
        _variant(162, "no market data permissions",
                 "the account has no market data permission for this contract's exchange",
                 "subscribe to it in Client Portal, or request the contract through another "
                 "exchange", NoPermission),
        _variant(162, "no historical market data",
                 "IB keeps no historical data for this contract on this exchange",
                 "request it through SMART or the primary exchange, or drop it from the universe",
                 NoData),
        _variant(162, "query cancelled",
                 "the historical query was cancelled before it answered, usually after a timeout",
                 "ask for a shorter duration or let the pacer slow down, then retry",
                 RequestTimeout),
        _variant(162, TIME_LENGTH_EXCEEDED.casefold(),
                 "the duration is longer than IB allows for this bar size",
                 "shorten the duration; the planner should have split it, so report it",
                 InvalidRequest),
        _variant(162, INVALID_STEP, "the bar size does not fit the duration (invalid step)",
                 "use a bar size IB allows for this duration; the planner should have prevented "
                 "this, so report it", InvalidRequest),
        _variant(162, "different ip address", *_COMPETING, IBRequestError),
        _variant(162, "expired contract", CATALOGUE[166].cause, CATALOGUE[166].fix,
                 ExpiredContract),
        _variant(162, "scanner subscription cancelled", "the market scanner subscription was "
                 "cancelled", "subscribe to the scanner again if you still need it",
                 IBRequestError),
    ),
    200: (
        _variant(200, "ambiguous", AmbiguousContract.default_cause,
                 AmbiguousContract.default_fix, AmbiguousContract),
    ),
    322: (
        _variant(322, "simultaneous", "more than 50 historical data requests were open at once",
                 "wait for open requests to finish and cap concurrency; the pacer should have "
                 "prevented this, so report it", PacingViolation),
        _variant(322, "duplicate ticker", "a historical request reused a ticker id that is still "
                 "running", "use a fresh request id; this is a client bug, so report it",
                 IBRequestError),
        _variant(322, "account summary", "too many account summary subscriptions are open (IB "
                 "allows 2)", "cancel an earlier account summary subscription first",
                 IBRequestError),
    ),
    420: (
        _variant(420, "pacing violation", "IB's pacing limit for real-time data was hit",
                 "wait and subscribe less often; the pacer should have prevented this, so report "
                 "it", PacingViolation),
        _variant(420, "no market data permissions", "the account has no real-time market data "
                 "permission for this contract", "subscribe to the exchange's market data in "
                 "Client Portal", NoPermission),
        _variant(420, "different ip address", *_COMPETING, IBRequestError),
    ),
}  # fmt: skip

# ib_async's Wrapper.error treats these (and 2100-2199) as warnings that never end a request.
_IB_ASYNC_WARNINGS = frozenset({105, 110, 165, 321, 329, 399, 404, 434, 492, 10167})


def _unknown(code: int) -> ErrorInfo:
    """A code the catalogue lacks: still one sentence, with IB's own text quoted."""
    warning = code in _IB_ASYNC_WARNINGS or 2100 <= code < 2200
    return ErrorInfo(
        code,
        _W if warning else _E,
        f"IB sent message {code}, which this catalogue does not describe",
        "look the code up in IB's TWS API message codes and report it if it persists",
        IBRequestError,
        quote=True,
    )


def lookup(code: int, text: str = "") -> ErrorInfo:
    """The meaning of an IB code, refined by its text where the text changes the meaning."""
    lowered = text.casefold()
    for needle, info in _VARIANTS.get(code, ()):
        if needle in lowered:
            return info
    return CATALOGUE.get(code) or _unknown(code)


def is_warning(code: int) -> bool:
    """True for codes after which the request or order carries on (IB's "W" class)."""
    return lookup(code).kind is Kind.WARNING


def is_informational(code: int) -> bool:
    """True for pure status messages (farm OK, farm idle) that only deserve a debug log."""
    return lookup(code).kind is Kind.INFORMATION


_DETAIL = re.compile(
    r"(?:cause - |reason\s*[:-]\s*|error message:|query message:|real-time query:)(?P<d>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_AMBIGUOUS = re.compile(r"specified for (?P<s>.+?) is ambiguous", re.IGNORECASE)


def _detail(text: str) -> str:
    """The specific part of IB's text (after "cause - ", "reason:", ...), or all of it."""
    match = _DETAIL.search(text)
    return clean_text(match.group("d") if match else text)


def from_ib(code: int, text: str, subject: str = "", *, candidates: Sequence[str] = ()) -> IBWError:
    """The exception for an IB (code, text) pair; `subject` names the contract or request."""
    info = lookup(code, text)
    if not subject and info.exception is AmbiguousContract:
        named = _AMBIGUOUS.search(text)
        subject = named.group("s") if named else ""
    kwargs = {
        "code": code,
        "ib_text": text,
        "subject": subject,
        "detail": _detail(text) if info.quote else "",
    }
    if info.exception is AmbiguousContract:
        return AmbiguousContract(info.cause, info.fix, candidates=candidates, **kwargs)
    return info.exception(info.cause, info.fix, **kwargs)


def from_request_error(exc: RequestError, subject: str = "") -> IBWError:
    """ib_async's RequestError (raised when IB.RaiseRequestErrors is set) as one of ours."""
    if not subject and exc.reqId is not None and exc.reqId >= 0:
        subject = f"request {exc.reqId}"
    return from_ib(exc.code, exc.message, subject)


def describe_contract(contract: Contract) -> str:
    """A short subject for sentences, e.g. "AAPL STK SMART USD" or "ES FUT 20240920 CME"."""
    parts = [
        contract.localSymbol
        or contract.symbol
        or (f"conId {contract.conId}" if contract.conId else ""),
        contract.secType,
        contract.lastTradeDateOrContractMonth,
        f"{contract.strike:g}{contract.right}" if contract.strike else contract.right,
        contract.exchange or contract.primaryExchange,
        contract.currency,
    ]
    return clean_text(" ".join(p for p in parts if p)) or "contract"


def one_sentence(exc: BaseException) -> str:
    """Any exception as the single line a user sees: ours verbatim, the usual suspects explained."""
    if isinstance(exc, IBWError | UniverseError):  # already one sentence, written for users
        return str(exc)
    if isinstance(said := getattr(exc, "sentence", None), str):  # storage's own, the same way
        return said
    if isinstance(exc, RequestError):
        return str(from_request_error(exc))
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        first, more = one_sentence(exc.exceptions[0]), len(exc.exceptions) - 1
        return (
            f"{first[:-1] if first.endswith('.') else first} (and {more} more)." if more else first
        )
    try:
        message = clean_text(exc)
    except Exception:  # a broken __str__ must not hide the error it describes
        message = ""
    reason = clean_text(exc.strerror or message) if isinstance(exc, OSError) else message
    said = f" ({clip_text(reason, MAX_DETAIL)})" if reason else ""
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"The gateway refused the connection{said}: start a gateway (`ibw gateway`) or point "
            "IB_HOST/IB_PORT at IB Gateway or TWS."
        )
    if isinstance(exc, TimeoutError):
        return (
            f"No answer came in time{said}: check that the gateway is running and connected to "
            "IB, then retry."
        )
    if isinstance(exc, ConnectionError):
        return (
            f"The connection to the gateway was lost{said}: reconnect and retry; the gateway may "
            "be restarting."
        )
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {clean_text(exc.filename)}" if exc.filename is not None else ""
        message = f"{clean_text(exc.strerror)}{where}"
    name = type(exc).__name__
    return clip_text(f"{name}: {message}", MAX_SENTENCE) if message else name
