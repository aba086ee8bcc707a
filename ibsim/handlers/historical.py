"""Historical requests: bars (with keepUpToDate), head timestamps and trading schedules.

Checks run in IB's order (the 321 texts of IB's "Message Codes"); pacing and the open-request cap
are the gateway's, shared by every client of this login.
"""

from __future__ import annotations

import asyncio
import calendar
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ibfacts import pacing
from ibfacts.history import (
    NO_END_DATE_SEC_TYPES,
    NO_EXPIRED_HISTORY,
    VOLATILITY_WHAT,
    WHAT_TO_SHOW,
)
from ibfacts.venues import VENUES
from ibsim.handlers import barformat
from ibsim.handlers.client import Client
from ibsim.handlers.fields import MAX_FRAME, FieldReader
from ibsim.market import errors, rules
from ibsim.market.bars import (
    Bars,
    bars_between,
    session_close_on,
    window_start_by_sessions,
    window_start_by_trading_seconds,
)
from ibsim.market.calendars import sessions
from ibsim.market.catalog import Catalog, ContractQuery
from ibsim.market.instruments import Instrument
from ibsim.market.pacing import PacedRequest
from ibsim.market.volatility import VOL_DECIMALS, volatility_bars
from ibsim.state import GatewayState

log = logging.getLogger("ibsim")
HEAD_TIMESTAMP_SOURCES = frozenset(WHAT_TO_SHOW)


@dataclass(frozen=True)
class BarRequest:
    inst: Instrument
    query: ContractQuery
    end: rules.EndDateTime
    duration: rules.Duration
    bar: int | str
    what: str
    use_rth: bool
    format_date: int
    keep_up_to_date: bool

    def identity(self) -> tuple:
        return (self.inst.con_id, self.query.exchange, self.end, self.duration, self.bar,
                self.what, self.use_rth)  # fmt: skip


# ------------------------------------------------------------------- resolving and checking
def resolve(catalog: Catalog, query: ContractQuery) -> Instrument:
    """The one instrument a request's contract names (a continuous future's front month)."""
    found = catalog.find(query)
    if not found:
        raise errors.NO_SECURITY
    if len(found) > 1:
        raise errors.ambiguous(query.symbol or query.local_symbol)
    inst = found[0]
    if inst.sec_type == "CONTFUT":  # bars of the front month, under the continuous name
        inst = catalog.by_con_id(inst.extra["front"]) or inst
    return inst


def check_available(inst: Instrument, now: datetime, expired_future_years: int) -> None:
    expiry = inst.expiry()
    if expiry is None or expiry >= now.date():
        return
    if inst.sec_type in NO_EXPIRED_HISTORY:
        raise errors.expired_contract()
    if now.date() - expiry > timedelta(days=365 * expired_future_years):
        raise errors.expired_contract()


def data_limit(inst: Instrument, now: datetime) -> int:
    """No data after now, nor after an expired contract's last session."""
    limit = int(now.timestamp())
    expiry = inst.expiry()
    if expiry is not None:
        close = session_close_on(inst, np.datetime64(expiry, "D"))
        if close is not None:
            limit = min(limit, close)
    return limit


def window(req: BarRequest, now: datetime) -> tuple[int, int]:
    """[start, end) of the request in epoch seconds: durations count trading time."""
    end = data_limit(req.inst, now)
    if req.end.when is not None:
        end = min(end, int(req.end.when.timestamp()))
    n, unit = req.duration.count, req.duration.unit
    if unit == "S":
        start = window_start_by_trading_seconds(req.inst, req.use_rth, end, n)
    elif unit == "D":
        start = window_start_by_sessions(req.inst, req.use_rth, end, n)
    else:
        start = _calendar_back(datetime.fromtimestamp(end, UTC), n, unit)
    return max(start, int(req.inst.head.timestamp())), end


def _calendar_back(when: datetime, n: int, unit: str) -> int:
    """`when` minus n weeks, months or years (within IB's limits), in epoch seconds; windows
    that reach before 1970 start at 0, and the head timestamp bounds them anyway."""
    if when.year < 1971:
        return 0
    if unit == "W":
        return int((when - timedelta(weeks=n)).timestamp())
    months = n if unit == "M" else 12 * n
    year, month = divmod(when.year * 12 + when.month - 1 - months, 12)
    if year < 1970:
        return 0
    day = min(when.day, calendar.monthrange(year, month + 1)[1])
    return int(when.replace(year=year, month=month + 1, day=day).timestamp())


