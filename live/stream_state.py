"""What the stream manager knows about each stream and about the gateway's time.

Owns `StreamState` (a stream's subscriptions, buffers, refill bookkeeping and counters, and its
health entry), `GatewayClock` (the gateway's "now" between its answers), the rows ib_async's
ticks and bars become, and the file that remembers since when each bar stream is owed. Pure but
for that one small file.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ib_async import BarData, RealTimeBar, RealTimeBarList, Ticker

from live.config import ResolvedStream
from warehouse.parquet import fsync_dir

NO_RETRY = frozenset({101, 200, 354, 10089, 10090, 10168})  # lines, contract, permissions
TICK_COLUMNS = ("bid", "ask", "last", "bid_size", "ask_size", "last_size", "volume")
# IB's tick types (live and delayed) -> (price column, size column) they set
_PRICE_TICKS = {
    1: ("bid", "bid_size"),
    66: ("bid", "bid_size"),
    2: ("ask", "ask_size"),
    67: ("ask", "ask_size"),
    4: ("last", "last_size"),
    68: ("last", "last_size"),
}
_SIZE_TICKS = {0: "bid_size", 69: "bid_size", 3: "ask_size", 70: "ask_size", 5: "last_size",
               71: "last_size", 8: "volume", 74: "volume"}  # fmt: skip


class GatewayClock:
    """The gateway's time on this machine's monotonic clock (a simulated gateway may run faster
    than the wall clock): exact anchors from reqCurrentTime, lower bounds from closed bars."""

    # Two exact anchors measure the pace once this far apart: IB answers in whole seconds, so
    # 20 gateway seconds keep the error under 5 %, and half a real second keeps out jitter.
    RATE_SPAN, RATE_MIN_REAL = 20.0, 0.5

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None
        self._base: tuple[float, float] | None = None
        self.rate = 1.0

    def now(self) -> float | None:
        if self._anchor is None:
            return None
        mono, gw = self._anchor
        return gw + (time.monotonic() - mono) * self.rate

    def observe(self, gw: float, exact: bool = True) -> None:
        mono = time.monotonic()
        if not exact:
            current = self.now()
            if current is None or current < gw:
                self._anchor = (mono, gw)
            return
        if self._base is None:
            self._base = (mono, gw)
        elif gw - self._base[1] >= self.RATE_SPAN and mono - self._base[0] >= self.RATE_MIN_REAL:
            self.rate = max(0.0, (gw - self._base[1]) / (mono - self._base[0]))
            self._base = (mono, gw)
        self._anchor = (mono, gw)


@dataclass
class StreamState:
    """One configured stream: its subscriptions now, what is buffered, and its counters."""

    stream: ResolvedStream
    ticker: Ticker | None = None
    bar_list: RealTimeBarList | None = None
    req_ids: dict[int, str] = field(default_factory=dict)  # reqId -> "ticks" | "bars"
    subscribed_at: dict[str, float] = field(default_factory=dict)  # kind -> gateway time
    heard: dict[str, float] = field(default_factory=dict)  # kind -> gateway time of last data
    last_bar: int | None = None  # start of the newest bar streamed on this connection
    newest: int | None = None  # start of the newest bar stored or streamed
    quote: tuple | None = None
    pending_ticks: list[dict] = field(default_factory=list)
    pending_bars: dict[int, dict] = field(default_factory=dict)
    answers: dict[int, int] = field(default_factory=dict)  # bar start -> answers without it
    holes: set[int] = field(default_factory=set)  # bar starts IB has no bar for
    state: str = "starting"
    code: int | None = None
    text: str = ""
    retry_at: float | None = None  # monotonic time of a resubscribe after an error
    failures: int = 0
    ticks: int = 0
    bars: int = 0
    refilled: int = 0
    resubscribes: int = 0
    stale_resubscribes: int = 0

    @property
    def con_id(self) -> int:
        return self.stream.con_id

    def kinds(self) -> list[str]:
        return [k for k, on in (("ticks", self.stream.ticks), ("bars", self.stream.bars)) if on]

    @property
    def watched(self) -> str:
        """The feed whose silence means the stream is dead: bars come every 5 s whatever the
        market does, while a quiet contract's quote may not move for minutes."""
        return "bars" if self.stream.bars else "ticks"

    def got_data(self, kind: str, now: float) -> None:
        self.heard[kind] = now
        self.failures = 0
        if self.state in ("stale", "starting") or (
            self.state == "error" and self.code not in NO_RETRY
        ):
            self.state, self.code, self.text = "ok", None, ""

    def take_quotes(self, ticker: Ticker, now: float) -> list[dict]:
        """A row per quote the ticker's ticks of this batch went through, in order.

        ib_async hands over a ticker once per socket read with only its latest values; its
        `ticks` keep every tick of the read, so replaying them keeps the quotes in between
        (ticks that move nothing, such as the day's high, make no row)."""
        quote = list(self.quote or (None,) * len(TICK_COLUMNS))
        received, at = datetime.now(UTC), datetime.fromtimestamp(now, UTC)
        rows = []
        for tick in ticker.ticks:
            moved = False
            for column, value in tick_values(tick.tickType, tick.price, tick.size):
                i = TICK_COLUMNS.index(column)
                moved |= quote[i] != value
                quote[i] = value
            if moved:
                row = dict(zip(TICK_COLUMNS, quote, strict=True))
                rows.append({"con_id": self.con_id, "time": at, **row, "received_at": received})
        self.quote = tuple(quote)
        return rows

    def health(self) -> dict:
        def iso(epoch: float | None) -> str | None:
            return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()

        return {
            "con_id": self.con_id,
            "symbol": self.stream.symbol,
            "subscribed": set(self.subscribed_at) == set(self.kinds()),
            "feeds": sorted(self.subscribed_at),
            "state": self.state,
            "code": self.code,
            "text": self.text,
            "last_tick_at": iso(self.heard.get("ticks")),
            "last_bar_at": iso(self.last_bar),
            "ticks": self.ticks,
            "bars": self.bars,
            "refilled": self.refilled,
            "resubscribes": self.resubscribes,
            "stale_resubscribes": self.stale_resubscribes,
        }


