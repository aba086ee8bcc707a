"""Refilling the 5-second bars a stream missed, from IB's history.

Real-time bars that close while IB's link is down, while the connection is stalled or dropped,
or while the service is dead are never sent again; the same bars come from reqHistoricalData
"5 secs". Owns: which bar starts a stream should hold (`missing_runs`: the 5-s grid inside the
contract's full-hours sessions, less what is stored), each run as requests through the backfill's
planner, and the request itself, paced on the login's shared log with every other process
(`fetch`). The pacer's own `slot` sleeps, which would stop the service's event loop; `paced` is
its asyncio twin; `refill_stream` puts these together for one stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ib_async import IB, BarData, Contract, RequestError

from ibfacts.venues import Venue
from ibkr import errors
from ibkr.client import IBClient
from ibkr.durations import DurationTable
from ibkr.pacer import PacingBudget, RequestKey
from ibkr.pacing_log import SharedPacer
from ibkr.planner import PlannedRequest, Series, Session, plan
from ibkr.sessions import expected_sessions
from live.stream_state import StreamState, bar_row

log = logging.getLogger("ibw.live")

BAR = 5
BAR_SIZE = "5 secs"
REQUEST_TIMEOUT = 30.0
ANSWERS_BEFORE_GIVING_UP = 2  # IB answered this often without a bar: it has none


def sessions_around(hours: Venue, start: float, end: float) -> list[Session]:
    """The full-hours sessions that overlap [start, end] (epoch seconds)."""
    first = datetime.fromtimestamp(start, UTC).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end, UTC).date() + timedelta(days=1)
    return [
        s
        for s in expected_sessions(hours, False, first, last)
        if s.close.timestamp() > start and s.open.timestamp() <= end
    ]


def session_at(hours: Venue, at: float) -> Session | None:
    """The full-hours session in progress at `at`, if any."""
    for s in sessions_around(hours, at, at):
        if s.open.timestamp() <= at < s.close.timestamp():
            return s
    return None


def missing_runs(
    sessions: Iterable[Session], start: int, end: int, have: set[int]
) -> list[tuple[int, int]]:
    """Runs (first, last) of adjacent 5-s bar starts in [start, end], inside a session, not in
    `have`; oldest first. A run never crosses a session's edge."""
    runs: list[tuple[int, int]] = []
    for s in sessions:
        lo = max(start, int(s.open.timestamp()))
        lo += -lo % BAR
        hi = min(end, int(s.close.timestamp()) - BAR)
        run_start = None
        for t in range(lo, hi + 2 * BAR, BAR):  # one step past `hi` ends the last run
            if t <= hi and t not in have:
                run_start = t if run_start is None else run_start
            elif run_start is not None:
                runs.append((run_start, t - BAR))
                run_start = None
    return runs


def requests_for(
    series: Series, first: int, last: int, now: datetime, table: DurationTable
) -> tuple[PlannedRequest, ...]:
    """The backfill planner's requests for one run of missing bars, as a one-session gap."""
    opened = datetime.fromtimestamp(first, UTC)
    closed = datetime.fromtimestamp(last + BAR, UTC)
    session = Session(opened.date(), opened, closed)
    return plan(series, [session.day], [session], table=table, now=max(now, closed)).requests


