"""The live streams: ticks and 5-second bars from IB into the lake, kept alive and complete.

Owns `StreamManager`, which the service (live.service) drives: `subscribe_all` after every
(re)connect (ib_async forgets subscriptions with the socket), `on_error` for IB's codes, `flush`
every `flush_every` seconds, `watch` every second or so, `refill` after a connect, and `health`.

Why it is built this way (users' most common complaint: subscriptions that die silently after the
nightly reset or a farm blip are users' worst experience):
- 1100 (IB unreachable): wait, no resubscribe storm. 1101 (data lost): cancel and request every
  stream again. 1102 (data kept): a feed that shows no data within a short grace is
  resubscribed. Other errors of one stream resubscribe it with a backoff; 101 (no market data
  line left) and permissions are reported in `health`, not retried in a loop.
- A stream whose bars (or, without bars, ticks) stay silent for `stale_after` seconds while its
  market is in session is resubscribed (`stale_resubscribes`). Time is the gateway's, never this
  machine's (live.stream_state.GatewayClock).
- Real-time bar requests count against IB's small-bar pacing (IB's historical data limitations), so
  they wait for a slot in the login's shared pacing log, as the refills and the backfill do;
  but with priority: they may use the budget's reserve, which a backfill or a refill never
  fills, and go before those requests' reservations (ibkr.pacer).
- The lake is the truth: a bar time already stored is never written again, and on start (after
  a kill -9 too) the stored times are read back. Every 5-s bar start inside the session from the
  stream's first subscription (less STARTUP_LOOKBACK, kept in `$IBW_HOME/live/streams_since.json`)
  to the newest bar that is not stored is refilled from history (live.refill).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
from ib_async import IB, RealTimeBar, RealTimeBarList, Ticker

from ibkr import errors
from ibkr.durations import DurationTable
from ibkr.pacer import RequestKey
from ibkr.pacing_log import SharedPacer
from live import refill as gaps
from live.config import LiveConfig, ResolvedStream, resolve_streams
from live.lake_writer import LakeWriter
from live.safety import quote_price
from live.stream_state import (
    NO_RETRY,
    GatewayClock,
    StreamState,
    bar_row,
    read_since,
    utc_days,
    write_since,
)
from warehouse import live_streams as lake

__all__ = ["ResolvedStream", "StreamManager", "resolve_streams"]

log = logging.getLogger("ibw.live")

BAR = gaps.BAR
LINK_LOST, RESTORED_DATA_LOST, RESTORED_DATA_KEPT = 1100, 1101, 1102
IGNORED = frozenset({165, 300, 10167})  # notes, a cancel of a request the gateway dropped
VERIFY_GRACE = 15.0  # gateway seconds after 1102 for a feed to show data
STARTUP_LOOKBACK = 300  # gateway seconds before a stream's first subscription it owes too
REFILL_HORIZON = 86_400  # gateway seconds back a refill reaches at most
REFILL_EVERY = 60.0  # real seconds between refills when nothing else calls for one
BACKOFF_MAX = 60.0


class StreamManager:
    def __init__(
        self, ib: IB, streams: list[ResolvedStream], home: Path, config: LiveConfig
    ) -> None:
        self.ib = ib
        self.home = Path(home)
        self.config = config
        self.states = {s.con_id: StreamState(s) for s in streams}
        self.clock = GatewayClock()
        self.link_up = True
        self._link_back_at = 0.0
        self._verify_at: float | None = None
        self._stored: dict[date, dict[int, set[int]]] = {}
        self._since_path = self.home / "live" / "streams_since.json"
        self._since = read_since(self._since_path)
        self._bar_requests: dict[int, asyncio.Task] = {}
        self._last_refill = 0.0
        self._refill_task: asyncio.Task | None = None
        self._refill_again = False
        self._refill_lock = asyncio.Lock()
        self._pacer: SharedPacer | None = None
        self._table = DurationTable.default()
        self.lake = LakeWriter(self.home)
        ib.pendingTickersEvent += self._on_tickers
        ib.barUpdateEvent += self._on_bar

    # ------------------------------------------------------------------ subscriptions
    async def subscribe_all(self) -> None:
        """Request every stream on a fresh connection (ib_async dropped the old ones)."""
        now = self._now()
        self.link_up = True
        self._verify_at = None
        for st in self.states.values():
            st.req_ids.clear()
            st.subscribed_at.clear()
            st.ticker = st.bar_list = None
            st.last_bar = None  # until the stream speaks, a refill reaches up to now
            self._load_stored(st, now - REFILL_HORIZON, now)
            if st.stream.bars and st.con_id not in self._since:
                self._since[st.con_id] = (int(now) - STARTUP_LOOKBACK) // BAR * BAR
                write_since(self._since_path, self._since)
            self._subscribe(st, st.kinds())
        await asyncio.gather(*self._bar_requests.values(), return_exceptions=True)

    def _subscribe(self, st: StreamState, kinds: list[str]) -> None:
        if "ticks" in kinds:
            st.ticker = self.ib.reqMktData(st.stream.contract(), "", False, False)
            req_id = self.ib.wrapper.ticker2ReqId["mktData"].get(st.ticker)
            if req_id:
                st.req_ids[req_id] = "ticks"
            st.subscribed_at["ticks"] = self.clock.now() or 0.0
        if "bars" in kinds:
            pending = self._bar_requests.get(st.con_id)
            if pending is None or pending.done():  # else the one waiting will do
                self._bar_requests[st.con_id] = asyncio.ensure_future(self._request_bars(st))
        if st.state in ("starting", "waiting"):
            st.state = "ok"

    async def _request_bars(self, st: StreamState) -> None:
        """reqRealTimeBars once the login's pacing allows it (60 new ones per 10 minutes), ahead
        of any backfill or refill."""
        what = st.stream.what_to_show
        key = RequestKey(st.con_id, st.stream.exchange, what, gaps.BAR_SIZE, "realtime", "", False)
        async with gaps.paced(self._paced(), key, priority=True):
            if not self.ib.isConnected() or "bars" in st.subscribed_at:
                return  # the next connection's subscribe_all asks again
            with contextlib.suppress(ConnectionError):
                st.bar_list = self.ib.reqRealTimeBars(st.stream.contract(), BAR, what, False)
                st.req_ids[st.bar_list.reqId] = "bars"
                st.subscribed_at["bars"] = self.clock.now() or 0.0

    def _cancel(self, st: StreamState, kinds: list[str]) -> None:
        for req_id, kind in list(st.req_ids.items()):
            if kind in kinds:
                del st.req_ids[req_id]
        with contextlib.suppress(ConnectionError):
            if "ticks" in kinds and st.ticker is not None:
                self.ib.cancelMktData(st.ticker.contract)
            if "bars" in kinds and st.bar_list is not None:
                self.ib.cancelRealTimeBars(st.bar_list)
        for kind in kinds:
            st.subscribed_at.pop(kind, None)
        if "ticks" in kinds:
            st.ticker = None
        if "bars" in kinds:
            st.bar_list = None

    def _resubscribe(
        self, st: StreamState, kinds: list[str], why: str, stale: bool = False
    ) -> None:
        if not self.ib.isConnected():
            return
        self._cancel(st, kinds)
        self._subscribe(st, kinds)
        st.retry_at = None
        if stale:
            st.stale_resubscribes += 1
            st.state = "stale"
        else:
            st.resubscribes += 1
        log.info("%s: resubscribed %s (%s)", st.stream.symbol, " and ".join(kinds), why)

    # ------------------------------------------------------------------ IB's news
    def on_error(self, req_id: int, code: int, text: str) -> None:
        """IB's error and status codes, as the service routes them (errorEvent)."""
        if code == LINK_LOST:
            self.link_up = False
            for st in self.states.values():
                st.state = "waiting"
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            self.link_up = True
            self._link_back_at = self.clock.now() or 0.0  # silence is counted from here on
            for st in self.states.values():
                st.state = "ok" if st.state == "waiting" else st.state
                if code == RESTORED_DATA_LOST:
                    self._resubscribe(st, st.kinds(), "IB lost the data (1101)")
            if code == RESTORED_DATA_KEPT:
                self._verify_at = self._link_back_at + VERIFY_GRACE
            self._schedule_refill()
        elif code not in IGNORED and not 2100 <= code < 2200:
            self._stream_error(req_id, code, text)

    def _stream_error(self, req_id: int, code: int, text: str) -> None:
        st = next((s for s in self.states.values() if req_id in s.req_ids), None)
        if st is None:
            return
        kind = st.req_ids.pop(req_id)
        st.subscribed_at.pop(kind, None)
        st.state, st.code, st.text = "error", code, text
        if code in NO_RETRY:
            log.warning(
                "%s %s: IB refused (%s %s); not retried", st.stream.symbol, kind, code, text
            )
            return
        st.failures += 1
        st.retry_at = time.monotonic() + min(BACKOFF_MAX, 2.0 ** (st.failures - 1))

    def _on_tickers(self, tickers: set[Ticker]) -> None:
        now = self.clock.now()
        if now is None:
            return
        for ticker in tickers:
            st = self.states.get(ticker.contract.conId if ticker.contract else 0)
            if st is None or st.ticker is not ticker:
                continue
            st.got_data("ticks", now)
            st.pending_ticks += st.take_quotes(ticker, now)

    def _on_bar(self, bars: object, has_new_bar: bool) -> None:
        if not isinstance(bars, RealTimeBarList) or not bars:
            return
        st = self.states.get(bars.contract.conId)
        if st is None or st.bar_list is not bars:
            return
        bar: RealTimeBar = bars[-1]
        bars.clear()  # the list would grow for as long as the service runs
        start = int(bar.time.timestamp())
        self.clock.observe(start + BAR, exact=False)
        st.got_data("bars", self.clock.now() or start + BAR)
        jumped = st.newest is not None and start > st.newest + BAR
        st.last_bar = start if st.last_bar is None else max(st.last_bar, start)
        st.newest = start if st.newest is None else max(st.newest, start)
        self._buffer_bar(st, bar_row(st.con_id, start, bar, "stream"))
        if jumped:
            self._schedule_refill()

    def _buffer_bar(self, st: StreamState, row: dict) -> None:
        start = int(row["time"].timestamp())
        if start not in self._stored_of(st, start) and start not in st.pending_bars:
            st.pending_bars[start] = row

    # ------------------------------------------------------------------ flush
    async def flush(self) -> None:
        """Write what is buffered: ticks as they came, bars not stored yet."""
        ticks = [r for st in self.states.values() for r in st.pending_ticks]
        bars = [
            r
            for st in self.states.values()
            for t, r in st.pending_bars.items()
            if t not in self._stored_of(st, t)
        ]
        for st in self.states.values():
            st.pending_ticks, st.pending_bars = [], {}
        if ticks and (appended := self._append(lake.TICKS, ticks)) is not None:
            for con_id, count in appended.valid.group_by("con_id").len().iter_rows():
                self.states[con_id].ticks += count
        if bars and (appended := self._append(lake.BARS, bars)) is not None:
            self._stored_bars(bars, appended.valid)
        self.lake.compact_if_due()

    def _stored_bars(self, rows: list[dict], valid: pl.DataFrame) -> None:
        kept = set()
        for con_id, when, source in valid.select("con_id", "time", "source").iter_rows():
            st, start = self.states[con_id], int(when.timestamp())
            self._stored_of(st, start).add(start)
            kept.add((con_id, start))
            st.bars += 1
            st.refilled += source == "refill"
        for row in rows:  # quarantined: never asked for again
            start = int(row["time"].timestamp())
            if (row["con_id"], start) not in kept:
                self.states[row["con_id"]].holes.add(start)

    def _append(self, dataset: str, rows: list[dict]) -> lake.Appended | None:
        return self.lake.append(dataset, pl.DataFrame(rows, infer_schema_length=None))

    # ------------------------------------------------------------------ watching
    async def watch(self) -> None:
        """Retry failed streams, check 1102's verification and resubscribe stale streams."""
        now = self._now()
        if not self.link_up or not self.ib.isConnected():
            return
        mono = time.monotonic()
        for st in self.states.values():
            if st.retry_at is not None and mono >= st.retry_at:
                missing = [k for k in st.kinds() if k not in st.subscribed_at]
                self._resubscribe(st, missing, f"after IB error {st.code}")
        if self._verify_at is not None and now >= self._verify_at:
            self._verify_at = None
            for st in self.states.values():
                silent = [k for k in st.subscribed_at if st.heard.get(k, 0) < self._link_back_at]
                if silent and gaps.session_at(st.stream.hours, now) is not None:
                    self._resubscribe(st, silent, "no data since 1102")
        for st in self.states.values():
            if self._silent(st, now):
                log.warning(
                    "%s: no %s for %.0f s in session",
                    st.stream.symbol,
                    st.watched,
                    self.config.stale_after,
                )
                self._resubscribe(st, st.kinds(), "stale", stale=True)
        if mono - self._last_refill >= REFILL_EVERY:
            self._schedule_refill()

    def _silent(self, st: StreamState, now: float) -> bool:
        """No data on the watched feed for `stale_after` gateway seconds of a session."""
        kind = st.watched
        if kind not in st.subscribed_at:
            return False
        session = gaps.session_at(st.stream.hours, now)
        if session is None:
            return False
        heard = st.heard.get(kind, 0.0)
        since = max(heard, st.subscribed_at[kind], session.open.timestamp(), self._link_back_at)
        return now - since > self.config.stale_after

    def _now(self) -> float:
        """The gateway's time, from the service's heartbeat (reqCurrentTime every second) and
        the bars; the wall clock only before the first answer."""
        return self.clock.now() or datetime.now(UTC).timestamp()

    # ------------------------------------------------------------------ refill
    def _schedule_refill(self) -> None:
        if self._refill_task is not None and not self._refill_task.done():
            self._refill_again = True
            return
        self._refill_task = asyncio.ensure_future(self._refill_in_background())

    async def _refill_in_background(self) -> None:
        try:
            await self.refill()
            while self._refill_again:
                self._refill_again = False
                await self.refill()
        except (ConnectionError, errors.GatewayUnavailable) as exc:
            log.warning("refill stopped: %s", exc)

    async def refill(self) -> int:
        """Fetch from history the bars each bar stream is owed and lacks; returns how many."""
        async with self._refill_lock:
            self._last_refill = time.monotonic()
            now = self._now()
            oldest = utc_days(int(now) - REFILL_HORIZON, 0)[0]
            for day in [d for d in self._stored if d < oldest]:
                del self._stored[day]
            found = 0
            for st in self.states.values():
                if st.stream.bars and self.link_up and self.ib.isConnected():
                    found += await self._refill_stream(st, now)
            await self.flush()
            return found

    async def _refill_stream(self, st: StreamState, now: float) -> int:
        since = self._since.get(st.con_id, int(now) // BAR * BAR)
        start = max(since, int(now) - REFILL_HORIZON)
        end = st.last_bar if st.last_bar is not None else int(now) // BAR * BAR - 2 * BAR
        self._load_stored(st, start, end)
        have = set(st.pending_bars) | st.holes
        for day in utc_days(start, end):
            have |= self._stored[day].get(st.con_id, set())
        rows = await gaps.refill_stream(
            self.ib, self._paced(), st, have, start, end, now, self._table
        )
        for row in rows:
            self._buffer_bar(st, row)
        return len(rows)

    def _paced(self) -> SharedPacer:
        if self._pacer is None:
            self._pacer = gaps.pacer_for(self.ib, self.home)
        return self._pacer

    # ------------------------------------------------------------------ the lake's truth
    def _load_stored(self, st: StreamState, first: float, last: float) -> None:
        """Read back the bar times stored on the UTC days from `first` to `last` (each day
        once: later writes are this process's own), and the newest of them."""
        for day in utc_days(int(first), int(last)):
            stored = self._stored_on(day).get(st.con_id)
            if stored:
                st.newest = max(st.newest or 0, max(stored))

    def _stored_on(self, day: date) -> dict[int, set[int]]:
        if day not in self._stored:
            self._stored[day] = lake.stored_bar_times(self.home, day)
        return self._stored[day]

    def _stored_of(self, st: StreamState, start: int) -> set[int]:
        day = datetime.fromtimestamp(start, UTC).date()
        return self._stored_on(day).setdefault(st.con_id, set())

    # ------------------------------------------------------------------ for others
    def reference_price(self, con_id: int) -> float | None:
        """The last trade, else the midpoint of the quote (for the order checks)."""
        st = self.states.get(con_id)
        if st is None or st.quote is None:
            return None
        return quote_price(*st.quote[:3])

    def health(self) -> dict:
        """Per stream and in total: what the health file and `ibw live` show."""
        streams = [st.health() for st in self.states.values()]
        keys = ("ticks", "bars", "refilled", "resubscribes", "stale_resubscribes")
        totals = {k: sum(s[k] for s in streams) for k in keys}
        totals["ok"] = sum(s["state"] == "ok" for s in streams)
        return {"streams": streams, "totals": totals}