def _number(value: object) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def bar_row(con_id: int, start: int, bar: RealTimeBar | BarData, source: str) -> dict:
    """A streamed or historical bar as stored: IB's -1 (quote bars have no volume, WAP or
    count) as null, so the two sources give equal rows."""
    open_ = bar.open_ if isinstance(bar, RealTimeBar) else bar.open
    wap = bar.wap if isinstance(bar, RealTimeBar) else bar.average
    count = bar.count if isinstance(bar, RealTimeBar) else bar.barCount
    return {
        "con_id": con_id,
        "time": datetime.fromtimestamp(start, UTC),
        "open": open_,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": None if bar.volume < 0 else float(bar.volume),
        "wap": None if bar.volume < 0 and wap < 0 else float(wap),
        "count": None if count < 0 else int(count),
        "source": source,
        "received_at": datetime.now(UTC),
    }


def utc_days(start: int, end: int) -> list[date]:
    """The UTC days from epoch `start` to `end`, both included."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(max(start, end), UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def read_since(path: Path) -> dict[int, int]:
    """Since when each bar stream is owed (conId -> epoch seconds), as the file keeps it."""
    try:
        return {int(k): int(v) for k, v in json.loads(path.read_text()).items()}
    except (FileNotFoundError, ValueError):
        return {}


def write_since(path: Path, since: dict[int, int]) -> None:
    """Atomically: the refill's start must survive a kill -9 right after the first subscribe."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as out:
        json.dump({str(k): v for k, v in sorted(since.items())}, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def tick_values(tick_type: int, price: float, size: float) -> list[tuple[str, float | None]]:
    """The quote columns one tick sets (IB's -1 price: no quote on that side)."""
    if tick_type in _PRICE_TICKS:
        price_column, size_column = _PRICE_TICKS[tick_type]
        return [(price_column, None if price == -1 else _number(price)),
                (size_column, _number(size))]  # fmt: skip
    if tick_type in _SIZE_TICKS:
        return [(_SIZE_TICKS[tick_type], _number(size))]
    return []