def compute(req: BarRequest, now: datetime) -> Bars:
    start, end = window(req, now)
    bars = volatility_bars if req.what in VOLATILITY_WHAT else bars_between
    return bars(req.inst, req.what, req.use_rth, req.bar, start, max(start, end))


def parse_bar_request(state: GatewayState, msg: FieldReader) -> BarRequest:
    """Read msg 20 and run IB's checks, raising the first error IB would send."""
    query = msg.contract()
    query = replace(query, include_expired=msg.bool())
    end_raw, bar_size, duration_raw = msg.str(), msg.str(), msg.str()
    use_rth, what, format_date = msg.bool(), msg.str().strip().upper(), msg.int()
    if query.sec_type == "BAG":
        raise errors.invalid_request("Historical data for combos is not supported.")
    keep_up_to_date = msg.bool()
    inst = resolve(state.catalog, query)
    end = rules.parse_end(end_raw)
    if query.sec_type in NO_END_DATE_SEC_TYPES and end.when is not None:
        raise errors.contfut_end_date()
    duration = rules.parse_duration(duration_raw)
    rules.check_duration_limits(duration, state.config.pacing.max_backfill_years)
    rules.check_adjusted_last(what, end, _bar_or_none(bar_size))
    bar = rules.bar_kind(bar_size)
    if what == "SCHEDULE":
        if bar != "day":
            raise errors.invalid_request("Only daily resolution supported for Schedule requests")
    else:
        rules.check_what_to_show(what, inst.sec_type)
    rules.check_format_date(format_date)
    if keep_up_to_date:
        rules.check_live_updates(what, end, bar)
    rules.check_step(bar, duration)
    return BarRequest(inst, query, end, duration, bar, what, use_rth, format_date,
                      keep_up_to_date)  # fmt: skip


def _bar_or_none(bar_size: str) -> int | str:
    try:
        return rules.bar_kind(bar_size)
    except errors.IBError:
        return 0


# ------------------------------------------------------------------- pacing and open slots
def admit(client: Client, req_id: int, paced: PacedRequest | None) -> None:
    """The open-request cap, then (small bars only) IB's pacing rules."""
    state = client.state
    if len(state.open_requests) >= state.config.pacing.max_open:
        raise errors.too_many_open(state.config.pacing.max_open)
    if paced is not None and not state.pacer.admit(paced):
        raise errors.pacing_violation()
    state.open_requests.add((id(client), req_id))


def release(client: Client, req_id: int) -> None:
    client.state.open_requests.discard((id(client), req_id))


def _paced(client: Client, key: tuple, identity: tuple, what: str) -> PacedRequest:
    return PacedRequest(client.now().timestamp(), key, identity, pacing.weight(what))


# ------------------------------------------------------------------- handlers
async def historical_data(client: Client, msg: FieldReader) -> None:
    req_id = msg.request_id()
    req = parse_bar_request(client.state, msg)
    now = client.now()
    if req.end.implied_zone:
        client.send_error(req_id, errors.IMPLIED_TIME_ZONE)
    check_available(req.inst, now, client.state.config.pacing.expired_future_years)
    small = rules.is_small_bar(req.bar)
    if small:
        start, _ = window(req, now)
        max_age = timedelta(days=client.state.config.pacing.small_bar_max_age_days)
        if datetime.fromtimestamp(start, UTC) < now - max_age:
            raise errors.hmds("Historical data requests for bars of 30 secs or less are limited "
                              "to the last 6 months.")  # fmt: skip
    key = (req.inst.con_id, req.query.exchange, req.what)
    admit(client, req_id, _paced(client, key, req.identity(), req.what) if small else None)
    client.historical[req_id] = client.spawn(_answer(client, req_id, req, now))


async def _answer(client: Client, req_id: int, req: BarRequest, now: datetime) -> None:
    loop = asyncio.get_running_loop()
    config = client.state.config
    try:
        if req.what == "SCHEDULE":
            client.send(*await loop.run_in_executor(None, schedule_fields, req_id, req, now))
            return
        bars = await loop.run_in_executor(None, compute, req, now)
        if len(bars.values) == 0:
            client.send_error(
                req_id, errors.no_data(req.inst.local_symbol, req.query.exchange, req.what)
            )
            return
        data = await loop.run_in_executor(None, encode, req_id, req, bars)
        if len(data) > MAX_FRAME:  # more than any client can read in one message
            client.send_error(req_id, errors.time_length_exceeded())
            return
        delay = rules.soft_throttle_delay(
            len(bars.values), req.bar, config.soft_throttle_bars_per_second
        )
        if delay:
            await asyncio.sleep(delay)
        client.send_payload(data)
        if req.keep_up_to_date:
            client.streaming.add(req_id)
            await _live_updates(client, req_id, req)
    except Exception:  # a gateway bug must still answer the request, never leave it hanging
        log.exception("historical request %s failed", req_id)
        client.send_error(req_id, errors.SERVER_ERROR)
    finally:
        release(client, req_id)
        client.historical.pop(req_id, None)
        client.streaming.discard(req_id)