def covered(request: PlannedRequest, first: int, last: int) -> set[int]:
    """The bar starts of the run (first..last) that one planned request reaches."""
    end = int(
        datetime.strptime(request.end_date_time, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp()
    )
    count, unit = request.duration.split()
    if unit != "S":
        return set(range(first, last + BAR, BAR))
    return set(range(max(first, end - int(count)), min(last + BAR, end), BAR))


@asynccontextmanager
async def paced(pacer: SharedPacer, key: RequestKey, priority: bool = False) -> AsyncIterator[None]:
    """Hold a slot of the login's pacing log around one request, without blocking the loop.

    A refill has no `priority`: like the backfill it leaves the budget's reserve to the
    real-time bar subscriptions, and they go before it."""
    reserving = asyncio.ensure_future(asyncio.to_thread(pacer.reserve, key, priority))
    try:
        reservation = await asyncio.shield(reserving)
    except asyncio.CancelledError:  # the session ended: its place, once taken, goes back
        reserving.add_done_callback(lambda done: _give_back(pacer, done))
        raise
    try:
        while not reservation.confirmed:
            delay = reservation.send_at - pacer.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            reservation = pacer.confirm(reservation)
        yield
    finally:
        pacer.release(reservation)


def _give_back(pacer: SharedPacer, reserving: asyncio.Future) -> None:
    if not reserving.cancelled() and reserving.exception() is None:
        pacer.release(reserving.result())


def login_of(ib: IB) -> str:
    """The connected login's key: its accounts (IB names no login to the API)."""
    return ",".join(sorted(ib.managedAccounts())) or "default"


def pacer_for(ib: IB, home: Path) -> SharedPacer:
    """The pacing log of this login, shared with the backfill (named as engines.backfill does)."""
    return SharedPacer.for_login(
        home, ib.client.host, ib.client.port, login_of(ib), budget=PacingBudget.from_env()
    )


async def fetch(
    ib: IB, pacer: SharedPacer, contract: Contract, what: str, request: PlannedRequest
) -> list[BarData]:
    """One paced "5 secs" request: its bars, or an IBWError (NoData when IB has none).

    ib_async reports a failed request as an empty list unless RaiseRequestErrors is set, which
    this long-lived connection may not set (it is shared); the errors IB sends for our own
    contract object tell the two apart either way."""
    contract = dataclasses.replace(contract)  # an object of our own: its errors are ours
    subject = f"refill of {contract.localSymbol or contract.conId} ending {request.end_date_time}"
    seen: list[RequestError] = []

    def on_error(req_id: int, code: int, text: str, about: object) -> None:
        if about is contract and not 2100 <= code < 2200:
            seen.append(RequestError(req_id, code, text))

    key = RequestKey(
        contract.conId,
        contract.exchange,
        what,
        BAR_SIZE,
        request.end_date_time,
        request.duration,
        False,
    )
    client = IBClient(ib, REQUEST_TIMEOUT)
    ib.errorEvent += on_error
    try:
        async with paced(pacer, key):
            bars = await client.historical_bars(
                contract, request.end_date_time, request.duration, BAR_SIZE, what, False, subject
            )
    finally:
        ib.errorEvent -= on_error
    if seen:
        raise errors.from_request_error(seen[0], subject)
    return bars


async def refill_stream(
    ib: IB,
    pacer: SharedPacer,
    st: StreamState,
    have: set[int],
    start: int,
    end: int,
    now: float,
    table: DurationTable,
) -> list[dict]:
    """Rows (source refill) for the bar starts in [start, end], inside the stream's sessions,
    that `have` lacks. A start IB answered for twice without a bar joins `st.holes` and is not
    asked for again; a failed request is left for the next refill."""
    stream = st.stream
    series = Series(
        st.con_id, stream.sec_type, stream.exchange, BAR_SIZE, stream.what_to_show, False
    )
    rows: dict[int, dict] = {}
    at = datetime.fromtimestamp(now, UTC)
    for first, last in missing_runs(sessions_around(stream.hours, start, end), start, end, have):
        for request in requests_for(series, first, last, at, table):
            wanted = covered(request, first, last)
            try:
                bars = await fetch(ib, pacer, stream.contract(), stream.what_to_show, request)
            except errors.NoData:
                bars = []
            except errors.GatewayUnavailable:
                raise
            except errors.IBWError as exc:
                log.warning("%s", exc)
                continue
            for bar in bars:
                t = int(bar.date.timestamp()) if isinstance(bar.date, datetime) else 0
                if t in wanted:
                    rows[t] = bar_row(st.con_id, t, bar, "refill")
            for t in wanted - rows.keys():  # IB answered without them
                st.answers[t] = st.answers.get(t, 0) + 1
                if st.answers[t] >= ANSWERS_BEFORE_GIVING_UP:
                    st.holes.add(t)
    return list(rows.values())