def encode(req_id: int, req: BarRequest, bars: Bars) -> bytes:
    """msg 17 for `bars`, with the window they cover as historicalDataEnd's start and end."""
    inst = req.inst  # a volatility is written with its own digits
    if req.what in VOLATILITY_WHAT:
        inst = replace(inst, decimals=VOL_DECIMALS)
    table = barformat.bar_table(bars, inst, req.what, req.format_date)
    header = [17, req_id, _stamp(bars.start, req.inst), _stamp(bars.end, req.inst), table.height]
    return barformat.payload(header, table)


def _stamp(epoch: int, inst: Instrument) -> str:
    venue = VENUES[inst.venue]
    local = datetime.fromtimestamp(epoch, UTC).astimezone(ZoneInfo(venue.tz))
    return f"{local:%Y%m%d %H:%M:%S} {venue.ib_tz}"


async def _live_updates(client: Client, req_id: int, req: BarRequest) -> None:
    """keepUpToDate: resend the open bar every update interval until cancelled."""
    loop = asyncio.get_running_loop()
    lookback = req.bar if isinstance(req.bar, int) else 35 * 86_400
    while True:
        await asyncio.sleep(client.state.config.update_interval)
        now = client.now()
        end = data_limit(req.inst, now)
        bars = await loop.run_in_executor(
            None, bars_between, req.inst, req.what, req.use_rth, req.bar, end - lookback, end
        )
        if len(bars.values):
            table = barformat.bar_table(bars, req.inst, req.what, req.format_date)
            client.send(90, req_id, *barformat.update_fields(table))


def cancel_historical_data(client: Client, msg: FieldReader) -> None:
    msg.skip()
    req_id = msg.request_id()
    task = client.historical.pop(req_id, None)
    if task is None:
        raise errors.no_query(req_id)
    task.cancel()
    release(client, req_id)
    if req_id not in client.streaming:  # still working on its answer: IB confirms the cancel
        client.send_error(req_id, errors.query_cancelled(req_id))
    client.streaming.discard(req_id)


def head_timestamp(client: Client, msg: FieldReader) -> None:
    req_id = msg.request_id()
    query = replace(msg.contract(), include_expired=msg.bool())
    use_rth, what, format_date = msg.bool(), msg.str().strip().upper(), msg.int()
    inst = resolve(client.state.catalog, query)
    if what not in HEAD_TIMESTAMP_SOURCES:
        raise errors.invalid_request(f"What to show value of {what} rejected.")
    rules.check_what_to_show(what, inst.sec_type)
    check_available(inst, client.now(), client.state.config.pacing.expired_future_years)
    key = (inst.con_id, query.exchange, what)
    admit(client, req_id, _paced(client, key, ("head", *key, use_rth), what))
    head = int(inst.head.timestamp())
    if use_rth:
        table = sessions(inst.venue, True)
        head = int(table.opens[int(np.searchsorted(table.opens, head))])
    stamp = (
        str(head) if format_date == 2 else f"{datetime.fromtimestamp(head, UTC):%Y%m%d-%H:%M:%S}"
    )
    client.send(88, req_id, stamp)


def cancel_head_timestamp(client: Client, msg: FieldReader) -> None:
    release(client, msg.request_id())


def schedule_fields(req_id: int, req: BarRequest, now: datetime) -> list[object]:
    """msg 106: the sessions of the window, in the instrument's time zone."""
    start, end = window(req, now)
    table = sessions(req.inst.venue, req.use_rth).between(start, end)
    venue = VENUES[req.inst.venue]
    tz = ZoneInfo(venue.tz)

    def local(epoch: int) -> str:
        return f"{datetime.fromtimestamp(epoch, tz):%Y%m%d-%H:%M:%S}"

    fields: list[object] = [106, req_id, local(start), local(end), venue.ib_tz, len(table)]
    for day, o, c in zip(table.dates, table.opens, table.closes, strict=True):
        fields += [local(int(o)), local(int(c)), str(day).replace("-", "")]
    return fields
